"""Any OpenAI-compatible endpoint (OpenAI, vLLM serve, llama.cpp server, Ollama), through the
openai client's async API: a batch runs with at most `concurrency` requests in flight, and the
client retries 408/409/429/5xx, timeouts and dropped connections with exponential backoff
(honouring Retry-After) up to `max_retries` times before a request counts as failed."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from ragtune.llm.client import ChatRequest, ChatResult, OnResult, mask_secrets, public_url
from ragtune.llm.control_tokens import STATIC

JSON_MODES = ("json_schema", "json_object", "none")
PROBE_TIMEOUT_S = 10.0


def served_model(base_url: str, model: str, api_key: str) -> str:
    """A digest of the endpoint's own account of the model it serves under this name (its
    GET /models entry, which costs no tokens): the weights' path for vLLM (root, parent), the
    listing's id, owner and creation time for OpenAI and llama.cpp's server. A server that now serves
    other weights under the same name gives another digest. "unlisted" when the listing has no such
    model (a single listed model is taken as the one served), "unverified" when it cannot be read."""
    from openai import OpenAI

    try:
        with OpenAI(base_url=base_url, api_key=api_key, timeout=PROBE_TIMEOUT_S, max_retries=0) as client:
            listed = [entry.model_dump() for entry in client.models.list()]
    except Exception:  # down, or no /models route: the key says so, and stays stable
        return "unverified"
    entry = next((e for e in listed if e.get("id") == model), listed[0] if len(listed) == 1 else None)
    if entry is None:
        return "unlisted"
    fields = ("id", "root", "parent", "max_model_len") if entry.get("root") else ("id", "owned_by", "created")  # vLLM's `created` is the request's time
    return hashlib.sha256(json.dumps({k: entry.get(k) for k in fields}, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ServedModelIdentity:
    """Cache identity of an endpoint backend: its published model id (alias@URL) plus the served
    model's digest, probed once, when the cache is first consulted."""

    base_url: str
    model: str
    model_id: str
    _api_key: str
    _served: str | None = None

    @property
    def cache_identity(self) -> str:
        if self._served is None:
            self._served = served_model(self.base_url, self.model, self._api_key)
        return f"{self.model_id}#served:{self._served}"


def chat_result(body: dict[str, Any]) -> ChatResult:
    """A chat-completions response body (online or a Batch API output line) as a ChatResult: the
    message, its reasoning field (DeepSeek's and vLLM's `reasoning_content`, OpenRouter's `reasoning`)
    and the usage, with the prompt tokens the provider's prompt cache served."""
    message = body["choices"][0]["message"]
    usage = body.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    return ChatResult(
        message.get("content") or "", int(usage.get("completion_tokens") or 0), int(usage.get("prompt_tokens") or 0),
        int(details.get("cached_tokens") or 0), reasoning if isinstance(reasoning, str) else "",
    )


def chat_arguments(model: str, json_mode: str, request: ChatRequest) -> dict[str, Any]:
    """The body of one chat-completions request (online or as a line of a Batch API file). The server
    renders and tokenizes the chat with special tokens parsed and its vocabulary is not known here, so
    the control tokens of the common templates are defanged in the messages (clean text is unchanged)."""
    arguments: dict[str, Any] = {"model": model, "messages": STATIC.messages(request.messages), **request.sampling.common()}
    if request.schema is not None and json_mode == "json_schema":
        arguments["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": request.schema, "strict": False},
        }
    elif request.schema is not None and json_mode == "json_object":
        arguments["response_format"] = {"type": "json_object", "schema": request.schema}
    return arguments


class OpenAICompatibleBackend(ServedModelIdentity):
    """json_mode: 'json_schema' (OpenAI, vLLM), 'json_object' (llama.cpp server: json_object plus a
    schema field) or 'none' (no structured output; the caller's parser and retries handle it).
    The API key is passed in by the resource from an environment variable and never stored elsewhere."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        json_mode: str = "json_schema",
        concurrency: int = 8,
        max_retries: int = 4,
    ):
        if json_mode not in JSON_MODES:
            raise ValueError(f"json_mode must be one of {', '.join(JSON_MODES)}, not {json_mode!r}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url, self.model, self.timeout_s, self.json_mode = base_url, model, timeout_s, json_mode
        self.concurrency, self.max_retries = concurrency, max_retries
        self._api_key = api_key or "not-needed"
        self.model_id = f"openai:{model}@{public_url(base_url)}"

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatibleBackend({self.model_id}, json_mode={self.json_mode}, concurrency={self.concurrency})"

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        return chat_arguments(self.model, self.json_mode, request)

    async def _run(self, requests: list[ChatRequest], on_result: OnResult) -> None:
        from openai import AsyncOpenAI

        limit = asyncio.Semaphore(self.concurrency)
        async with AsyncOpenAI(
            base_url=self.base_url, api_key=self._api_key, timeout=self.timeout_s, max_retries=self.max_retries
        ) as client:

            async def one(index: int, request: ChatRequest) -> None:
                async with limit:
                    try:
                        response = await client.chat.completions.create(**self._arguments(request))
                        result: ChatResult | Exception = chat_result(response.model_dump())
                    except Exception as error:  # recorded by the caller; the other requests go on
                        result = error
                on_result(index, result)

            await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))

    def chat_many(self, requests: list[ChatRequest], on_result: OnResult) -> None:
        asyncio.run(self._run(requests, on_result))

    def chat(self, request: ChatRequest) -> ChatResult:
        outcome: list[ChatResult | Exception] = []
        self.chat_many([request], lambda _, result: outcome.append(result))
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]


def probe_endpoint(base_url: str, api_key: str | None) -> str | None:
    """The same GET /models as served_model, asked before any work: None when the endpoint answers
    (any status but a refused key; some servers have no /models), else why not, naming the URL without
    credentials."""
    from openai import APIConnectionError, AuthenticationError, OpenAI, PermissionDeniedError

    where = public_url(base_url)
    try:
        with OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=PROBE_TIMEOUT_S, max_retries=0) as client:
            client.models.list()
    except APIConnectionError as error:  # refused, unresolvable or timed out
        cause = error.__cause__ or error
        return (f"the LLM endpoint {where} does not answer ({type(cause).__name__}: {mask_secrets(str(cause)) or 'no reply'}); "
                "start the server, or fix --base-url / RAGTUNE_LLM_BASE_URL")
    except (AuthenticationError, PermissionDeniedError) as error:
        return f"the LLM endpoint {where} refused the API key (HTTP {error.status_code}); check the variable --api-key-env names"
    except Exception:  # it answered, without a model list
        return None
    return None
