"""Dagster resources: one ConfigurableResource per outside system (files, LLM, embedder, base model)."""

from resources.base_model import BaseModelResource
from resources.embedder import EmbedderResource
from resources.llm import LLMResource
from resources.storage import DataDirResource

__all__ = ["BaseModelResource", "DataDirResource", "EmbedderResource", "LLMResource"]
