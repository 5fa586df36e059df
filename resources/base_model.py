"""The causal LM that LoRA tunes and the evaluation compares against: transformers, loaded from a
local folder or hub id (the GPU profile's 7B model), or dequantized from a GGUF (the embedded default)."""

from pathlib import Path
from typing import Mapping, Optional

import dagster as dg
import torch
from pydantic import Field

from ragtune.layout import DataLayout
from ragtune.llm.backends import packaged_gguf_path
from ragtune.llm.local_models import MODELS, resolve_gguf
from ragtune.train.lora import LoraSettings, load_base_model, load_pretrained, run_fingerprint


class BaseModelResource(dg.ConfigurableResource):
    model: Optional[str] = Field(
        default=None, description="A transformers model folder or hub id (e.g. mistralai/Mistral-7B-Instruct-v0.2); overrides gguf_path."
    )
    gguf_path: Optional[str] = Field(default=None, description="GGUF to dequantize (a path or a local model's short name); default SmolLM2-135M-Instruct.")
    cache_dir: Optional[str] = Field(
        default=None, description="Where the dequantized checkpoint is cached; default <data>/models/<gguf name>."
    )

    def resolved_gguf(self) -> Path:
        if self.gguf_path in MODELS:  # a local model's short name (qwen2.5-coder-1.5b)
            return Path(resolve_gguf(self.gguf_path))
        return Path(self.gguf_path or packaged_gguf_path())

    def model_id(self) -> str:
        return self.model or str(self.resolved_gguf())

    def load(self, layout: DataLayout, bf16: bool = False):
        """(model, tokenizer); bf16 applies to a transformers model (a dequantized GGUF stays float32)."""
        if self.model:
            return load_pretrained(self.model, torch.bfloat16 if bf16 else torch.float32)
        gguf = self.resolved_gguf()
        cache = Path(self.cache_dir) if self.cache_dir else layout.converted_model(gguf.stem)
        return load_base_model(str(gguf.parent), gguf.name, cache)

    def fingerprint(self, settings: LoraSettings, train_rows: list[dict], eval_rows: list[dict]) -> str:
        return run_fingerprint(self.model_id(), settings, train_rows, eval_rows)


def base_model_from_env(environ: Mapping[str, str]) -> BaseModelResource:
    """The model to tune as RAGTUNE_BASE_MODEL (a transformers folder or hub id) or RAGTUNE_BASE_GGUF (a GGUF
    path or a local model's short name) say, or the project file's base_model: (ragtune.project.llm_environ);
    the embedded SmolLM2 where neither is set."""
    return BaseModelResource(model=environ.get("RAGTUNE_BASE_MODEL") or None, gguf_path=environ.get("RAGTUNE_BASE_GGUF") or None)
