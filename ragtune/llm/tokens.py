"""Counting a chat request's prompt tokens with the model's own tokenizer, as the server will:
the chat template applied, the generation prompt added. For estimates; no model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

CountTokens = Callable[[list[dict[str, str]]], int]


def hf_counter(name_or_path: str, gguf_file: str | None = None) -> CountTokens:
    """A transformers tokenizer (hub id, local folder, or a GGUF's embedded vocabulary and template)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **({"gguf_file": gguf_file} if gguf_file else {}))

    def count(messages: list[dict[str, str]]) -> int:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])  # the template writes its own special tokens

    return count


def tiktoken_counter(model: str) -> CountTokens:
    """OpenAI models: tiktoken's encoding for the model plus the chat format's per-message overhead
    (3 tokens a message, 3 to prime the reply, as OpenAI documents for gpt-4o-era models)."""
    import tiktoken

    encoding = tiktoken.encoding_for_model(model)

    def count(messages: list[dict[str, str]]) -> int:
        return 3 + sum(3 + len(encoding.encode(m["role"])) + len(encoding.encode(m["content"])) for m in messages)

    return count


def gguf_counter(path: str) -> CountTokens:
    gguf = Path(path)
    return hf_counter(str(gguf.parent), gguf.name)


def counter_for(backend: str, model: str, model_path: str | None, tokenizer: str | None, fallback_gguf: str) -> tuple[CountTokens, str]:
    """(count, what it is). An explicit tokenizer wins; else the GGUF (llamacpp), the model's own
    (vllm), tiktoken (openai). An endpoint model none of these know is counted with the fallback
    GGUF's tokenizer and said to be approximate."""
    if tokenizer:
        return hf_counter(tokenizer), f"tokenizer {tokenizer}"
    from ragtune.llm.backends import BACKEND_KINDS

    tokens = BACKEND_KINDS[backend].tokens
    if tokens == "gguf":
        chosen = model_path or fallback_gguf
        return gguf_counter(chosen), f"the GGUF's tokenizer ({Path(chosen).name})"
    if tokens == "hub":
        return hf_counter(model), f"{model}'s tokenizer"
    try:
        return tiktoken_counter(model), f"tiktoken's encoding for {model}"
    except Exception:  # an open model behind an endpoint, or tiktoken's files not downloadable here
        return gguf_counter(fallback_gguf), (f"approximate: {model} has no tokenizer here (pass --tokenizer a hub id or "
                                             f"folder); counted with {Path(fallback_gguf).name}'s")
