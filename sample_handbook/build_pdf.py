"""Build the bundled sample handbook PDF from the Markdown chapters in ./source.

The PDF has a title page, one chapter per source file (each starting on a new page),
a two-level outline (chapters, sections), a running header and page-number footers,
so the embedded parser meets the same features a real handbook has.

Usage: python sample_handbook/build_pdf.py [OUT.pdf] [--chapters N ...]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
BOOK_TITLE = "Clinical Handbook of Common Psychiatric Disorders"
RUNNING_HEADER = "ragtune sample handbook - for software demonstration only"

LETTERED = re.compile(r"^([A-Z])\.\s+(.*)$")
NUMBERED = re.compile(r"^(\d+)\.\s+(.*)$")


@dataclass
class Block:
    kind: str  # "paragraph" | "lettered" | "numbered" | "table"
    text: str
    label: str = ""
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Chapter:
    title: str
    sections: list[Section] = field(default_factory=list)


def read_chapter(path: Path) -> Chapter:
    """Parse the small Markdown subset used by the sources (#, ##, A., 1., pipe tables, paragraphs)."""
    chapter: Chapter | None = None
    for text in _raw_blocks(path.read_text(encoding="utf-8")):
        if text.startswith("# "):
            chapter = Chapter(title=text[2:].strip())
            continue
        if chapter is None:
            raise ValueError(f"{path}: text before the chapter heading")
        if text.startswith("## "):
            chapter.sections.append(Section(title=text[3:].strip()))
            continue
        if not chapter.sections:
            raise ValueError(f"{path}: text before the first section heading")
        if text.startswith("|"):
            rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()]
            rows = [r for r in rows if not all(set(c) <= set("-: ") for c in r)]  # drop the |---| line
            chapter.sections[-1].blocks.append(Block("table", "", rows=rows))
            continue
        for kind, pattern in (("lettered", LETTERED), ("numbered", NUMBERED)):
            match = pattern.match(text)
            if match:
                chapter.sections[-1].blocks.append(Block(kind, match.group(2), match.group(1)))
                break
        else:
            chapter.sections[-1].blocks.append(Block("paragraph", text))
    if chapter is None:
        raise ValueError(f"{path}: no chapter heading")
    return chapter


def _raw_blocks(source: str) -> list[str]:
    """Blocks are separated by blank lines; every list marker also starts a new block; table lines stay lines."""
    blocks: list[list[str]] = [[]]
    for line in source.splitlines():
        line = line.strip()
        if not line:
            blocks.append([])
            continue
        if blocks[-1] and (LETTERED.match(line) or NUMBERED.match(line) or line.startswith("#")):
            blocks.append([])
        blocks[-1].append(line)
    return ["\n".join(b) if b[0].startswith("|") else " ".join(b) for b in blocks if b]


class HandbookPDF(FPDF):
    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font("Helvetica", "I", 8)
        self.set_text_color(110)
        self.cell(0, 6, RUNNING_HEADER, align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)
        self.ln(4)

    def footer(self) -> None:
        if self.page_no() == 1:
            return
        self.set_y(-15)
        self.set_font("Helvetica", "", 9)
        self.cell(0, 8, str(self.page_no()), align="C")


def build_pdf(chapters: list[Chapter], out: Path, blank_pages: int = 0) -> Path:
    """blank_pages: empty pages after the title page (they move every chapter's pages, not its text)."""
    pdf = HandbookPDF(format="A4")
    pdf.set_margins(25, 20, 25)
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_title(BOOK_TITLE)
    pdf.set_author("ragtune developers")
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=timezone.utc))  # reproducible bytes
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 22)
    pdf.ln(60)
    pdf.multi_cell(0, 11, BOOK_TITLE, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("Helvetica", "", 12)
    pdf.multi_cell(
        0,
        7,
        "A sample handbook written for the ragtune project to demonstrate its pipeline. "
        "It summarises widely taught clinical knowledge in the authors' own words and is "
        "not a substitute for professional diagnosis or treatment guidance.",
        align="C",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for _ in range(blank_pages):
        pdf.add_page()
    for number, chapter in enumerate(chapters, start=1):
        pdf.add_page()
        heading = f"{number}. {chapter.title}"
        pdf.start_section(heading, level=0)
        pdf.set_font("Helvetica", "B", 18)
        pdf.multi_cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        for section in chapter.sections:
            pdf.ln(2)
            pdf.start_section(section.title, level=1)
            pdf.set_font("Helvetica", "B", 13)
            pdf.multi_cell(0, 7, section.title, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
            for block in section.blocks:
                _write_block(pdf, block)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


def _write_block(pdf: FPDF, block: Block) -> None:
    pdf.set_font("Helvetica", "", 11)
    if block.kind == "paragraph":
        pdf.multi_cell(0, 5.8, block.text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3.5)
        return
    if block.kind == "table":  # ruled grid, header row in bold
        pdf.set_font("Helvetica", "", 10)
        with pdf.table(line_height=5.2, padding=1.5) as table:
            for cells in block.rows:
                row = table.row()
                for cell in cells:
                    row.cell(cell)
        pdf.ln(3.5)
        return
    indent = 0 if block.kind == "lettered" else 8
    pdf.set_x(pdf.l_margin + indent)
    pdf.multi_cell(pdf.epw - indent, 5.8, f"{block.label}. {block.text}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2.5)


def source_chapters(numbers: list[int] | None = None) -> list[Chapter]:
    paths = sorted((HERE / "source").glob("*.md"))
    if numbers:
        paths = [paths[n - 1] for n in numbers]
    return [read_chapter(p) for p in paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(HERE / "handbook.pdf"))
    parser.add_argument("--chapters", type=int, nargs="*", help="1-based chapter numbers to include")
    args = parser.parse_args()
    path = build_pdf(source_chapters(args.chapters), Path(args.out))
    print(path)


if __name__ == "__main__":
    main()
