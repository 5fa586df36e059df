"""LLM backends behind ragtune.llm.ChatBackend: llama.cpp (embedded), OpenAI-compatible HTTP, the
OpenAI Batch API, vLLM offline."""

from ragtune.backends.llamacpp import LlamaCppBackend, default_gguf_path
from ragtune.backends.openai_batch import OpenAIBatchBackend
from ragtune.backends.openai_compatible import OpenAICompatibleBackend
from ragtune.backends.vllm_offline import VLLMBackend

__all__ = ["LlamaCppBackend", "OpenAIBatchBackend", "OpenAICompatibleBackend", "VLLMBackend", "default_gguf_path"]
