"""The pdfium text layer: rotated pages, table pages, worker processes and the same reading as before."""

from __future__ import annotations

import pypdf
import pypdfium2 as pdfium
import pytest

from ragtune.ingest.pdf_layout import _has_grid, _rules, logical_order, pages_boxes
from ragtune.ingest.pdf_parser import parse_pdf
from tests.conftest import SAMPLE_HANDBOOK, shared_path


def _text(doc) -> str:
    return "\n".join(b.text for c in doc.chapters for s in c.sections for b in s.blocks)


def test_a_landscape_page_stored_rotated_reads_like_the_upright_one(tmp_path):
    """A page whose content is drawn sideways and displayed upright through /Rotate 90."""
    reader = pypdf.PdfReader(SAMPLE_HANDBOOK)
    writer = pypdf.PdfWriter()
    writer.append(reader, pages=[2])
    upright = tmp_path / "upright.pdf"
    writer.write(upright)
    writer = pypdf.PdfWriter()
    writer.append(reader, pages=[2])
    page = writer.pages[0]
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    page.add_transformation(pypdf.Transformation().rotate(90).translate(height, 0))  # drawn sideways
    page.mediabox = pypdf.generic.RectangleObject([0, 0, height, width])
    page.rotate(90)
    rotated = tmp_path / "rotated.pdf"
    writer.write(rotated)
    [(upright_boxes, upright_height)] = pages_boxes(upright, None, range(1))
    [(rotated_boxes, rotated_height)] = pages_boxes(rotated, None, range(1))
    assert rotated_height == pytest.approx(upright_height)
    assert [b.text for b in rotated_boxes] == [b.text for b in upright_boxes]
    assert "Reduced ability to think, concentrate or make decisions" in " ".join(b.text for b in rotated_boxes)


def test_only_pages_whose_rules_cross_into_a_grid_go_to_the_table_finder():
    handbook = pdfium.PdfDocument(str(SAMPLE_HANDBOOK))
    assert [i + 1 for i in range(len(handbook)) if _has_grid(_rules(handbook[i], (0.0, 0.0)))] == [4]


def test_header_bands_and_icons_are_not_a_grid_but_a_ruled_table_is():
    bipolar = pdfium.PdfDocument(str(shared_path("corpus", "pdf", "nimh-bipolar-disorder.pdf")))
    ocd = pdfium.PdfDocument(str(shared_path("corpus", "pdf", "nimh-ocd.pdf")))
    assert _has_grid(_rules(bipolar[2], (0.0, 0.0)))  # the two-column table of bipolar types
    assert not _has_grid(_rules(bipolar[1], (0.0, 0.0)))  # header and footer bands only
    assert not any(_has_grid(_rules(ocd[i], (0.0, 0.0))) for i in range(len(ocd)))


def test_worker_processes_read_the_same_document_as_one_process():
    assert parse_pdf(SAMPLE_HANDBOOK, workers=3).to_dict() == parse_pdf(SAMPLE_HANDBOOK, workers=1).to_dict()


def test_right_to_left_runs_are_put_back_in_reading_order():
    assert logical_order("يبيبَح habibi يبيبَح") == "حَبيبي habibi حَبيبي"
    assert logical_order("no arabic here") == "no arabic here"


def test_text_inside_ligatures_and_math_fonts_is_read_not_cid_codes():
    doc = parse_pdf(shared_path("pdfs-hard", "long-117-pages-german__geotopo.pdf"))
    text = _text(doc)
    assert "(cid:" not in text and "Definition" in text and "γ" in text
