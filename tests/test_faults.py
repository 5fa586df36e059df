"""Faults on the LLM path, with real processes: the OpenAI-compatible server (llama.cpp's) killed in
the middle of a chapter, and an endpoint that answers garbage. Corrupted cache entries are in
test_llm.py, a SIGKILLed generation process in test_resume.py."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from pipeline_assets.config import fail_if_endpoint_down
from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
from ragtune.index.chunking import chunk_chapter
from ragtune.index.vector_index import ChunkIndex
from ragtune.llm.backends import OpenAICompatibleBackend
from ragtune.llm.client import CachedLLM, LLMCache
from tests.servers import free_port, start_llama_server

pytestmark = pytest.mark.slow
SETTINGS = GenerationSettings(quota=8, max_waves=1, first_keep_rate=1.0, max_tokens=120, retries=1)


@pytest.fixture(scope="module")
def plan(handbook_document, embedder):
    chunks = [c for ch in handbook_document.chapters for c in chunk_chapter(ch, handbook_document.doc_id, embedder.tokenize)]
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    chapter = next(c for c in handbook_document.chapters if c.chapter_key == "anxiety-disorders")
    return plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=8, top_k=2))


def _start_server(port: int):
    return start_llama_server(port, "--n_ctx", "4096")


def _backend(port: int) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(f"http://127.0.0.1:{port}/v1", "smollm2", json_mode="json_object", concurrency=1,
                                   max_retries=2, timeout_s=60)


def test_server_killed_mid_chapter_fails_clearly_then_resumes_with_nothing_repaid_or_lost(plan, tmp_path):
    port = free_port()
    cache_dir = tmp_path / "cache"
    server = _start_server(port)
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(
        result=generate_chapter_qa(plan, CachedLLM(_backend(port), LLMCache(cache_dir)), SETTINGS)))
    worker.start()
    while len(list(cache_dir.glob("*/*.json"))) < 2 and worker.is_alive():
        time.sleep(0.2)
    server.kill()  # the endpoint dies with calls still to make
    server.wait()
    killed_at = time.monotonic()
    worker.join(timeout=300)
    assert not worker.is_alive()
    assert time.monotonic() - killed_at < 120  # bounded retries, not a hang
    first = outcome["result"]
    down = [f for f in first.failures if f.get("unavailable")]
    assert down and all("APIConnectionError" in f["reason"] for f in down)
    assert first.endpoint_down and not first.exhausted  # stopped at the outage, not "exhausted" in `ragtune status`
    endpoint = f"the LLM endpoint http://127.0.0.1:{port}/v1"
    with pytest.raises(dg.Failure, match=f"{endpoint} did not answer .* after its retries") as failed:
        fail_if_endpoint_down("chapter 'anxiety-disorders'", first.failures, first.llm_calls, endpoint)
    assert failed.value.allow_retries is False  # one clear failure, not three step retries each waiting out the client's
    finished = {p.stem for p in cache_dir.glob("*/*.json")}
    assert len(finished) >= 2

    server = _start_server(port)  # the endpoint is back; the same chapter runs again
    try:
        llm = CachedLLM(_backend(port), LLMCache(cache_dir))
        second = generate_chapter_qa(plan, llm, SETTINGS)
    finally:
        server.kill()
        server.wait()
    now = {p.stem for p in cache_dir.glob("*/*.json")}
    assert llm.hits == len(finished)  # every call finished before the kill is reused: 0 repaid
    assert llm.calls == len(now - finished)  # each call made now is one that had not finished
    assert not [f for f in second.failures if f.get("unavailable")]
    used = {row["generation"]["cache_key"] for row in second.qa_pairs} | {f.get("cache_key") for f in second.failures}
    assert {row["generation"]["cache_key"] for row in first.qa_pairs} <= used  # 0 lost: every earlier pair is in the result
    fail_if_endpoint_down("chapter 'anxiety-disorders'", second.failures, llm.calls)  # nothing to fail on


class _Garbage(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint gone wrong: completions whose content is not JSON, or bodies that are not JSON."""

    mode = "content"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "content":
            body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "smollm2",
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": "<html>oops {\"pairs\": [tru"}}],
                               "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6}}).encode()
        else:
            body = b"\x00\xffnot json at all"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("mode", ["content", "body"])
def test_garbage_from_the_endpoint_becomes_ledger_entries_and_the_run_goes_on(plan, tmp_path, mode):
    handler = type("Handler", (_Garbage,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        llm = CachedLLM(_backend(server.server_address[1]), LLMCache(tmp_path))
        result = generate_chapter_qa(plan, llm, SETTINGS)
    finally:
        server.shutdown()
    assert result.qa_pairs == [] and result.failures
    rounds = {f["round"] for f in result.failures}
    for failure in result.failures:
        assert failure["reason"] and not failure.get("unavailable")
    if mode == "content":  # parsed, found malformed, retried once with a new seed, then recorded with the raw text
        assert len(result.failures) == 2 * len(rounds) and all(f["raw"].startswith("<html>oops") for f in result.failures)
    else:  # the client cannot read the response: recorded at once as a call error
        assert len(result.failures) == len(rounds) and all(f["reason"].startswith("llm error:") for f in result.failures)
    fail_if_endpoint_down("chapter 'anxiety-disorders'", result.failures, 0)  # garbage is not an outage: no failure
