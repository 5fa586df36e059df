"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
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
