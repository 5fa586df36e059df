"""Kill a generation process with SIGKILL mid-partition and rerun: every call that had finished
is reused from the cache (0 repaid), and none of the finished items is missing from the rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

from ragtune.generate.evidence import EvidencePlan, EvidenceSettings, plan_chapter_evidence
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
from ragtune.index.chunking import chunk_chapter
from ragtune.index.vector_index import ChunkIndex
from ragtune.llm.backends import LlamaCppBackend
from ragtune.llm.client import CachedLLM, LLMCache
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # runs the embedded LLM in a child process

SETTINGS = GenerationSettings(quota=100, max_waves=1, first_keep_rate=1.0, max_tokens=120, retries=1, free_questions=True)  # one wave of all 8 rounds

GENERATE = """
import json, sys
from ragtune.llm.backends import LlamaCppBackend
from ragtune.llm.client import CachedLLM, LLMCache
from ragtune.generate.evidence import EvidencePlan
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa

plan = EvidencePlan.from_dict(json.load(open(sys.argv[1])))
settings = GenerationSettings(**json.loads(sys.argv[3]))
generate_chapter_qa(plan, CachedLLM(LlamaCppBackend(n_ctx=2048), LLMCache(sys.argv[2])), settings)
"""


def _cached(cache_dir) -> set[str]:
    return {p.stem for p in cache_dir.glob("*/*.json")}


def test_sigkill_mid_partition_then_rerun_repays_nothing(handbook_document, embedder, tmp_path):
    chapter = next(c for c in handbook_document.chapters if c.chapter_key == "anxiety-disorders")
    chunks = [c for ch in handbook_document.chapters for c in chunk_chapter(ch, handbook_document.doc_id, embedder.tokenize)]
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=8, top_k=2))
    plan_path, cache_dir = tmp_path / "plan.json", tmp_path / "cache"
    plan_path.write_text(json.dumps(plan.to_dict()))

    process = subprocess.Popen(
        [sys.executable, "-c", GENERATE, str(plan_path), str(cache_dir), json.dumps(asdict(SETTINGS))],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while len(_cached(cache_dir)) < 3:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "generation made no progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = _cached(cache_dir)
    assert 3 <= len(finished) < 8  # killed mid-partition

    llm = CachedLLM(LlamaCppBackend(n_ctx=2048), LLMCache(cache_dir))
    result = generate_chapter_qa(EvidencePlan.from_dict(json.loads(plan_path.read_text())), llm, SETTINGS)
    assert result.cache_hits == len(finished)  # every finished call reused ...
    assert llm.calls == result.llm_calls == len(_cached(cache_dir)) - len(finished)  # ... and only new calls paid
    used = {row["generation"]["cache_key"] for row in result.qa_pairs} | {f["cache_key"] for f in result.failures if "cache_key" in f}
    assert finished <= used  # no finished item lost
    assert result.llm_calls + result.cache_hits >= 8
