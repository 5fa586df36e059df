"""Scanned PDFs are read by Tesseract: real scans (one page of a novel, a two-column manual and the
same manual skewed) and a scan made here of the Chinese sample handbook; the words come back in
reading order with their confidence, and every way OCR can fail is a clear per-document error."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from ragtune.ingest.pdf_parser import ParseError, parse_pdf
from tests.conftest import ROOT, shared_path

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs Debian's tesseract-ocr (.ci/run installs it)")
WORD = re.compile(r"[a-z0-9]+")
LINN_REFERENCE = "scanned-two-column-no-text-layer__linn.reference.txt"


def _blocks(document):
    return [b for c in document.chapters for s in c.sections for b in s.blocks]


def _text(document) -> str:
    return "\n".join(b.text for b in _blocks(document))


def _recall_and_order(reference: str, text: str) -> tuple[float, float]:
    """Share of the reference's words found, and share of its 6-word windows found that come in
    the reference's order (longest increasing run of their positions)."""
    ref, got = WORD.findall(reference.lower()), " ".join(WORD.findall(text.lower()))
    counts = Counter(got.split())
    recall = sum(min(n, counts[w]) for w, n in Counter(ref).items()) / len(ref)
    positions = [p for i in range(0, len(ref) - 6, 6) if (p := got.find(" ".join(ref[i : i + 6]))) >= 0]
    longest = [1] * len(positions)
    for i in range(len(positions)):
        for j in range(i):
            if positions[j] < positions[i]:
                longest[i] = max(longest[i], longest[j] + 1)
    return recall, max(longest, default=0) / max(1, len(positions))


def image_only_pdf(source: Path, page: int, out: Path, dpi: int = 200) -> Path:
    """A scan of one page: the page rendered to pixels and saved as a PDF with no text layer."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(source))
    image = document[page].render(scale=dpi / 72).to_pil().convert("L")
    document.close()
    image.save(out, "PDF", resolution=dpi)
    return out


@needs_tesseract
def test_a_scanned_page_is_read_with_its_confidence():
    document = parse_pdf(shared_path("pdfs-hard", "scanned-no-text-layer__huck-finn-page.pdf"), ocr_languages="eng")
    assert document.parser == "embedded-pdfium+tesseract" and document.ocr_pages == [1]
    text = _text(document)
    assert "went tip-toeing along a path amongst the trees back towards the end of the widow" in text
    assert "Seemed like I’d die if I couldn’t scratch" in text
    confidences = [b.ocr_confidence for b in _blocks(document)]
    assert all(c is not None and 0 <= c <= 1 for c in confidences) and max(confidences) > 0.85
    assert "ocr_confidence" in document.to_dict()["chapters"][0]["sections"][0]["blocks"][0]


@needs_tesseract
@pytest.mark.parametrize("name", ["scanned-two-column-no-text-layer__linn.pdf", "scanned-skewed-no-text-layer__skew.pdf"])
def test_two_column_and_skewed_scans_keep_their_words_and_reading_order(name):
    """The skewed file is the same manual page, tilted: both are checked against the page's reference text."""
    reference = shared_path("pdfs-hard", LINN_REFERENCE).read_text(encoding="utf-8")
    recall, in_order = _recall_and_order(reference, _text(parse_pdf(shared_path("pdfs-hard", name), ocr_languages="eng")))
    assert recall >= 0.85 and in_order >= 0.95, (recall, in_order)


@needs_tesseract
def test_a_chinese_scan_is_read_in_chinese_by_default(tmp_path):
    """No language configured and no /Lang in a bare scan: the default eng+chi_sim reads it."""
    born_digital = parse_pdf(ROOT / "sample_handbook" / "handbook_zh.pdf")
    scan = image_only_pdf(ROOT / "sample_handbook" / "handbook_zh.pdf", 1, tmp_path / "scan.pdf")
    scanned = parse_pdf(scan)
    assert scanned.ocr_pages == [1]
    layer = re.sub(r"\s+", "", "".join(b.text for b in _blocks(born_digital) if b.page == 2))
    read = Counter(re.sub(r"\s+", "", _text(scanned)))
    characters = Counter(ch for ch in layer if "\u4e00" <= ch <= "\u9fff")
    assert sum(min(n, read[ch]) for ch, n in characters.items()) / sum(characters.values()) >= 0.95
    assert "抑郁" in _text(scanned) and " 抑 郁" not in _text(scanned)  # Tesseract's spaces between characters are removed


def test_without_tesseract_the_error_says_how_to_install_it(monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    path = shared_path("pdfs-hard", "scanned-no-text-layer__huck-finn-page.pdf")
    with pytest.raises(ParseError) as error:
        parse_pdf(path)
    assert path.name in str(error.value)
    assert "page(s) 1 have no text layer and Tesseract is not installed" in error.value.problem
    assert "apt-get install tesseract-ocr" in error.value.problem


@needs_tesseract
def test_a_missing_language_and_a_blank_scan_are_clear_errors(tmp_path):
    path = shared_path("pdfs-hard", "scanned-no-text-layer__huck-finn-page.pdf")
    with pytest.raises(ParseError, match="Tesseract has no data for klingon; install it: apt-get install tesseract-ocr-klingon"):
        parse_pdf(path, ocr_languages="eng+klingon")
    from PIL import Image

    blank = tmp_path / "blank-scan.pdf"
    Image.new("L", (1654, 2339), 255).save(blank, "PDF", resolution=200)
    with pytest.raises(ParseError) as error:
        parse_pdf(blank)
    assert "OCR found no text on its 1 scanned page(s)" in error.value.problem and "rescan" in error.value.remedy
