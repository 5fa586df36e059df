"""Markdown and plain-text documents parse into the same document JSON as PDFs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ragtune.ingest.pdf_parser import ParseError
from ragtune.ingest.sources import parse_document
from tests.conftest import ROOT, shared_path


def test_markdown_source_and_its_pdf_parse_to_the_same_blocks(handbook_document):
    for number, source in enumerate(sorted((ROOT / "sample_handbook" / "source").glob("*.md"))):
        from_markdown = parse_document(source).chapters[0]
        from_pdf = handbook_document.chapters[number]
        assert from_markdown.chapter_key == from_pdf.chapter_key
        assert [s.section_path for s in from_markdown.sections] == [s.section_path for s in from_pdf.sections]
        for md_section, pdf_section in zip(from_markdown.sections, from_pdf.sections):
            assert [(b.kind, b.label, b.text) for b in md_section.blocks] == [(b.kind, b.label, b.text) for b in pdf_section.blocks]


@pytest.mark.parametrize("name", ["nimh-perinatal-depression.md", "nimh-autism-spectrum-disorder.md", "nimh-suicide-statistics.md"])
def test_nimh_markdown_keeps_headings_lists_and_text(name):
    rows = {r["file"]: r for r in csv.DictReader(open(shared_path("corpus", "index.tsv")), delimiter="\t")}
    doc = parse_document(shared_path("corpus", "text", name))
    assert doc.parser == "markdown" and len(doc.chapters) == 1
    chapter = doc.chapters[0]
    words = len(chapter.text().split())
    expected = int(rows[f"text/{name}"]["words_approx"])
    assert abs(words - expected) / expected < 0.15, (words, expected)
    assert len(chapter.sections) >= 8
    assert all(b.page == 0 for s in chapter.sections for b in s.blocks)
    assert not any("](" in b.text or "**" in b.text for s in chapter.sections for b in s.blocks)


def test_markdown_nesting_and_list_items():
    doc = parse_document(shared_path("corpus", "text", "nimh-perinatal-depression.md"))
    chapter = doc.chapters[0]
    assert doc.title == "Perinatal Depression"
    nested = ["Perinatal Depression", "What is perinatal depression?", "How is postpartum depression different from “baby blues”?"]
    assert nested in [s.section_path for s in chapter.sections]
    symptoms = next(s for s in chapter.sections if s.title == "What are the signs and symptoms of perinatal depression?")
    items = [b for b in symptoms.blocks if b.kind == "list_item"]
    assert len(items) >= 5 and items[1].text == "Feelings of hopelessness or pessimism" and items[1].label == "•"


def test_several_top_headings_make_several_chapters_and_tables_keep_rows(tmp_path):
    path = tmp_path / "book.md"
    path.write_text(
        "Preface text before any heading.\n\n# Anxiety Disorders\n\n## Treatment\n\nExposure works.\n\n"
        "| Drug | Class |\n|---|---|\n| Sertraline | SSRI |\n| Venlafaxine | SNRI |\n\n"
        "# Bipolar Disorders\n\nMood episodes.\n\n1. Mania\n2. [Hypomania](https://example.org)\n",
        encoding="utf-8",
    )
    doc = parse_document(path)
    assert [c.chapter_key for c in doc.chapters] == ["anxiety-disorders", "bipolar-disorders"]
    anxiety, bipolar = doc.chapters
    assert anxiety.sections[0].blocks[0].text == "Preface text before any heading."
    table = anxiety.sections[1].blocks[1]
    assert table.kind == "table" and table.rows == [["Drug", "Class"], ["Sertraline", "SSRI"], ["Venlafaxine", "SNRI"]]
    assert [(b.label, b.text) for b in bipolar.sections[0].blocks if b.kind == "list_item"] == [("1", "Mania"), ("2", "Hypomania")]


def test_plain_text_document(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Clinic Notes on Insomnia\n\nSleep hygiene comes first.\nIt is cheap.\n\n- Fixed wake time\n- No screens\n", encoding="utf-8")
    doc = parse_document(path)
    chapter = doc.chapters[0]
    assert doc.title == "Clinic Notes on Insomnia" and chapter.chapter_key == "clinic-notes-on-insomnia"
    assert [(b.kind, b.text) for b in chapter.sections[0].blocks] == [
        ("paragraph", "Sleep hygiene comes first. It is cheap."),
        ("list_item", "Fixed wake time"),
        ("list_item", "No screens"),
    ]


def test_empty_or_binary_text_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n")
    with pytest.raises(ParseError, match="no text found"):
        parse_document(empty)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ParseError, match="not UTF-8"):
        parse_document(binary)




def test_one_unreadable_file_is_its_own_failure_and_the_folder_goes_on(tmp_path):
    """A real OS error on one file of a folder (reading /proc/self/mem through a link fails with EIO, for
    root too; a file without read permission, where the suite runs as a user) is that file's failure
    record and the rest is parsed: it used to end the whole ingest with a traceback."""
    import os

    from ragtune.ingest.sources import parse_all

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a-readable.md").write_text("# Readable\n\n## Part\n\nSome text a person wrote about worry.\n")
    expected = {}
    if Path("/proc/self/mem").exists():
        (folder / "b-device.md").symlink_to("/proc/self/mem")
        expected["b-device.md"] = "OSError"
    if os.geteuid() != 0:  # root reads any file whatever its mode bits
        locked = folder / "c-locked.md"
        locked.write_text("# Locked\n\nText nobody may read.\n")
        locked.chmod(0)
        expected["c-locked.md"] = "PermissionError"
    if not expected:
        pytest.skip("no /proc and running as root: no unreadable file to make here")
    documents, failures = parse_all([str(folder)])
    assert [d.title for d in documents] == ["Readable"]
    assert {Path(f["path"]).name: f["problem"].split("(")[1].split(":")[0] for f in failures} == expected
