"""The LLM used for generation and judging, behind the content-addressed cache: one config class per
backend, each with only its own fields, held by one resource, and one way to choose from the environment."""

import os
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, Optional, Union

import dagster as dg
from pydantic import Field, model_validator

from ragtune.llm.backends import LlamaCppBackend, OpenAIBatchBackend, OpenAICompatibleBackend, VLLMBackend
from ragtune.llm.backends.openai_compatible import probe_endpoint
from ragtune.llm.backends.llamacpp import EMBEDDED_GGUF
from ragtune.llm.local_models import model_name
from ragtune.llm.client import CachedLLM, ChatBackend, LLMCache, public_url
from ragtune.llm.usage import BATCH_DISCOUNT, Price, price_for
from ragtune.project import ROLE_PREFIXES

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"  # vLLM serve's and llama.cpp server's usual address
DEFAULT_MODEL = "smollm2"
JsonMode = Literal["json_schema", "json_object", "none"]


class LlamaCppConfig(dg.Config):
    """A local GGUF through llama.cpp, on the CPU: a local model by short name (smollm2, the default;
    qwen2.5-coder-1.5b; ragtune.llm.local_models) or a GGUF file."""

    kind: ClassVar[str] = "llama-cpp"
    backend: Literal["llamacpp"] = "llamacpp"
    model_path: Optional[str] = Field(
        default=None, description="A local model's short name (smollm2, qwen2.5-coder-1.5b) or a GGUF path; default smollm2."
    )
    n_ctx: int = 4096
    n_threads: Optional[int] = None

    def build(self, cache_dir: Optional[Path]) -> ChatBackend:
        return LlamaCppBackend(self.model_path, self.n_ctx, self.n_threads)


class EndpointConfig(dg.Config):
    """What both OpenAI-API backends need: where, which model, the key, structured output."""

    kind: ClassVar[str] = "openai"
    base_url: str = DEFAULT_BASE_URL
    model: str = Field(default=DEFAULT_MODEL, description="Model name at the endpoint.")
    api_key_env: Optional[str] = Field(
        default=None, description="The environment variable that holds the API key (e.g. RAGTUNE_LLM_API_KEY); the key itself is never in config."
    )
    json_mode: JsonMode = Field(default="json_schema", description="Structured output: json_schema (OpenAI, vLLM) or json_object (llama.cpp server).")
    max_retries: int = Field(default=4, description="Retries with backoff on 429/5xx/timeouts before a call fails.")
    timeout_s: float = 120.0

    @model_validator(mode="before")
    @classmethod
    def _no_literal_key(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("api_key") is not None:
            raise ValueError("api_key takes no literal key (it would sit in run config and the UI): put the key in an environment "
                             "variable and name it in api_key_env, e.g. api_key_env: RAGTUNE_LLM_API_KEY")
        return values

    def api_key(self) -> Optional[str]:
        """The key, read from its environment variable when a backend is built; None without one."""
        if not self.api_key_env:
            return None
        if not os.environ.get(self.api_key_env):
            raise ValueError(f"api_key_env names {self.api_key_env}, which is not set in this environment")
        return os.environ[self.api_key_env]


class OpenAIConfig(EndpointConfig):
    """Any OpenAI-compatible endpoint (OpenAI, vLLM serve, llama.cpp server, Ollama)."""

    backend: Literal["openai"] = "openai"
    concurrency: int = Field(default=8, description="Requests in flight at once.")

    def build(self, cache_dir: Optional[Path]) -> ChatBackend:
        return OpenAICompatibleBackend(self.base_url, self.model, self.api_key(), self.timeout_s, self.json_mode, self.concurrency, self.max_retries)


class OpenAIBatchConfig(EndpointConfig):
    """Each partition's calls through the OpenAI Batch API: half price, hours not minutes."""

    backend: Literal["openai_batch"] = "openai_batch"
    batch_poll_interval_s: float = Field(default=30.0, description="Seconds between status checks.")
    batch_max_wait_s: float = Field(default=26 * 3600.0, description="Stop waiting after this long; the rerun collects the batch.")

    def build(self, cache_dir: Optional[Path]) -> ChatBackend:
        if cache_dir is None:
            raise ValueError("the openai_batch backend journals its batches beside the LLM cache: pass cache_dir")
        return OpenAIBatchBackend(
            self.base_url, self.model, Path(cache_dir) / "openai_batches", self.api_key(), self.json_mode,
            self.batch_poll_interval_s, self.batch_max_wait_s, timeout_s=self.timeout_s, max_retries=self.max_retries,
        )


class VLLMConfig(dg.Config):
    """vLLM's offline engine on this machine's GPU(s) (the `gpu` extra)."""

    kind: ClassVar[str] = "vllm"
    backend: Literal["vllm"] = "vllm"
    model: str = Field(description="Hub id or local folder of the model.")
    tensor_parallel_size: int = Field(default=1, description="GPUs one model is sharded over.")
    gpu_memory_utilization: float = 0.9
    max_model_len: Optional[int] = None
    lora_path: Optional[str] = Field(default=None, description="A PEFT adapter to apply to every request.")

    def build(self, cache_dir: Optional[Path]) -> ChatBackend:
        return VLLMBackend(self.model, tensor_parallel_size=self.tensor_parallel_size,
                           gpu_memory_utilization=self.gpu_memory_utilization, max_model_len=self.max_model_len, lora_path=self.lora_path)


BackendConfig = Union[LlamaCppConfig, OpenAIConfig, OpenAIBatchConfig, VLLMConfig]


class ModelPrice(dg.Config):
    """USD per million tokens (the provider's online price; the Batch API backend applies its discount)."""

    input_per_million: float
    output_per_million: float
    cached_input_per_million: Optional[float] = Field(default=None, description="Prompt tokens served from the provider's cache; default: the input price.")


class LLMResource(dg.ConfigurableResource):
    """The LLM every calling asset asks for. `backend` holds one backend's settings and only those
    (a discriminated union: in run config, `backend: {openai: {base_url: ..., model: ...}}`).
    The API key comes only from an environment variable (dg.EnvVar)."""

    backend: BackendConfig = Field(default_factory=LlamaCppConfig, discriminator="backend")
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Per model name: USD per million input/output tokens (the project file's `prices` by default)."
    )

    @property
    def model_name(self) -> str:
        """The name the price table knows the model by: the endpoint's model, vLLM's model, or the GGUF's file name."""
        if isinstance(self.backend, LlamaCppConfig):
            return model_name(self.backend.model_path) if self.backend.model_path else EMBEDDED_GGUF
        return self.backend.model

    def price(self) -> Optional[Price]:
        """This model's price per million tokens (halved on the Batch API), None when the table has none."""
        found = price_for({name: entry.model_dump() for name, entry in self.prices.items()}, self.model_name)
        if found is None or not isinstance(self.backend, OpenAIBatchConfig):
            return found
        cached = found.cached_input_per_million
        return Price(found.input_per_million * BATCH_DISCOUNT, found.output_per_million * BATCH_DISCOUNT,
                     None if cached is None else cached * BATCH_DISCOUNT)

    @property
    def kind(self) -> str:
        """The asset kind the Dagster UI shows for assets that call this backend."""
        return self.backend.kind

    def backend_client(self, cache_dir: Optional[Path] = None) -> ChatBackend:
        return self.backend.build(cache_dir)

    def weighted_judge(self):
        """This LLM as a probability-weighted (G-Eval) judge: a local GGUF read teacher-forced, an
        endpoint through its top_logprobs; None where no token probabilities are at hand (the Batch
        API, vLLM offline): grades are then the digits the judge wrote, and reports say so."""
        from ragtune.evaluate.geval import EndpointJudge, LocalJudge

        if isinstance(self.backend, LlamaCppConfig):
            return LocalJudge(self.backend.model_path, self.backend.n_threads)
        if isinstance(self.backend, OpenAIConfig):
            return EndpointJudge(self.backend.base_url, self.backend.model, self.backend.api_key(), self.backend.json_mode,
                                 timeout=self.backend.timeout_s)
        return None

    def client(self, cache_dir: Path) -> CachedLLM:
        return CachedLLM(self.backend_client(cache_dir), LLMCache(cache_dir))

    @property
    def endpoint(self) -> str:
        """What a failure names: the endpoint's URL (no credentials), or the local model."""
        if isinstance(self.backend, EndpointConfig):
            return f"the LLM endpoint {public_url(self.backend.base_url)}"
        return f"the local model {self.model_name}"

    def unreachable(self) -> Optional[str]:
        """Why the endpoint cannot be used, in one line naming its URL (never the key), or None: one
        request before any work, so a down server is found before ingest, not after three step retries."""
        if not isinstance(self.backend, EndpointConfig):
            return None
        return probe_endpoint(self.backend.base_url, self.backend.api_key())


BACKENDS: dict[str, type[dg.Config]] = {"llamacpp": LlamaCppConfig, "openai": OpenAIConfig, "openai_batch": OpenAIBatchConfig, "vllm": VLLMConfig}
# Keyed by ragtune.llm.backends.BACKEND_KINDS, the one table of backends (tests/test_definitions.py holds them equal).


def llm_from_env(environ: Mapping[str, str], prices: Optional[Mapping[str, Mapping[str, float]]] = None,
                 prefix: str = "RAGTUNE_LLM_") -> LLMResource:
    """RAGTUNE_LLM_BACKEND (llamacpp, the default | openai | openai_batch | vllm) with the variables
    that backend reads: RAGTUNE_LLM_MODEL (a local model's short name) or RAGTUNE_LLM_GGUF (a path) for llamacpp; RAGTUNE_LLM_BASE_URL, RAGTUNE_LLM_MODEL,
    RAGTUNE_LLM_API_KEY, RAGTUNE_LLM_JSON_MODE (openai, openai_batch); RAGTUNE_LLM_MODEL (vllm). Another
    role reads the same names under its own prefix (role_llm)."""
    return LLMResource(backend=backend_from_env(environ, prefix), prices={name: ModelPrice(**entry) for name, entry in (prices or {}).items()})


# The resource of each role beside the generator (`llm`), and the prefix of its variables (ragtune.project).
ROLE_RESOURCES = {"grounded_judge_llm": "grounded_judge", "judge_llm": "judge", "reference_llm": "reference"}


def role_llm(environ: Mapping[str, str], role: str, prices: Optional[Mapping[str, Mapping[str, float]]] = None) -> Optional[LLMResource]:
    """The LLM a role's own variables name (RAGTUNE_JUDGE_*, RAGTUNE_GROUNDED_JUDGE_*, RAGTUNE_REFERENCE_*),
    or None where none is set: that role is then the generator."""
    prefix = ROLE_PREFIXES[role]
    if not any(environ.get(prefix + name) for name in ("BACKEND", "MODEL", "GGUF", "BASE_URL")):
        return None
    return llm_from_env(environ, prices, prefix)


def role_resources(environ: Mapping[str, str], generator: LLMResource,
                   prices: Optional[Mapping[str, Mapping[str, float]]] = None) -> dict[str, LLMResource]:
    """Every role's resource: its own where its variables name one, else the generator."""
    return {key: role_llm(environ, role, prices) or generator for key, role in ROLE_RESOURCES.items()}


def backend_from_env(environ: Mapping[str, str], prefix: str = "RAGTUNE_LLM_") -> BackendConfig:
    backend = environ.get(f"{prefix}BACKEND", "llamacpp")
    if backend not in BACKENDS:
        raise ValueError(f"{prefix}BACKEND={backend!r} is not a backend; use one of: {', '.join(BACKENDS)}")
    if backend == "llamacpp":
        return LlamaCppConfig(model_path=environ.get(f"{prefix}GGUF") or environ.get(f"{prefix}MODEL") or None)
    if backend == "vllm":
        if not environ.get(f"{prefix}MODEL"):
            raise ValueError(f"{prefix}BACKEND=vllm needs {prefix}MODEL (a hub id or a local model folder)")
        return VLLMConfig(model=environ[f"{prefix}MODEL"])
    if not environ.get(f"{prefix}BASE_URL"):
        raise ValueError(f"{prefix}BACKEND={backend} needs {prefix}BASE_URL (or --base-url, or the project file's base_url): "
                         f"the endpoint, e.g. https://api.openai.com/v1 or {DEFAULT_BASE_URL} for a local vLLM or llama.cpp server")
    return BACKENDS[backend](
        base_url=environ[f"{prefix}BASE_URL"],
        model=environ.get(f"{prefix}MODEL", DEFAULT_MODEL),
        api_key_env=f"{prefix}API_KEY" if environ.get(f"{prefix}API_KEY") else None,
        json_mode=environ.get(f"{prefix}JSON_MODE", "json_schema"),
    )


def local_client(model: str, cache_dir: Path) -> CachedLLM:
    """A local model (short name or GGUF path) through llama.cpp behind the same cache: a second role
    beside the configured LLM, e.g. the rewriter of questions that do not fit (qa_candidates rewrite_model)."""
    return CachedLLM(LlamaCppConfig(model_path=model).build(cache_dir), LLMCache(cache_dir))
