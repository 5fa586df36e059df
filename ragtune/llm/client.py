"""One chat interface over LLM backends, behind a content-addressed cache.

Every call is keyed by sha256 of (model, messages, JSON schema, sampling params incl. seed);
the rendered messages already contain the evidence and the prompt template, so the key covers
(evidence, template, model, sampling, seed). Requests go to the backend as one batch (vLLM
batches them, the OpenAI client runs them concurrently); each finished call is written to disk
the moment it returns, so a crashed or killed run repays nothing when it is rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Protocol

from ragtune.llm.reasoning import split_reasoning
from ragtune.llm.usage import Usage
from ragtune.stopping import check_stop

JUDGE_REPEAT_PENALTY = 1.1  # every judge's default: a small model's short JSON reply loops without it


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 384
    seed: int = 0
    repeat_penalty: float = 1.0  # llama.cpp's repeat_penalty, vLLM's repetition_penalty; small models loop without it

    def common(self) -> dict[str, float | int]:
        """The settings every backend names the same way (OpenAI API, vLLM, llama.cpp)."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens, "seed": self.seed}


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    schema: dict | None = None  # JSON schema the output must follow, where the backend can enforce it


@dataclass
class ChatResult:
    """What a backend returns: the message text as written, its token counts, and the provider's
    separate reasoning field where it has one (inline <think> blocks stay in `text`; the cache splits them)."""

    text: str
    completion_tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning: str = ""

    @property
    def usage(self) -> Usage:
        return Usage(1, self.prompt_tokens, self.cached_prompt_tokens, self.completion_tokens)


@dataclass
class Completion:
    """An answer as the pipeline sees it: the text to parse (thinking removed), its reasoning, and
    the tokens it cost when it was paid for (a cache hit carries the tokens of the call that made it)."""

    text: str
    cache_key: str
    cached: bool
    model: str
    completion_tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning: str = ""
    reasoning_finished: bool = True

    @property
    def usage(self) -> Usage:
        return Usage(1, self.prompt_tokens, self.cached_prompt_tokens, self.completion_tokens)

    @classmethod
    def from_record(cls, record: dict, key: str, cached: bool) -> "Completion":
        return cls(record["text"], key, cached, record["model"], int(record.get("completion_tokens", 0)),
                   int(record.get("prompt_tokens", 0)), int(record.get("cached_prompt_tokens", 0)),
                   record.get("reasoning", ""), record.get("reasoning_finished", True))


OnResult = Callable[[int, "ChatResult | Exception"], None]


# Errors that mean the endpoint could not answer at all (down, overloaded, timing out) after the
# backend's own retries, as opposed to a problem with one request. openai's and httpx's names.
UNAVAILABLE_ERRORS = frozenset({
    "APIConnectionError", "APITimeoutError", "InternalServerError", "RateLimitError", "ConnectError",
    "ConnectTimeout", "ReadTimeout", "RemoteProtocolError", "ConnectionError", "TimeoutError",
})


def endpoint_unavailable(error: BaseException) -> bool:
    return any(cls.__name__ in UNAVAILABLE_ERRORS for cls in type(error).__mro__)


URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
URL_QUERY = re.compile(r"(https?://[^\s?#\"']+)[?#][^\s\"']*")
TOKEN_LIKE = re.compile(r"\b(?:sk|pk|rk|hf|ghp|gho|xox[abp])[-_][A-Za-z0-9_-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
SECRET_NAMES = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.I)


def public_url(url: str) -> str:
    """A URL as it may be published (model ids, rows, reports, the dataset card): no user or password,
    no query string or fragment (where tokens travel)."""
    return URL_QUERY.sub(r"\1", URL_USERINFO.sub("", url))


def mask_secrets(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Text from a client or server error as it may go into a ledger or a log: the values of secret
    environment variables, token-like strings and URL credentials and queries replaced by ***."""
    environ = os.environ if environ is None else environ
    for name, value in environ.items():
        if SECRET_NAMES.search(name) and len(value) >= 8:
            text = text.replace(value, "***")
    return public_url(TOKEN_LIKE.sub("***", text))


def failure_record(error: BaseException) -> dict[str, object]:
    """How a failed call is written to a ledger: its reason (secrets masked), and whether the endpoint was down."""
    return {"reason": mask_secrets(f"llm error: {type(error).__name__}: {error}"), "unavailable": endpoint_unavailable(error)}


class ChatBackend(Protocol):
    model_id: str

    def chat_many(self, requests: list[ChatRequest], on_result: OnResult) -> None:
        """Answer every request; call on_result(index, result or exception) once per request as soon
        as it is done, in any order. One failed request must not stop the others."""


class LLMCache:
    """One JSON file per call under root/ab/abcdef....json, written atomically, with a digest of its
    content: a torn, garbled or edited entry is detected on read, counted in `corrupted`, and the
    call is made again instead of feeding damaged text to the pipeline."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.corrupted: list[str] = []  # keys of entries found damaged (and so regenerated)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    @staticmethod
    def _digest(record: dict) -> str:
        content = {k: v for k, v in record.items() if k not in ("key", "digest")}
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            intact = record.get("key") == key and record.get("digest") == self._digest(record)  # no digest, no trust
        except (OSError, ValueError, AttributeError):
            intact = False
        if not intact:
            self.corrupted.append(key)
            return None
        return record

    def put(self, key: str, record: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as handle:
            json.dump({**record, "key": key, "digest": self._digest(record)}, handle, ensure_ascii=False)
            tmp = handle.name
        os.replace(tmp, path)


def cache_key(model_id: str, request: ChatRequest) -> str:
    payload = json.dumps(
        {"model": model_id, "messages": request.messages, "sampling": asdict(request.sampling), "schema": request.schema},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CachedLLM:
    """The single entry point for every LLM call in the pipeline."""

    def __init__(self, backend: ChatBackend, cache: LLMCache):
        self.backend, self.cache = backend, cache
        self.calls = 0  # calls that reached the backend and returned
        self.hits = 0
        self.paid = Usage()  # tokens of the calls that reached the backend (cache hits excluded)
        self.on_progress: Callable[[int, int, int], None] | None = None  # (done, total, failed) as a batch fills

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def complete_many(self, requests: list[ChatRequest]) -> list[Completion | Exception]:
        """Cached answers at once; the rest in one backend batch, each persisted as it arrives.
        Identical requests in one batch are sent once. A failed request comes back as its exception.
        Keys use the backend's cache identity: its model id, and for an endpoint the model it serves."""
        identity = getattr(self.backend, "cache_identity", self.model_id)
        keys = [cache_key(identity, r) for r in requests]
        results: list[Completion | Exception | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            record = self.cache.get(key)
            if record is not None:
                self.hits += 1
                results[i] = Completion.from_record(record, key, True)
            else:
                pending.setdefault(key, []).append(i)
        order = list(pending)
        check_stop()  # nothing is sent once a stop was asked for
        tally = {"done": len(requests) - sum(len(v) for v in pending.values()), "failed": 0}

        def report() -> None:
            if self.on_progress is not None:
                self.on_progress(tally["done"], len(requests), tally["failed"])

        def on_result(position: int, outcome: ChatResult | Exception) -> None:
            key = order[position]
            if isinstance(outcome, ChatResult):
                text, reasoning, finished = split_reasoning(outcome.text, outcome.reasoning)
                record = {"text": text, "model": self.model_id, "completion_tokens": outcome.completion_tokens,
                          "prompt_tokens": outcome.prompt_tokens, "cached_prompt_tokens": outcome.cached_prompt_tokens}
                if reasoning or not finished:
                    record.update(reasoning=reasoning, reasoning_finished=finished)
                self.cache.put(key, record)
                self.calls += 1
                self.paid.add(outcome.usage)
                outcome = Completion.from_record(record, key, False)
            for i in pending[key]:
                results[i] = outcome
            tally["done"] += len(pending[key])
            tally["failed"] += len(pending[key]) if isinstance(outcome, Exception) else 0
            report()
            check_stop()  # this answer is saved; the rest of the batch is not asked

        report()
        if order:
            self.backend.chat_many([requests[pending[key][0]] for key in order], on_result)
        missing = [i for i, r in enumerate(results) if r is None]
        for i in missing:
            results[i] = RuntimeError(f"backend {self.model_id} returned no result for request {i}")
        return results  # type: ignore[return-value]

    def complete(self, messages: list[dict[str, str]], sampling: SamplingParams, schema: dict | None = None) -> Completion:
        result = self.complete_many([ChatRequest(messages, sampling, schema)])[0]
        if isinstance(result, Exception):
            raise result
        return result
