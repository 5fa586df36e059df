"""Tesseract OCR for PDF pages that have no text layer.

pytesseract over pages rendered by pypdfium2 (already installed with pdfplumber), not ocrmypdf:
the parser needs Tesseract's own layout (blocks and paragraphs in reading order, so the columns of
a two-column scan stay apart) and each word's confidence, which an OCR'd PDF's text layer drops;
and it needs no Ghostscript. Tesseract's layout analysis follows skewed lines itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import median

from ragtune.text import WIDE_GAP

DEFAULT_LANGUAGES = "eng+chi_sim"
RENDER_DPI = 300
HEADING_STEP = 1.15  # a line this much taller than the next is a heading over its paragraph
LANGUAGE_PACKS = {"en": "eng", "zh": "chi_sim"}  # a PDF's /Lang (BCP 47 prefix) -> Tesseract's language data
INSTALL = "install Tesseract and its language data: apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim"


class OcrUnavailable(Exception):
    """Tesseract or a language's data is missing: what to install is in the message."""


@dataclass
class OcrParagraph:
    lines: list[str]
    top: float  # points from the top of the page
    bottom: float
    size: float  # median line height in points, the scan's stand-in for a font size
    confidence: float  # mean word confidence, 0..1


def languages_for(pdf_language: str | None, configured: str | None) -> str:
    """The configured Tesseract languages, else the document's declared language, else eng+chi_sim."""
    if configured:
        return configured
    prefix = (pdf_language or "").split("-")[0].lower()
    return LANGUAGE_PACKS.get(prefix, DEFAULT_LANGUAGES)


def check_tesseract(languages: str) -> None:
    import pytesseract

    try:
        installed = set(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError as error:
        raise OcrUnavailable(f"Tesseract is not installed; {INSTALL}") from error
    missing = [lang for lang in languages.split("+") if lang not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang.replace('_', '-')}" for lang in missing)
        raise OcrUnavailable(f"Tesseract has no data for {', '.join(missing)}; install it: apt-get install {packages}")


def ocr_image(image, languages: str, dpi: int = RENDER_DPI) -> list[OcrParagraph]:
    """Tesseract's paragraphs of one page image, in its reading order."""
    import pytesseract

    data = pytesseract.image_to_data(image, lang=languages, config="--psm 1", output_type=pytesseract.Output.DICT)
    scale = 72.0 / dpi
    paragraphs: dict[tuple[int, int], dict[int, list[int]]] = {}
    for i, word in enumerate(data["text"]):
        if word.strip() and float(data["conf"][i]) >= 0:
            key = (data["block_num"][i], data["par_num"][i])
            paragraphs.setdefault(key, {}).setdefault(data["line_num"][i], []).append(i)
    found = []
    for paragraph in paragraphs.values():
        for lines in _split_at_headings(list(paragraph.values()), data):
            words = [i for line in lines for i in line]
            found.append(OcrParagraph(
                lines=[WIDE_GAP.sub("", " ".join(data["text"][i].strip() for i in line)) for line in lines],
                top=min(data["top"][i] for i in words) * scale,
                bottom=max(data["top"][i] + data["height"][i] for i in words) * scale,
                size=median(_height(line, data) for line in lines) * scale,
                confidence=round(sum(float(data["conf"][i]) for i in words) / len(words) / 100, 3),
            ))  # fmt: skip
    return found


def _height(line: list[int], data: dict) -> float:
    """A line's word height, its lower quartile: Tesseract stretches a few word boxes to twice the
    line, never shrinks them."""
    heights = sorted(data["height"][i] for i in line)
    return heights[len(heights) // 4]


def _split_at_headings(lines: list[list[int]], data: dict) -> list[list[list[int]]]:
    """Tesseract often puts a heading and the paragraph under it in one paragraph; a line clearly
    taller than the next one ends its group, so the heading stays a heading (a short label line
    such as 'A.' above its text is lower, and stays with it)."""
    groups = [[lines[0]]]
    for previous, line in zip(lines, lines[1:]):
        if _height(previous, data) > HEADING_STEP * _height(line, data):
            groups.append([])
        groups[-1].append(line)
    return groups


def ocr_pdf_page(path: Path, page_index: int, languages: str, password: str | None = None) -> list[OcrParagraph]:
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path), password=password or None)
    try:
        image = document[page_index].render(scale=RENDER_DPI / 72).to_pil()
    finally:
        document.close()
    return ocr_image(image, languages)
