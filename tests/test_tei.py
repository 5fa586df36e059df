"""GROBID fulltext TEI -> document JSON, on every real GROBID output in the shared data (0.6.1 to 0.8.3)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from ragtune.ingest.pdf_parser import ParseError
from ragtune.ingest.tei_parser import TEI, parse_tei
from tests.conftest import ROOT, shared_path

NON_EMPTY = [
    "pairs/acl-2020-specter.tei.xml",
    "pairs/arxiv-1912.10667-getis-ord-pooling.tei.xml",
    "pairs/jner-2016-fes-hand-opening.tei.xml",
    "tei-only/elife-2022-78558.tei.xml",
    "tei-only/ijms-2023-24-05988.tei.xml",
    "tei-only/naacl-2021-224.tei.xml",
    "tei-only/nature-2023-s41586-023-05895-y.tei.xml",
    "tei-only/nature-plants-2023-s41477-023-01501-1.tei.xml",
    "tei-only/plos-one-2019-pone.0218311.tei.xml",
    "tei-only/sci-rep-2023-s41598-023-32039-z.tei.xml",
]


def _body_heads_with_text(path) -> list[str]:
    """Headings of body <div>s that hold any content besides the heading, read straight from the XML."""
    body = ET.parse(path).getroot().find(f"{TEI}text/{TEI}body")
    heads = []
    for div in body.iter(f"{TEI}div"):
        head = div.find(f"{TEI}head")
        content = [c for c in div if c.tag != f"{TEI}head" and c.tag != f"{TEI}div" and "".join(c.itertext()).strip()]
        if head is not None and "".join(head.itertext()).strip() and content:
            heads.append(" ".join("".join(head.itertext()).split()))
    return heads


def _first_paragraph(path) -> str:
    paragraph = ET.parse(path).getroot().find(f"{TEI}text/{TEI}body/{TEI}div/{TEI}p")
    return " ".join("".join(paragraph.itertext()).split())


@pytest.mark.parametrize("name", NON_EMPTY)
def test_every_grobid_version_converts_with_all_sections_and_text(name):
    path = shared_path("grobid", name)
    doc = parse_tei(path)
    chapter = doc.chapters[0]
    assert doc.parser == "grobid-tei" and doc.title and doc.authors and doc.abstract
    titles = [s.title for s in chapter.sections]
    assert titles[0] == "Abstract"
    heads = _body_heads_with_text(path)
    assert heads and [t for t in titles if t not in ("Abstract", "Body", "Figures and tables")] == heads
    texts = [b.text for s in chapter.sections for b in s.blocks]
    assert _first_paragraph(path) in texts
    assert all(s.section_path[0] == doc.title for s in chapter.sections)


def test_specter_metadata_formulas_and_tables():
    doc = parse_tei(shared_path("grobid", "pairs", "acl-2020-specter.tei.xml"))
    assert doc.title == "SPECTER: Document-level Representation Learning using Citation-informed Transformers"
    assert doc.authors[:2] == ["Arman Cohan", "Sergey Feldman"] and len(doc.authors) == 5
    assert doc.abstract.startswith("Representation learning is a critical ingredient")
    blocks = [b for s in doc.chapters[0].sections for b in s.blocks]
    assert sum(b.kind == "table" for b in blocks) == 4 and sum(b.kind == "formula" for b in blocks) == 4
    assert doc.page_count == 0 and doc.chapters[0].pages == []  # this TEI was made without coordinates


def test_head_numbering_becomes_the_section_path():
    doc = parse_tei(shared_path("grobid", "pairs", "arxiv-1912.10667-getis-ord-pooling.tei.xml"))
    paths = [s.section_path[1:] for s in doc.chapters[0].sections]
    assert ["Methods", "Getis-Ord G *"] in paths
    assert ["Related Work"] in paths
    lipid = parse_tei(shared_path("grobid", "tei-only", "ijms-2023-24-05988.tei.xml"))
    assert any(len(s.section_path) == 4 for s in lipid.chapters[0].sections)  # title + 2.1.1 nesting


def test_pages_come_from_coordinates():
    doc = parse_tei(shared_path("grobid", "pairs", "jner-2016-fes-hand-opening.tei.xml"))
    assert doc.page_count == 8
    pages = doc.chapters[0].pages
    assert pages[0] == 1 and pages[-1] == 8
    participants = next(s for s in doc.chapters[0].sections if s.title == "Participants")
    assert participants.pages and all(1 <= p <= 8 for p in participants.pages)


def test_tables_keep_rows():
    doc = parse_tei(shared_path("grobid", "tei-only", "plos-one-2019-pone.0218311.tei.xml"))
    table = next(b for s in doc.chapters[0].sections for b in s.blocks if b.kind == "table")
    assert len(table.rows) >= 10 and all(isinstance(cell, str) for row in table.rows for cell in row)
    assert " | ".join(table.rows[0]) in table.text


def test_empty_result_is_a_clear_error():
    with pytest.raises(ParseError, match="GROBID extracted no text"):
        parse_tei(shared_path("grobid", "tei-only", "edge-case-empty-result-0.8.2.tei.xml"))


def test_not_tei_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.tei.xml"
    bad.write_text("<html><body>hello</body></html>")
    with pytest.raises(ParseError, match="not <TEI>"):
        parse_tei(bad)
    bad.write_text("<TEI><unclosed>")
    with pytest.raises(ParseError, match="not well-formed"):
        parse_tei(bad)


def test_cli_parses_tei_and_fails_cleanly_on_the_empty_result():
    ok = subprocess.run(
        [sys.executable, "-m", "pipeline_assets.cli", "parse", str(shared_path("grobid", "tei-only", "naacl-2021-224.tei.xml"))],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["title"] == "Incorporating External Knowledge to Enhance Tabular Reasoning" and len(data["authors"]) == 3
    empty = subprocess.run(
        [sys.executable, "-m", "pipeline_assets.cli", "parse", str(shared_path("grobid", "tei-only", "edge-case-empty-result-0.8.2.tei.xml"))],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert empty.returncode == 2 and len(empty.stderr.strip().splitlines()) == 1
    assert "GROBID extracted no text" in empty.stderr


def test_a_tei_document_chunks_with_provenance(embedder):
    from ragtune.index.chunking import chunk_chapter

    doc = parse_tei(shared_path("grobid", "pairs", "jner-2016-fes-hand-opening.tei.xml"))
    chunks = chunk_chapter(doc.chapters[0], doc.doc_id, embedder.tokenize)
    assert len(chunks) >= 20
    assert all(0 not in c.pages for c in chunks)
    assert all(c.pages for c in chunks if c.section_path[-1] != "Abstract")  # its abstract has no coords
    assert any(c.section_path[-1] == "Participants" for c in chunks)
