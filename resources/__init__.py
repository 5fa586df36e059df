"""Dagster resources: one ConfigurableResource per outside system (files, LLM, embedder, base model, GROBID, Label Studio)."""

from resources.base_model import BaseModelResource
from resources.dedup_judge import DedupJudgeResource
from resources.embedder import EmbedderResource
from resources.fit_judge import FitJudgeResource
from resources.grobid import GrobidResource
from resources.label_studio import LabelStudioResource
from resources.llm import BACKENDS, LlamaCppConfig, LLMResource, OpenAIBatchConfig, OpenAIConfig, VLLMConfig, llm_from_env
from resources.storage import DataDirResource

__all__ = [
    "BACKENDS", "BaseModelResource", "DataDirResource", "DedupJudgeResource", "EmbedderResource", "FitJudgeResource", "GrobidResource", "LabelStudioResource", "LLMResource", "LlamaCppConfig",
    "OpenAIBatchConfig", "OpenAIConfig", "VLLMConfig", "llm_from_env",
]
