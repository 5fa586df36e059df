"""The causal LM that LoRA tunes and the judge compares against: transformers, loaded from a GGUF or a local dir."""

from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from ragtune.backends import default_gguf_path
from ragtune.lora import load_base_model


class BaseModelResource(dg.ConfigurableResource):
    gguf_path: Optional[str] = Field(default=None, description="GGUF to dequantize; default SmolLM2-135M-Instruct.")
    cache_dir: Optional[str] = Field(
        default=None, description="Where the dequantized checkpoint is cached; default <data>/models/<gguf name>."
    )

    def resolved_gguf(self) -> Path:
        return Path(self.gguf_path or default_gguf_path())

    def load(self, data_root: Path):
        gguf = self.resolved_gguf()
        cache = Path(self.cache_dir) if self.cache_dir else data_root / "models" / gguf.stem
        return load_base_model(str(gguf.parent), gguf.name, cache)
