"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("RAGTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
SAMPLE_HANDBOOK = ROOT / "sample_handbook" / "handbook.pdf"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT / "sample_handbook"))


def shared_path(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the team's shared data, absent on a user's machine)")
    return path


def tracked_copy(target: Path) -> Path:
    """The checkout's tracked files copied to target (what a release or the image's COPY holds: no data
    folder, no venv, no stale build/); skips where there is no git checkout to ask."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to know which files are tracked")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="session")
def handbook_document():
    from ragtune.ingest.pdf_parser import parse_pdf

    return parse_pdf(SAMPLE_HANDBOOK)


@pytest.fixture(scope="session")
def embedder():
    from ragtune.index.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def two_chapter_pdf(tmp_path_factory) -> Path:
    """A real PDF of two handbook chapters, built with the same script as the bundled one."""
    from build_pdf import build_pdf, source_chapters

    return build_pdf(source_chapters([2, 5]), tmp_path_factory.mktemp("fixture") / "two-chapters.pdf")


@pytest.fixture(scope="session")
def base_model_cache(tmp_path_factory) -> Path:
    """One dequantized copy of SmolLM2 per test session (the GGUF conversion costs ~30-80 s)."""
    return tmp_path_factory.mktemp("models") / "smollm2-hf"


def chapter_of(document, key: str):
    """The chapter of a parsed document with this chapter key."""
    return next(c for c in document.chapters if c.chapter_key == key)


@pytest.fixture(scope="session")
def handbook_chunks(handbook_document, embedder):
    """The bundled handbook cut into chunks, as chapter_chunks cuts it."""
    from ragtune.index.chunking import chunk_chapter

    return [c for ch in handbook_document.chapters for c in chunk_chapter(ch, handbook_document.doc_id, embedder.tokenize)]


@pytest.fixture(scope="session")
def handbook_index(handbook_chunks, embedder):
    """One real FAISS index over the whole handbook."""
    from ragtune.index.vector_index import ChunkIndex

    return ChunkIndex.build(handbook_chunks, embedder.encode([c.text for c in handbook_chunks]))


@pytest.fixture
def embedded_llm():
    """The embedded client: SmolLM2-135M through llama.cpp behind the content-addressed cache in a
    folder of the test's choosing (a second client on the same folder is a rerun)."""
    from ragtune.llm.backends import LlamaCppBackend
    from ragtune.llm.client import CachedLLM, LLMCache

    return lambda cache_dir: CachedLLM(LlamaCppBackend(n_ctx=2048), LLMCache(cache_dir))


def load_embedded_model(cache: Path):
    """(model, tokenizer) of SmolLM2-135M for transformers, dequantized into `cache` once and reloaded from it."""
    from ragtune.llm.backends import packaged_gguf_path
    from ragtune.train.lora import load_base_model

    gguf = Path(packaged_gguf_path())
    return load_base_model(str(gguf.parent), gguf.name, cache)


# `make test-fast` runs what needs none of these: a test that asks for the embedded LLM, the base
# model (training, evaluation) or a server (llama.cpp's, GROBID's stand-in, PostgreSQL, Redis, the
# Dagster webserver) is marked slow here, so the mark cannot be forgotten.
SLOW_FIXTURES = frozenset({
    "embedded_llm", "backend", "base_model_cache", "pipeline_run", "server_url", "proxy", "upstream", "batch_api",
    "keyed_server", "grobid", "postgres", "redis_url", "webserver", "dagster_dev", "page", "review_server",
})


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
