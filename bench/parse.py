"""Parser benchmark: pages per second and word recall, and OCR recall on scans, written into BENCHMARKS.md.

Word recall = share of the reference text's words (multiset) that the parser's output contains.
The exact reference is the sample handbook's Markdown source. The NIMH PDFs have no text twin in
the shared data, so their reference is the raw text layer as pypdf extracts it (an independent
extractor): what the structuring loses, except that the raw layer also holds running headers,
footers and browser print lines, which the parser removes on purpose, so 1.0 is not reachable there.
Speed on the NIMH PDFs is measured over --repeats rounds, each parsing all of them once with the
default worker processes and once in one process, so the ratio is paired within a round.

OCR: the two-column Linn scan and its skewed copy against the transcription that ships with them
(recall, and the share of the reference's 6-word windows found that come in the reference's order:
reading order across the columns), and the Vicksburg scan OCRed page by page against its own,
imperfect, OCR text layer.

Usage: .venv/bin/python bench/parse.py [--shared ../shared/data] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import time
from bisect import bisect_left
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pypdf  # noqa: E402

from ragtune.benchmarks import machine, write_section  # noqa: E402
from ragtune.ingest.ocr import ocr_pdf_page  # noqa: E402
from ragtune.ingest.pdf_parser import PARSE_WORKERS, parse_pdf  # noqa: E402
from ragtune.ingest.sources import parse_document  # noqa: E402

WORD = re.compile(r"\w+", re.UNICODE)
WINDOW = 6


def word_list(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def recall(reference: str, parsed: str) -> float:
    ref, got = Counter(word_list(reference)), Counter(word_list(parsed))
    return sum(min(count, got[w]) for w, count in ref.items()) / max(1, sum(ref.values()))


def windows_in_order(reference: str, parsed: str) -> tuple[int, int, int]:
    """(reference windows, windows found in the output, found ones in reference order): the
    longest run of found windows whose output positions increase."""
    ref, got = word_list(reference), word_list(parsed)
    where = {tuple(got[i : i + WINDOW]): i for i in range(len(got) - WINDOW, -1, -1)}
    positions = [where[w] for w in (tuple(ref[i : i + WINDOW]) for i in range(0, len(ref) - WINDOW + 1, WINDOW)) if w in where]
    tails: list[int] = []
    for position in positions:
        at = bisect_left(tails, position)
        tails[at : at + 1] = [position]
    return len(ref) // WINDOW, len(positions), len(tails)


def document_text(doc) -> str:
    return "\n".join(c.text() for c in doc.chapters)


def timed(parse, path: Path, **options):
    start = time.perf_counter()
    doc = parse(path, **options)
    return doc, time.perf_counter() - start


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}, {max(values):.1f}]"


def text_layer_rows(shared: Path, repeats: int) -> tuple[list[str], list[str]]:
    rows, notes = [], []
    handbook, seconds = timed(parse_document, ROOT / "sample_handbook" / "handbook.pdf")
    source = "\n".join(p.read_text() for p in sorted((ROOT / "sample_handbook" / "source").glob("*.md")))
    source = re.sub(r"^#+ ", "", source, flags=re.M)
    rows.append(f"| sample handbook (vs its Markdown source) | {handbook.page_count} | {seconds:.2f} | {handbook.page_count / seconds:.1f} | {recall(source, document_text(handbook)):.3f} |")
    pdfs = sorted((shared / "corpus" / "pdf").glob("*.pdf"))
    if pdfs:
        parse_pdf(pdfs[0])  # start the worker processes once, as a long-lived run would have them
        parallel, serial, ratio = [], [], []
        for _ in range(repeats):
            seconds = {}
            for workers in (PARSE_WORKERS, 1):
                start = time.perf_counter()
                docs = [parse_pdf(pdf, workers=workers) for pdf in pdfs]
                seconds[workers] = time.perf_counter() - start
            pages = sum(doc.page_count for doc in docs)
            parallel.append(pages / seconds[PARSE_WORKERS])
            serial.append(pages / seconds[1])
            ratio.append(seconds[1] / seconds[PARSE_WORKERS])
        layer_text = ["\n".join(page.extract_text() or "" for page in pypdf.PdfReader(pdf).pages) for pdf in pdfs]
        recall_nimh = recall("\n".join(layer_text), "\n".join(document_text(doc) for doc in docs))
        tables = sum(b.kind == "table" for doc in docs for c in doc.chapters for s in c.sections for b in s.blocks)
        sections = sum(len(c.sections) for doc in docs for c in doc.chapters)
        rows.append(f"| NIMH corpus, {len(pdfs)} PDFs, {PARSE_WORKERS} worker processes (vs pypdf's raw text layer) | {pages} | "
                    f"{pages / statistics.median(parallel):.2f} | {spread(parallel)} | {recall_nimh:.3f} |")
        rows.append(f"| same, one process | {pages} | {pages / statistics.median(serial):.2f} | {spread(serial)} | {recall_nimh:.3f} |")
        notes.append(f"NIMH: {repeats} rounds; pages/s is the median [min, max] over rounds; workers vs one process "
                     f"{spread(ratio)}x faster (paired per round). Structure found: {sections} sections, {tables} ruled tables.")
    long_pdf = shared / "pdfs-hard" / "long-117-pages-german__geotopo.pdf"
    if long_pdf.exists():
        doc, seconds = timed(parse_pdf, long_pdf, workers=PARSE_WORKERS)
        rows.append(f"| 117-page LaTeX book, {PARSE_WORKERS} worker processes (speed only) | {doc.page_count} | {seconds:.2f} | {doc.page_count / seconds:.1f} |  |")
    return rows, notes


def ocr_rows(shared: Path) -> list[str]:
    hard = shared / "pdfs-hard"
    reference_path = hard / "scanned-two-column-no-text-layer__linn.reference.txt"
    if not reference_path.exists():
        return []
    reference = reference_path.read_text(encoding="utf-8")
    rows = []
    for name, label in [
        ("scanned-two-column-no-text-layer__linn.pdf", "two-column scan (vs its transcription)"),
        ("scanned-skewed-no-text-layer__skew.pdf", "same page, skewed (vs the same transcription)"),
    ]:
        doc, seconds = timed(parse_document, hard / name, ocr_languages="eng")
        text = document_text(doc)
        total, found, ordered = windows_in_order(reference, text)
        rows.append(f"| {label} | {doc.page_count} | {seconds:.1f} | {recall(reference, text):.3f} | {found}/{total} found, {ordered}/{found} in order |")
    vicksburg = hard / "scanned-with-ocr-layer__siege-of-vicksburg.pdf"
    layer = "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(vicksburg).pages)
    start = time.perf_counter()
    pages = len(pypdf.PdfReader(vicksburg).pages)
    ocr_text = "\n".join(line for i in range(pages) for p in ocr_pdf_page(vicksburg, i, "eng") for line in p.lines)
    seconds = time.perf_counter() - start
    total, found, ordered = windows_in_order(layer, ocr_text)
    rows.append(f"| book scan, OCRed although it has a text layer (vs that layer) | {pages} | {seconds:.1f} | {recall(layer, ocr_text):.3f} | {found}/{total} found, {ordered}/{found} in order |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    shared = Path(args.shared)
    rows, notes = text_layer_rows(shared, args.repeats)
    ocr = ocr_rows(shared)
    section = [
        "## Parsing (bench/parse.py)",
        "",
        f"Embedded parser (pypdfium2 characters in pdfminer.six's layout analysis, pdfplumber's table finder on ruled pages, "
        f"pypdf outline), {date.today().isoformat()}, {machine()}, Python {platform.python_version()}.",
        "",
        "| document | pages | seconds | pages/s | word recall |",
        "|---|---|---|---|---|",
        *rows,
        "",
        *notes,
    ]
    if ocr:
        section += [
            "",
            "OCR (Tesseract through pytesseract, 300 dpi renders by pypdfium2, language eng):",
            "",
            "| scan | pages | seconds | word recall | 6-word windows |",
            "|---|---|---|---|---|",
            *ocr,
        ]
    text = "\n".join(section) + "\n"
    write_section(ROOT / "BENCHMARKS.md", "## Parsing (bench/parse.py)", text)
    print(text)


if __name__ == "__main__":
    main()
