"""DOCX, PPTX, EPUB and HTML files, written here by the real libraries that make them, parse into
the same document model as PDFs; files are told by content as well as by name; a file that is
none of the formats gets a clear per-file error and the other files go on."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import dagster as dg
import pytest

from ragtune.ingest.formats import file_format
from ragtune.ingest.pdf_parser import ParseError
from ragtune.ingest.sources import expand_paths, parse_all, parse_document
from tests.conftest import SAMPLE_HANDBOOK


def _blocks(document):
    return [(s.section_path, b) for c in document.chapters for s in c.sections for b in s.blocks]


@pytest.fixture(scope="module")
def protocol_docx(tmp_path_factory) -> Path:
    """A clinic protocol as Word writes it: title, headings, a numbered and a bulleted list, a table."""
    import docx

    document = docx.Document()
    document.add_heading("Depression Care Protocol", level=1)
    document.add_paragraph("This protocol describes how the clinic screens and treats adults with depressive symptoms.")
    document.add_heading("Screening", level=2)
    document.add_paragraph("Every new patient completes the PHQ-9 questionnaire at the first visit.")
    for step in ("Score the questionnaire on the day of the visit.", "Book a review within two weeks when the score is 10 or more."):
        document.add_paragraph(step, style="List Number")
    document.add_heading("Treatment", level=2)
    for option in ("Cognitive behavioural therapy for mild to moderate episodes.", "An SSRI when the episode is moderate or severe."):
        document.add_paragraph(option, style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for row, cells in zip(table.rows, [("Severity", "First step"), ("Mild", "Guided self-help"), ("Severe", "Psychiatric referral")]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    document.add_heading("Anxiety Care Protocol", level=1)
    document.add_paragraph("Adults with generalised anxiety are offered psychoeducation and a stepped care plan.")
    path = tmp_path_factory.mktemp("docx") / "protocol.docx"
    document.save(path)
    return path


def test_a_word_document_keeps_its_headings_lists_and_table(protocol_docx):
    document = parse_document(protocol_docx)
    assert document.parser == "markitdown-docx" and document.page_count == 0
    assert [(c.chapter_key, c.title) for c in document.chapters] == [
        ("depression-care-protocol", "Depression Care Protocol"), ("anxiety-care-protocol", "Anxiety Care Protocol")]
    blocks = _blocks(document)
    numbered = [(b.label, b.text) for _, b in blocks if b.kind == "list_item" and b.label != "•"]
    assert numbered == [("1", "Score the questionnaire on the day of the visit."), ("2", "Book a review within two weeks when the score is 10 or more.")]
    bullets = [b.text for path, b in blocks if b.kind == "list_item" and b.label == "•"]
    assert bullets == ["Cognitive behavioural therapy for mild to moderate episodes.", "An SSRI when the episode is moderate or severe."]
    (table,) = [b for _, b in blocks if b.kind == "table"]
    assert table.rows == [["Severity", "First step"], ["Mild", "Guided self-help"], ["Severe", "Psychiatric referral"]]
    screening = next(path for path, b in blocks if "PHQ-9" in b.text)
    assert screening == ["Depression Care Protocol", "Screening"]


def test_an_epub_gives_one_chapter_per_spine_document(tmp_path):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("ragtune-test-leaflets")
    book.set_title("Patient Leaflets")
    book.set_language("en")
    chapters = []
    for number, (title, body) in enumerate([
        ("Panic Disorder", "<p>A panic attack peaks within minutes and passes.</p><ul><li>Breathe slowly.</li><li>Stay where you are.</li></ul>"),
        ("Insomnia", "<h2>Sleep habits</h2><p>Keep the same waking time every day, weekends included.</p>"),
    ], start=1):  # fmt: skip
        item = epub.EpubHtml(title=title, file_name=f"chapter{number}.xhtml", lang="en")
        item.content = f"<html><body><h1>{title}</h1>{body}</body></html>"
        book.add_item(item)
        chapters.append(item)
    book.toc = chapters
    book.spine = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    path = tmp_path / "leaflets.epub"
    epub.write_epub(str(path), book)
    document = parse_document(path)
    assert document.parser == "markitdown-epub"
    assert [c.title for c in document.chapters] == ["Panic Disorder", "Insomnia"]
    panic, insomnia = document.chapters
    assert [(b.kind, b.label, b.text) for s in panic.sections for b in s.blocks] == [
        ("paragraph", "", "A panic attack peaks within minutes and passes."),
        ("list_item", "•", "Breathe slowly."), ("list_item", "•", "Stay where you are.")]
    assert [s.section_path for s in insomnia.sections] == [["Insomnia", "Sleep habits"]]
    assert "Title:" not in "\n".join(c.text() for c in document.chapters)


def test_an_html_leaflet_and_a_slide_deck(tmp_path):
    page = tmp_path / "leaflet.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>Talking therapies</title><script>var x = 1;</script></head><body>"
        "<h1>Talking therapies</h1><p>Talking therapies help with <b>anxiety</b> and low mood.</p>"
        "<ol><li>Ask your doctor for a referral.</li><li>Attend an assessment.</li></ol></body></html>",
        encoding="utf-8",
    )
    leaflet = parse_document(page)
    assert leaflet.parser == "markitdown-html"
    assert [(b.kind, b.label, b.text) for _, b in _blocks(leaflet)] == [
        ("paragraph", "", "Talking therapies help with anxiety and low mood."),
        ("list_item", "1", "Ask your doctor for a referral."), ("list_item", "2", "Attend an assessment.")]
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Sleep hygiene"
    slide.placeholders[1].text = "Keep a regular waking time"
    deck.save(tmp_path / "talk.pptx")
    slides = parse_document(tmp_path / "talk.pptx")
    assert slides.parser == "markitdown-pptx" and "Keep a regular waking time" in slides.chapters[0].text()


def test_files_are_told_by_content_not_only_by_name(protocol_docx, tmp_path):
    renamed = tmp_path / "protocol"  # no extension, as mail attachments arrive
    shutil.copy(protocol_docx, renamed)
    assert file_format(renamed) == "docx" and parse_document(renamed).chapters[0].title == "Depression Care Protocol"
    mislabelled = tmp_path / "handbook.docx"
    shutil.copy(SAMPLE_HANDBOOK, mislabelled)
    assert file_format(mislabelled) == "pdf"
    assert [p.name for p in expand_paths([str(tmp_path)])] == ["handbook.docx", "protocol"]


@pytest.mark.parametrize(
    "name, content, problem, remedy",
    [
        ("broken.docx", b"this is not a zip archive", "named .docx but its content is not a DOCX", "re-export"),
        ("notes.epub", b"PK\x03\x04 truncated", "named .epub but its content is not a EPUB", "re-export"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb", "unsupported file type ('.jpg'", "give a PDF, DOCX"),
    ],
)
def test_a_file_that_is_none_of_the_formats_gets_a_clear_error(tmp_path, name, content, problem, remedy):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ParseError) as error:
        parse_document(path)
    assert name in str(error.value) and problem in error.value.problem and remedy in error.value.remedy


def test_a_damaged_docx_inside_a_valid_zip_is_a_clear_error(protocol_docx, tmp_path):
    damaged = tmp_path / "damaged.docx"
    with zipfile.ZipFile(protocol_docx) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data[: len(data) // 3] if item.filename == "word/document.xml" else data)
    with pytest.raises(ParseError) as error:
        parse_document(damaged)
    assert "not a readable Word document" in error.value.problem and "save it again" in error.value.remedy


def test_a_run_over_mixed_formats_parses_the_good_ones_and_lists_the_bad(protocol_docx, tmp_path):
    from pipeline_assets.definitions import build_defs
    from resources import DataDirResource

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(protocol_docx, inbox / "protocol.docx")
    (inbox / "empty.html").write_text("<!DOCTYPE html><html><body><img src='x.png'></body></html>", encoding="utf-8")
    (inbox / "broken.docx").write_bytes(b"not a zip")
    (inbox / "抑郁.md").write_text("# 抑郁障碍\n\n情绪低落和兴趣减退持续至少两周。\n", encoding="utf-8")
    documents, failures = parse_all([str(inbox)])
    assert [d.parser for d in documents] == ["markitdown-docx", "markdown"]
    assert [(Path(f["path"]).name, f["problem"].split(" (")[0]) for f in failures] == [
        ("broken.docx", "named .docx but its content is not a DOCX"), ("empty.html", "the HTML page holds no text")]
    defs = build_defs({"storage": DataDirResource(data_dir=str(tmp_path / "data"))})
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("parsed_documents")},
        asset_check_selection={dg.AssetCheckKey(dg.AssetKey("parsed_documents"), "every_document_parsed")})
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, run_config={"ops": {"parsed_documents": {"config": {"paths": [str(inbox)]}}}})
        assert sorted(instance.get_dynamic_partitions("chapters")) == ["anxiety-care-protocol", "depression-care-protocol", "yi-yu-zhang-ai"]
        (check,) = result.get_asset_check_evaluations()
        assert not check.passed and check.metadata["failed_documents"].value == 2
    raw = (tmp_path / "data" / "parsed" / "manifest.json").read_text(encoding="utf-8")
    assert "抑郁.md" in raw  # readable, not \\u escapes
    manifest = json.loads(raw)
    assert {Path(f["path"]).name for f in manifest["failures"]} == {"broken.docx", "empty.html"}
