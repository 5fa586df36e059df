"""Parser benchmark: pages per second and word recall, written into BENCHMARKS.md.

Word recall = share of the reference text's words (multiset) that the parser's output contains.
The exact reference is the sample handbook's Markdown source. The NIMH PDFs have no text twin in
the shared data, so their reference is the raw text layer as pypdf extracts it (an independent
extractor): what the structuring loses, except that the raw layer also holds running headers,
footers and browser print lines, which the parser removes on purpose, so 1.0 is not reachable there.

Usage: .venv/bin/python bench/parse.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pypdf  # noqa: E402

from ragtune.benchmarks import machine, write_section  # noqa: E402
from ragtune.ingest.sources import parse_document  # noqa: E402

WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> Counter:
    return Counter(w.lower() for w in WORD.findall(text))


def recall(reference: str, parsed: str) -> float:
    ref, got = words(reference), words(parsed)
    return sum(min(count, got[w]) for w, count in ref.items()) / max(1, sum(ref.values()))


def document_text(doc) -> str:
    return "\n".join(c.text() for c in doc.chapters)


def timed(path: Path):
    start = time.perf_counter()
    doc = parse_document(path)
    return doc, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    args = parser.parse_args()
    shared = Path(args.shared)
    rows = []
    handbook, seconds = timed(ROOT / "sample_handbook" / "handbook.pdf")
    source = "\n".join(p.read_text() for p in sorted((ROOT / "sample_handbook" / "source").glob("*.md")))
    source = re.sub(r"^#+ ", "", source, flags=re.M)
    rows.append(("sample handbook (vs its Markdown source)", handbook.page_count, seconds, recall(source, document_text(handbook))))
    pdfs = sorted((shared / "corpus" / "pdf").glob("*.pdf"))
    if pdfs:
        pages = total = 0.0
        parsed_text, layer_text = [], []
        for pdf in pdfs:
            doc, seconds = timed(pdf)
            pages += doc.page_count
            total += seconds
            parsed_text.append(document_text(doc))
            layer_text.append("\n".join(page.extract_text() or "" for page in pypdf.PdfReader(pdf).pages))
        recall_nimh = recall("\n".join(layer_text), "\n".join(parsed_text))
        rows.append((f"NIMH corpus, {len(pdfs)} PDFs (vs pypdf's raw text layer)", int(pages), total, recall_nimh))
    long_pdf = shared / "pdfs-hard" / "long-117-pages-german__geotopo.pdf"
    if long_pdf.exists():
        doc, seconds = timed(long_pdf)
        rows.append(("117-page LaTeX book (speed only)", doc.page_count, seconds, None))
    table = ["| document | pages | seconds | pages/s | word recall |", "|---|---|---|---|---|"]
    for name, pages, seconds, rec in rows:
        table.append(f"| {name} | {pages} | {seconds:.2f} | {pages / seconds:.1f} | {'' if rec is None else f'{rec:.3f}'} |")
    section = "\n".join(
        [
            "## Parsing (bench/parse.py)",
            "",
            f"Embedded parser (pypdf + pdfminer.six via pdfplumber, ruled tables by pdfplumber), {date.today().isoformat()}, {machine()}, "
            f"Python {platform.python_version()}, one process.",
            "",
            *table,
            "",
        ]
    )
    write_section(ROOT / "BENCHMARKS.md", "## Parsing (bench/parse.py)", section)
    print(section)


if __name__ == "__main__":
    main()
