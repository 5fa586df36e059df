"""The OpenAI-compatible backend against a real OpenAI-compatible server on localhost:
llama-cpp-python's server running the same SmolLM2 GGUF."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request

import pytest

from ragtune.llm.backends import OpenAICompatibleBackend
from ragtune.llm.client import CachedLLM, ChatRequest, LLMCache, SamplingParams
from tests.servers import free_port, llama_server_url, start_llama_server


@pytest.fixture(scope="module")
def server_url():
    with llama_server_url("--n_ctx", "1024") as url:
        yield url


def test_openai_backend_returns_schema_json_and_caches(server_url, tmp_path):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    llm = CachedLLM(OpenAICompatibleBackend(server_url, "smollm2", json_mode="json_object"), LLMCache(tmp_path))
    messages = [{"role": "user", "content": "Name one symptom of depression. Reply as JSON."}]
    first = llm.complete(messages, SamplingParams(temperature=0.0, max_tokens=40, seed=1), schema)
    assert isinstance(json.loads(first.text)["answer"], str)
    assert first.model == f"openai:smollm2@{server_url}" and first.completion_tokens > 0
    again = llm.complete(messages, SamplingParams(temperature=0.0, max_tokens=40, seed=1), schema)
    assert again.cached and llm.calls == 1


def test_an_endpoint_that_serves_another_model_under_the_same_address_misses_the_cache(tmp_path):
    """The cache identity of an endpoint holds the served model as the server lists it (GET /models,
    no tokens): a restart serving the same model hits the cache, one serving another model misses it,
    though the published model id (alias@URL) is the same. llama.cpp's server lists its alias, so
    that is what changes here; vLLM lists the weights' path."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    messages = [{"role": "user", "content": "Name one symptom of anxiety."}]
    sampling = SamplingParams(temperature=0.0, max_tokens=12, seed=1)

    def ask(*server_args: str):
        server = start_llama_server(port, "--n_ctx", "512", *server_args)
        try:
            llm = CachedLLM(OpenAICompatibleBackend(url, "smollm2", json_mode="none"), LLMCache(tmp_path))
            return llm.complete(messages, sampling), llm.backend.cache_identity
        finally:
            server.kill()
            server.wait()

    first, identity = ask()
    again, same = ask()
    other, changed = ask("--model_alias", "smollm2-finetuned")  # requests for "smollm2" are still answered
    assert not first.cached and again.cached and same == identity and "#served:" in identity
    assert not other.cached and changed != identity
    assert first.model == again.model == other.model == f"openai:smollm2@{url}"  # what rows publish


def test_openai_backend_error_is_raised_not_swallowed(tmp_path):
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{free_port()}/v1", "smollm2", timeout_s=2, max_retries=1)
    with pytest.raises(Exception):
        backend.chat(ChatRequest([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=5)))


class _Proxy(http.server.ThreadingHTTPServer):
    """Forwards to the real server; answers the first `refuse` chat requests with 429 then 503,
    and records how many requests were in flight at once."""

    def __init__(self, upstream: str, refuse: int):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream, self.refuse = upstream, refuse
        self.lock = threading.Lock()
        self.seen = self.in_flight = self.max_in_flight = 0


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: _Proxy = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with server.lock:
            server.seen += 1
            refused = server.seen <= server.refuse
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            if refused:
                status, payload = (429, b'{"error": "slow down"}') if server.seen % 2 else (503, b'{"error": "busy"}')
                headers = {"Content-Type": "application/json", "Retry-After": "0"}
            else:
                request = urllib.request.Request(server.upstream + self.path.removeprefix("/v1"), data=body,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=120) as response:
                    status, payload, headers = response.status, response.read(), {"Content-Type": "application/json"}
        finally:
            with server.lock:
                server.in_flight -= 1
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def proxy(server_url):
    def start(refuse: int) -> _Proxy:
        server = _Proxy(server_url, refuse)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    servers: list[_Proxy] = []
    yield start
    for server in servers:
        server.shutdown()


def _batch(n: int) -> list[ChatRequest]:
    schema = {"type": "object", "properties": {"symptom": {"type": "string"}}, "required": ["symptom"]}
    return [ChatRequest([{"role": "user", "content": f"Name symptom number {i} of anxiety as JSON."}],
                        SamplingParams(temperature=0.0, max_tokens=24, seed=i), schema) for i in range(n)]


def test_a_batch_runs_concurrently_up_to_the_limit(proxy, tmp_path):
    server = proxy(refuse=0)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    backend = OpenAICompatibleBackend(url, "smollm2", json_mode="json_object", concurrency=3)
    results = CachedLLM(backend, LLMCache(tmp_path)).complete_many(_batch(6))
    assert all(isinstance(json.loads(r.text)["symptom"], str) for r in results)
    assert server.seen == 6 and server.max_in_flight == 3


def test_429_and_503_are_retried_with_backoff(proxy, tmp_path):
    server = proxy(refuse=2)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    llm = CachedLLM(OpenAICompatibleBackend(url, "smollm2", json_mode="json_object", concurrency=1, max_retries=3),
                    LLMCache(tmp_path))
    (result,) = llm.complete_many(_batch(1))
    assert json.loads(result.text)["symptom"] and server.seen == 3 and llm.calls == 1


def test_retries_run_out_into_a_recorded_failure(proxy, tmp_path):
    server = proxy(refuse=100)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    llm = CachedLLM(OpenAICompatibleBackend(url, "smollm2", json_mode="json_object", max_retries=2), LLMCache(tmp_path))
    results = llm.complete_many(_batch(2))
    assert all(type(r).__name__ in ("RateLimitError", "InternalServerError") for r in results)
    assert server.seen == 6 and llm.calls == 0  # 1 try + 2 retries each, nothing cached
