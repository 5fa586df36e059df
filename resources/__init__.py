"""Dagster resources: one ConfigurableResource per outside system (files, LLM, embedder, base model, GROBID)."""

from resources.base_model import BaseModelResource
from resources.embedder import EmbedderResource
from resources.grobid import GrobidResource
from resources.llm import BACKENDS, LlamaCppConfig, LLMResource, OpenAIBatchConfig, OpenAIConfig, VLLMConfig, llm_from_env
from resources.storage import DataDirResource

__all__ = [
    "BACKENDS", "BaseModelResource", "DataDirResource", "EmbedderResource", "GrobidResource", "LLMResource", "LlamaCppConfig",
    "OpenAIBatchConfig", "OpenAIConfig", "VLLMConfig", "llm_from_env",
]
