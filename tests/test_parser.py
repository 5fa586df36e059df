"""The embedded parser on the bundled handbook and on real NIMH PDFs; the `ragtune parse` command."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from ragtune.ingest.pdf_parser import ParseError, parse_pdf
from tests.conftest import ROOT, SAMPLE_HANDBOOK, shared_path

HANDBOOK_CHAPTERS = [
    "depressive-disorders",
    "anxiety-disorders",
    "bipolar-and-related-disorders",
    "trauma-and-stressor-related-disorders",
    "obsessive-compulsive-and-related-disorders",
    "feeding-and-eating-disorders",
]


def test_handbook_chapters_come_from_the_outline(handbook_document):
    doc = handbook_document
    assert doc.title == "Clinical Handbook of Common Psychiatric Disorders"
    assert doc.page_count == 19
    assert [c.chapter_key for c in doc.chapters] == HANDBOOK_CHAPTERS
    assert doc.chapters[0].title == "Depressive Disorders"  # numbering "1." stripped
    for chapter in doc.chapters:
        assert 2 <= len(chapter.pages) <= 4, chapter.chapter_key
        assert chapter.sections[0].section_path == [chapter.title, "Overview"]
        assert {"Differential Diagnosis", "Treatment and Management"} <= {s.title for s in chapter.sections}


def test_handbook_criteria_are_list_items_with_labels(handbook_document):
    criteria = handbook_document.chapters[0].sections[1]
    assert criteria.title == "Diagnostic Criteria for a Major Depressive Episode"
    labels = [b.label for b in criteria.blocks if b.kind == "list_item"]
    assert labels[:11] == ["A", "1", "2", "3", "4", "5", "6", "7", "8", "9", "B"]
    item = next(b for b in criteria.blocks if b.label == "4")
    assert item.text == "Sleeping too little or too much."
    assert criteria.pages == [2, 3]


def test_handbook_round_trips_to_its_source_block_for_block(handbook_document):
    """Running header and page numbers gone, justified lines whole, page breaks rejoined, the ruled
    table kept as its rows of cells (wrapped cell lines joined)."""
    from build_pdf import source_chapters

    kind = {"paragraph": "paragraph", "table": "table", "lettered": "list_item", "numbered": "list_item"}
    tables = 0
    for source, parsed in zip(source_chapters(), handbook_document.chapters):
        assert [s.title for s in parsed.sections] == [s.title for s in source.sections]
        for source_section, parsed_section in zip(source.sections, parsed.sections):
            expected = [(kind[b.kind], b.label, b.text, b.rows) for b in source_section.blocks]
            got = [(b.kind, b.label, "" if b.kind == "table" else b.text, b.rows) for b in parsed_section.blocks]
            assert got == expected, parsed_section.section_path
            tables += sum(b.kind == "table" for b in parsed_section.blocks)
    assert tables == 1


def test_paragraph_split_by_a_page_break_is_joined(handbook_document):
    bipolar = next(c for c in handbook_document.chapters if c.chapter_key == "bipolar-and-related-disorders")
    differential = next(s for s in bipolar.sections if s.title == "Differential Diagnosis")
    item = next(b for b in differential.blocks if b.label == "2")
    assert item.text.startswith("Substance or medication induced mania: stimulants")


NIMH = ["nimh-depression.pdf", "nimh-ocd.pdf", "nimh-ptsd.pdf", "nimh-gad-what-you-need-to-know.web-print.pdf"]


@pytest.mark.parametrize("name", NIMH)
def test_nimh_pdfs_parse_with_sections_and_full_text(name):
    path = shared_path("corpus", "pdf", name)
    rows = {r["file"]: r for r in csv.DictReader(open(shared_path("corpus", "index.tsv")), delimiter="\t")}
    expected_words = int(rows[f"pdf/{name}"]["words_approx"])
    doc = parse_pdf(path)
    assert len(doc.chapters) == 1
    words = sum(len(c.text().split()) for c in doc.chapters)
    assert abs(words - expected_words) / expected_words < 0.15, (words, expected_words)
    sections = [s.title for s in doc.chapters[0].sections]
    assert len(sections) >= 8
    assert all(b.page >= 1 for s in doc.chapters[0].sections for b in s.blocks)


def test_nimh_outline_sections_and_text():
    doc = parse_pdf(shared_path("corpus", "pdf", "nimh-depression.pdf"))
    assert doc.title == "Depression"
    chapter = doc.chapters[0]
    titles = [s.title for s in chapter.sections]
    assert "How is depression treated?" in titles
    assert ["Depression", "How is depression treated?", "Psychotherapy"] in [s.section_path for s in chapter.sections]
    assert "persistent depressive disorder" in chapter.text().lower()


def test_ruled_table_in_a_brochure_keeps_its_rows_and_frames_are_not_tables():
    doc = parse_pdf(shared_path("corpus", "pdf", "nimh-bipolar-disorder.pdf"))
    tables = [b for c in doc.chapters for s in c.sections for b in s.blocks if b.kind == "table"]
    assert len(tables) == 1 and tables[0].page == 3
    rows = tables[0].rows
    assert rows[0] == ["Symptoms of a Manic Episode", "Symptoms of a Major Depressive Episode"]
    assert len(rows) >= 8 and all(len(row) == 2 for row in rows)
    assert rows[1][1].startswith("Feeling very down")
    text = " ".join(c.text() for c in doc.chapters)
    assert text.count("Symptoms of a Manic Episode") == 1  # the cells are not repeated as paragraphs
    framed = parse_pdf(shared_path("corpus", "pdf", "nimh-dmdd-the-basics.pdf"))  # boxed page furniture only
    assert not [b for c in framed.chapters for s in c.sections for b in s.blocks if b.kind == "table"]


def test_web_print_without_outline_gets_sections_from_font_sizes():
    doc = parse_pdf(shared_path("corpus", "pdf", "nimh-gad-what-you-need-to-know.web-print.pdf"))
    assert doc.title.startswith("Generalized Anxiety Disorder")
    titles = [s.title.lower() for s in doc.chapters[0].sections]
    assert any("treated" in t for t in titles), titles


def test_unreadable_pdf_is_a_clear_parse_error(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n%%EOF\n")
    with pytest.raises(ParseError) as error:
        parse_pdf(bad)
    assert "broken.pdf" in str(error.value) and "not a readable PDF" in str(error.value)


def _ragtune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline_assets.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_parse_prints_document_json():
    result = _ragtune("parse", str(SAMPLE_HANDBOOK))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [c["chapter_key"] for c in data["chapters"]] == HANDBOOK_CHAPTERS
    first = data["chapters"][0]
    assert first["pages"] == [2, 3, 4] and len(first["content_sha256"]) == 64
    assert first["sections"][1]["blocks"][1] == {"kind": "list_item", "text": first["sections"][1]["blocks"][1]["text"], "page": 2, "label": "A"}


def test_cli_parse_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "notes.pdf"
    bad.write_text("this is not a pdf")
    result = _ragtune("parse", str(bad))
    assert result.returncode == 2  # bad input (docs/headless.md)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "notes.pdf" in lines[0] and "Traceback" not in result.stderr


def test_cli_parse_truncated_shared_pdf_exits_2():
    result = _ragtune("parse", str(shared_path("pdfs-hard", "truncated-invalid__header-plus-eof.pdf")))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "not a readable PDF" in result.stderr


def test_document_and_chapter_bundle_round_trip_through_json(handbook_document, tmp_path):
    from ragtune.ingest.document import Document
    from ragtune.ingest.sources import ChapterBundle, collect_chapter

    data = handbook_document.to_dict()
    assert Document.from_dict(data).to_dict() == data
    bundle = collect_chapter([handbook_document], "anxiety-disorders")
    bundle.save(tmp_path / "anxiety.json")
    loaded = ChapterBundle.load(tmp_path / "anxiety.json")
    assert loaded.content_sha256() == bundle.content_sha256()
    assert loaded.merged().text() == handbook_document.chapters[1].text()
    assert collect_chapter([handbook_document], "no-such-chapter") is None
