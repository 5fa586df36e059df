"""LLM backends behind ragtune.llm.client.ChatBackend: llama.cpp (embedded), OpenAI-compatible HTTP, the
OpenAI Batch API, vLLM offline. BACKEND_KINDS is the one table of them: the resource's config classes
(resources.llm.BACKENDS) are keyed by it, the command line offers it, token counting reads it."""

from dataclasses import dataclass

from ragtune.llm.backends.llamacpp import LlamaCppBackend, default_gguf_path, packaged_gguf_path
from ragtune.llm.backends.openai_batch import OpenAIBatchBackend
from ragtune.llm.backends.openai_compatible import OpenAICompatibleBackend
from ragtune.llm.backends.vllm_offline import VLLMBackend



@dataclass(frozen=True)
class BackendKind:
    name: str
    description: str
    tokens: str  # how an estimate counts prompt tokens: "gguf" (the local file's), "hub" (the model's own), "tiktoken"
    endpoint: bool  # reached over HTTP: needs a base URL, may need a key


BACKEND_KINDS = {kind.name: kind for kind in (
    BackendKind("llamacpp", "a local GGUF through llama.cpp on the CPU (the embedded default)", "gguf", False),
    BackendKind("openai", "any OpenAI-compatible endpoint (OpenAI, vLLM serve, llama.cpp server, Ollama)", "tiktoken", True),
    BackendKind("openai_batch", "the OpenAI Batch API: half price, hours not minutes", "tiktoken", True),
    BackendKind("vllm", "vLLM's offline engine on this machine's GPU(s)", "hub", False),
)}

__all__ = ["BACKEND_KINDS", "BackendKind", "LlamaCppBackend", "OpenAIBatchBackend", "OpenAICompatibleBackend", "VLLMBackend", "default_gguf_path", "packaged_gguf_path"]
