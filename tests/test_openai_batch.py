"""The OpenAI Batch API backend against a Batch API server on localhost whose lines are answered by
a real llama.cpp server (tests/batch_server.py): upload, create, poll and download; the cache it
shares with the online backend; a killed run that picks its batch up again instead of paying twice;
rejected batches and expired lines recorded per request; a chapter generated through it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragtune.llm.backends import OpenAIBatchBackend, OpenAICompatibleBackend
from ragtune.llm.backends.openai_batch import ENDPOINT, BatchFailed, BatchPending, BatchRequestFailed, batch_files, custom_id
from ragtune.llm.client import CachedLLM, ChatRequest, Completion, LLMCache, SamplingParams, endpoint_unavailable
from resources import LLMResource, OpenAIBatchConfig
from tests.batch_server import BatchServer
from tests.servers import ROOT, llama_server_url

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40}}, "required": ["answer"]}


def requests() -> list[ChatRequest]:
    sampling = SamplingParams(temperature=0.0, max_tokens=40, seed=3)
    return [
        ChatRequest([{"role": "user", "content": f"Name one symptom of {topic}. Reply as JSON."}], sampling, SCHEMA)
        for topic in ("depression", "panic disorder", "mania")
    ]


def backend(url: str, journal: Path, **options) -> OpenAIBatchBackend:
    return OpenAIBatchBackend(url, options.pop("model", "smollm2"), journal, json_mode="json_object", poll_interval_s=0.1, **options)


@pytest.fixture(scope="module")
def upstream():
    with llama_server_url("--n_ctx", "2048") as url:
        yield url


@pytest.fixture
def batch_api(upstream):
    server = BatchServer(upstream)
    yield server
    server.hold.set()
    server.shutdown()


def test_requests_go_up_as_one_batch_file_and_come_back_cached(batch_api, upstream, tmp_path):
    llm = CachedLLM(backend(batch_api.url, tmp_path / "journal"), LLMCache(tmp_path / "cache"))
    batch = requests()
    results = llm.complete_many([*batch, batch[0]])  # the repeat is sent once
    assert all(isinstance(r, Completion) for r in results), results
    assert all(isinstance(json.loads(r.text)["answer"], str) for r in results)
    assert results[3].text == results[0].text and llm.calls == 3

    (created,) = batch_api.batches.values()
    assert created["endpoint"] == ENDPOINT and created["completion_window"] == "24h"
    lines = [json.loads(raw) for raw in batch_api.files[created["input_file_id"]]["content"].decode().splitlines()]
    assert len(lines) == 3 and len({line["custom_id"] for line in lines}) == 3
    assert all(line["url"] == ENDPOINT and line["method"] == "POST" and line["body"]["model"] == "smollm2" for line in lines)
    assert lines[0]["body"]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert not list((tmp_path / "journal").glob("*.json"))  # collected, so nothing left to pick up

    again = llm.complete_many(batch)
    assert all(r.cached for r in again) and len(batch_api.batches) == 1

    # the same model's answers as the online API, so both share one model_id and one cache
    online = OpenAICompatibleBackend(upstream, "smollm2", json_mode="json_object")
    online_llm = CachedLLM(online, LLMCache(tmp_path / "online"))
    assert online.model_id == llm.model_id.replace(batch_api.url, upstream)
    assert online_llm.complete_many(batch[:1])[0].text == results[0].text


def test_requests_are_split_into_files_within_the_request_and_size_limits(batch_api, tmp_path):
    bodies = {custom_id({"n": n}): {"n": n, "text": "x" * 100} for n in range(7)}
    files = list(batch_files(bodies, max_requests=3, max_bytes=10_000))
    assert [len(keys) for keys, _ in files] == [3, 3, 1]
    one_line = len(files[0][1]) // 3
    assert [len(keys) for keys, _ in batch_files(bodies, max_requests=50, max_bytes=2 * one_line + 10)] == [2, 2, 2, 1]
    assert all(len(content) <= 2 * one_line + 10 for _, content in batch_files(bodies, 50, 2 * one_line + 10))
    assert [k for keys, _ in files for k in keys] == list(bodies)  # each request once, in order

    split = backend(batch_api.url, tmp_path / "journal", max_requests_per_batch=2)
    results = CachedLLM(split, LLMCache(tmp_path / "cache")).complete_many(requests())
    assert all(isinstance(r, Completion) for r in results) and len(split.submitted) == len(batch_api.batches) == 2


def test_a_batch_still_running_fails_the_wait_clearly_and_is_collected_on_the_rerun(batch_api, tmp_path):
    batch_api.hold.clear()
    first = CachedLLM(backend(batch_api.url, tmp_path / "journal", max_wait_s=0.5), LLMCache(tmp_path / "cache"))
    pending = first.complete_many(requests())
    assert all(isinstance(r, BatchPending) and endpoint_unavailable(r) for r in pending)
    assert "rerun to collect it" in str(pending[0]) and len(list((tmp_path / "journal").glob("*.json"))) == 1

    batch_api.hold.set()
    rerun_backend = backend(batch_api.url, tmp_path / "journal")
    results = CachedLLM(rerun_backend, LLMCache(tmp_path / "cache")).complete_many(requests())
    assert all(isinstance(r, Completion) for r in results)
    assert rerun_backend.submitted == [] and len(batch_api.batches) == 1  # picked up, not paid twice
    assert not list((tmp_path / "journal").glob("*.json"))


KILLED_RUN = """
import sys
from pathlib import Path
from ragtune.llm.client import CachedLLM, LLMCache
from tests.test_openai_batch import backend, requests
CachedLLM(backend(sys.argv[1], Path(sys.argv[2])), LLMCache(Path(sys.argv[3]))).complete_many(requests())
"""


def test_a_killed_run_picks_up_its_batch_instead_of_submitting_again(batch_api, tmp_path):
    batch_api.hold.clear()
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, batch_api.url, str(tmp_path / "journal"), str(tmp_path / "cache")],
                           cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "journal").glob("*.json")):
        assert run.poll() is None and time.monotonic() < deadline, "the run never journaled its batch"
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    batch_api.hold.set()

    rerun_backend = backend(batch_api.url, tmp_path / "journal")
    results = CachedLLM(rerun_backend, LLMCache(tmp_path / "cache")).complete_many(requests())
    assert all(isinstance(r, Completion) for r in results)
    assert rerun_backend.submitted == [] and len(batch_api.batches) == 1


def test_a_rejected_batch_and_expired_lines_are_recorded_per_request(batch_api, tmp_path):
    rejected = CachedLLM(backend(batch_api.url, tmp_path / "j1", model="no-such-model"), LLMCache(tmp_path / "c1")).complete_many(requests())
    assert all(isinstance(r, BatchFailed) and "model_not_found" in str(r) and not endpoint_unavailable(r) for r in rejected)
    assert not list((tmp_path / "j1").glob("*.json"))

    batch_api.expire_after = 1
    llm = CachedLLM(backend(batch_api.url, tmp_path / "j2"), LLMCache(tmp_path / "c2"))
    partial = llm.complete_many(requests())
    assert isinstance(partial[0], Completion)
    assert all(isinstance(r, BatchRequestFailed) and "batch_expired" in str(r) for r in partial[1:])

    batch_api.expire_after = None  # the rerun sends only what expired
    rerun = llm.complete_many(requests())
    assert rerun[0].cached and all(isinstance(r, Completion) and not r.cached for r in rerun[1:])
    last = list(batch_api.batches.values())[-1]
    assert len(batch_api.files[last["input_file_id"]]["content"].decode().splitlines()) == 2


def test_the_llm_resource_builds_the_batch_backend_with_its_journal_beside_the_cache(tmp_path, monkeypatch):
    from pipeline_assets.definitions import default_resources

    monkeypatch.setenv("RAGTUNE_LLM_BACKEND", "openai_batch")
    monkeypatch.setenv("RAGTUNE_LLM_BASE_URL", "https://api.openai.com/v1")
    assert isinstance(default_resources()["llm"].backend, OpenAIBatchConfig)

    resource = LLMResource(backend=OpenAIBatchConfig(base_url="https://api.openai.com/v1", model="gpt-4o-mini",
                                                  batch_poll_interval_s=5.0, batch_max_wait_s=60.0))
    client = resource.client(tmp_path / "cache" / "llm")
    assert isinstance(client.backend, OpenAIBatchBackend)
    assert client.backend.journal.root == tmp_path / "cache" / "llm" / "openai_batches"
    assert (client.backend.poll_interval_s, client.backend.max_wait_s) == (5.0, 60.0)
    assert client.model_id == "openai:gpt-4o-mini@https://api.openai.com/v1"


@pytest.mark.slow
def test_a_chapter_generates_through_the_batch_api(batch_api, tmp_path, handbook_document, embedder):
    from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence
    from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
    from ragtune.index.chunking import chunk_chapter
    from ragtune.index.vector_index import ChunkIndex

    chunks = [c for ch in handbook_document.chapters for c in chunk_chapter(ch, handbook_document.doc_id, embedder.tokenize)]
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    chapter = next(c for c in handbook_document.chapters if c.chapter_key == "anxiety-disorders")
    plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=4, top_k=2))
    settings = GenerationSettings(quota=4, max_waves=1, first_keep_rate=1.0, max_tokens=120, retries=1)
    llm = CachedLLM(backend(batch_api.url, tmp_path / "journal"), LLMCache(tmp_path / "cache"))
    result = generate_chapter_qa(plan, llm, settings)
    assert result.qa_pairs and not [f for f in result.failures if f.get("unavailable")], result.failures
    assert all(row["chapter_key"] == "anxiety-disorders" and row["generation"]["model"] == llm.model_id for row in result.qa_pairs)
    sent = sum(len(batch_api.files[b["input_file_id"]]["content"].splitlines()) for b in batch_api.batches.values())
    assert llm.calls == sent and result.llm_calls == sent  # every line sent came back and was cached once
