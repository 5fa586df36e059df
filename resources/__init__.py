"""Dagster resources: one ConfigurableResource per outside system (files, LLM, embedder, base model, GROBID)."""

from resources.base_model import BaseModelResource
from resources.embedder import EmbedderResource
from resources.grobid import GrobidResource
from resources.llm import LLMResource
from resources.storage import DataDirResource

__all__ = ["BaseModelResource", "DataDirResource", "EmbedderResource", "GrobidResource", "LLMResource"]
