"""Every hard PDF ends in correct text or a clear per-document error; in a run the others go on."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

from ragtune.ingest.pdf_parser import ParseError, parse_pdf
from tests.conftest import SAMPLE_HANDBOOK, shared_path


def _text(doc) -> str:
    return "\n".join(b.text for c in doc.chapters for s in c.sections for b in s.blocks)


@pytest.mark.parametrize(
    "name, problem, remedy",
    [
        ("truncated-invalid__header-plus-eof.pdf", "not a readable PDF", "repair"),
        ("encrypted-rc4-128__libreoffice-writer-password.pdf", "encrypted", "password"),
    ],
)
def test_unusable_pdfs_give_a_clear_error(name, problem, remedy):
    with pytest.raises(ParseError) as error:
        parse_pdf(shared_path("pdfs-hard", name))
    assert name in str(error.value) and problem in error.value.problem and remedy in error.value.remedy


def test_encrypted_pdf_opens_with_its_password():
    path = shared_path("pdfs-hard", "encrypted-rc4-128__libreoffice-writer-password.pdf")
    with pytest.raises(ParseError, match="password is missing or wrong"):
        parse_pdf(path, password="wrong")
    assert "Lorem ipsum dolor sit amet" in _text(parse_pdf(path, password="openpassword"))


def test_broken_xref_is_recovered():
    assert "test example" in _text(parse_pdf(shared_path("pdfs-hard", "broken-xref__pypdf-issue-297.pdf")))


def test_right_to_left_text_survives():
    text = _text(parse_pdf(shared_path("pdfs-hard", "rtl-arabic-tounicode__habibi.pdf")))
    assert "habibi" in text and "حَبيبي" in text


def test_ocr_layer_of_a_scan_is_used():
    doc = parse_pdf(shared_path("pdfs-hard", "scanned-with-ocr-layer__siege-of-vicksburg.pdf"))
    assert doc.page_count == 6 and len(_text(doc).split()) > 2000


def test_two_columns_read_left_column_first_and_join_hyphens():
    text = _text(parse_pdf(shared_path("pdfs-hard", "two-column-digital__latex-multicolumn.pdf")))
    left_1 = text.index("Lorem ipsum dolor sit amet, consectetuer adipiscing elit. Ut purus elit")
    left_2 = text.index("Nam dui ligula, fringilla a, euismod sodales")
    right = text.index("Quisque ullamcorper placerat ipsum")
    assert left_1 < left_2 < right
    assert "adipiscing" in text and "adip- iscing" not in text


def test_long_book_gets_its_chapters():
    doc = parse_pdf(shared_path("pdfs-hard", "long-117-pages-german__geotopo.pdf"))
    assert doc.page_count == 117 and len(doc.chapters) >= 10
    assert len({c.chapter_key for c in doc.chapters}) == len(doc.chapters)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs Debian's tesseract-ocr (.ci/run installs it)")
def test_a_run_parses_the_good_documents_and_a_check_lists_the_bad(tmp_path):
    from PIL import Image

    from pipeline_assets.definitions import build_defs
    from resources import DataDirResource

    blank_scan = tmp_path / "blank-scan.pdf"  # no text layer, and nothing for OCR to read
    Image.new("L", (827, 1170), 255).save(blank_scan, "PDF", resolution=100)
    bad = [shared_path("pdfs-hard", "truncated-invalid__header-plus-eof.pdf"), blank_scan]
    defs = build_defs({"storage": DataDirResource(data_dir=str(tmp_path))})
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={dg.AssetKey("parsed_documents")},
                                                                   asset_check_selection={dg.AssetCheckKey(dg.AssetKey("parsed_documents"), "every_document_parsed")})
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={"ops": {"parsed_documents": {"config": {"paths": [str(SAMPLE_HANDBOOK), *map(str, bad)]}}}},
        )
        assert result.success
        assert len(instance.get_dynamic_partitions("chapters")) == 6
        (check,) = result.get_asset_check_evaluations()
        assert not check.passed and check.metadata["failed_documents"].value == 2
    failures = json.loads((tmp_path / "parsed" / "manifest.json").read_text())["failures"]
    assert [f["problem"].split(" (")[0] for f in failures] == ["not a readable PDF", "OCR found no text on its 1 scanned page(s)"]
