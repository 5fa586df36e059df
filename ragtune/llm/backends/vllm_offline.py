"""vLLM's offline engine: a partition's prompts go to LLM.chat as one batch, so the engine keeps
its GPU full with continuous batching; the shared system prompt and template prefix hit the
prefix cache. JSON schemas become structured outputs; a LoRA adapter (to evaluate a tuned model)
rides along as a LoRARequest. Needs the `gpu` extra and a CUDA GPU."""

from __future__ import annotations

import importlib
from functools import cached_property
from pathlib import Path
from typing import Any

from ragtune.llm.client import ChatRequest, ChatResult, OnResult
from ragtune.llm.control_tokens import Neutraliser, hf_special_tokens, vocabulary_neutraliser
from ragtune.llm.fingerprint import weights_id

INSTALL_HINT = "the vllm backend needs vLLM and a CUDA GPU: pip install -e '.[gpu]' (or pick backend 'openai' or 'llamacpp')"


class VLLMBackend:
    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        lora_path: str | None = None,
        max_lora_rank: int = 64,
        batch_size: int = 1024,
    ):
        """batch_size bounds how many requests go to the engine per LLM.chat call: a killed run
        loses at most one such batch, since every finished batch is already in the cache."""
        self.model, self.tensor_parallel_size = model, tensor_parallel_size
        self.gpu_memory_utilization, self.max_model_len = gpu_memory_utilization, max_model_len
        self.enable_prefix_caching, self.lora_path, self.max_lora_rank = enable_prefix_caching, lora_path, max_lora_rank
        self.batch_size = batch_size
        self._module: Any = None
        # A local model folder and the adapter by their content: retraining the adapter in place misses the cache.
        def content(path: str) -> str:
            return f"#{weights_id(path)}" if Path(path).exists() else ""  # a hub id (or a path vLLM will refuse) has none

        self.model_id = f"vllm:{model}{content(model)}" + (f"+lora:{lora_path}{content(lora_path)}" if lora_path else "")

    @property
    def vllm(self) -> Any:
        if self._module is None:
            try:
                self._module = importlib.import_module("vllm")
            except ImportError as error:
                raise ImportError(INSTALL_HINT) from error
        return self._module

    @cached_property
    def engine(self) -> Any:
        options: dict[str, Any] = {
            "model": self.model,
            "tensor_parallel_size": self.tensor_parallel_size,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "enable_prefix_caching": self.enable_prefix_caching,
        }
        if self.max_model_len:
            options["max_model_len"] = self.max_model_len
        if self.lora_path:
            options.update(enable_lora=True, max_lora_rank=self.max_lora_rank)
        return self.vllm.LLM(**options)

    @cached_property
    def neutralise(self) -> Neutraliser:
        """LLM.chat renders the template and its tokenizer matches every special and added token in the
        text: those of this model are defanged in the messages first, so only the template writes one."""
        get_tokenizer = getattr(self.engine, "get_tokenizer", None)
        return vocabulary_neutraliser(hf_special_tokens(get_tokenizer()) if get_tokenizer else [])

    def sampling_params(self, request: ChatRequest) -> Any:
        options: dict[str, Any] = {**request.sampling.common(), "repetition_penalty": request.sampling.repeat_penalty}
        if request.schema is not None:
            options.update(self._structured(request.schema))
        return self.vllm.SamplingParams(**options)

    def _structured(self, schema: dict) -> dict[str, Any]:
        """vLLM >= 0.10.2: structured_outputs=StructuredOutputsParams; older: guided_decoding."""
        params = importlib.import_module("vllm.sampling_params")
        if hasattr(params, "StructuredOutputsParams"):
            return {"structured_outputs": params.StructuredOutputsParams(json=schema)}
        return {"guided_decoding": params.GuidedDecodingParams(json=schema)}

    def lora_request(self) -> Any:
        if not self.lora_path:
            return None
        lora = importlib.import_module("vllm.lora.request")
        return lora.LoRARequest("adapter", 1, self.lora_path)

    def chat_many(self, requests: list[ChatRequest], on_result: OnResult) -> None:
        engine, neutralise = self.engine, self.neutralise  # a missing vllm or a bad model raises here, for the whole run
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            try:
                outputs = engine.chat(
                    [neutralise.messages(r.messages) for r in batch],
                    sampling_params=[self.sampling_params(r) for r in batch],
                    lora_request=self.lora_request(),
                    use_tqdm=False,
                )
            except Exception as error:  # the engine failed the whole batch; each request records it
                for offset in range(len(batch)):
                    on_result(start + offset, error)
                continue
            for offset, output in enumerate(outputs):
                best = output.outputs[0]
                prompt = len(getattr(output, "prompt_token_ids", None) or [])
                cached = int(getattr(output, "num_cached_tokens", 0) or 0)  # prefix-cache hits (vLLM >= 0.6)
                on_result(start + offset, ChatResult(best.text, len(best.token_ids), prompt, cached))
