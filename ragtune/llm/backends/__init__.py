"""LLM backends behind ragtune.llm.client.ChatBackend: llama.cpp (embedded), OpenAI-compatible HTTP, the
OpenAI Batch API, vLLM offline."""

from ragtune.llm.backends.llamacpp import LlamaCppBackend, default_gguf_path, packaged_gguf_path
from ragtune.llm.backends.openai_batch import OpenAIBatchBackend
from ragtune.llm.backends.openai_compatible import OpenAICompatibleBackend
from ragtune.llm.backends.vllm_offline import VLLMBackend

__all__ = ["LlamaCppBackend", "OpenAIBatchBackend", "OpenAICompatibleBackend", "VLLMBackend", "default_gguf_path", "packaged_gguf_path"]
