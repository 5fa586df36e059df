"""Build the bundled sample handbooks from the Markdown chapters in ./source (English, handbook.pdf)
and ./source_zh (Chinese, handbook_zh.pdf, set in Debian's Noto Sans CJK SC from fonts-noto-cjk).

The PDF has a title page, one chapter per source file (each starting on a new page),
a two-level outline (chapters, sections), a running header and page-number footers,
so the embedded parser meets the same features a real handbook has.

Usage: python sample_handbook/build_pdf.py [OUT.pdf] [--language en|zh] [--chapters N ...]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
CJK_FONTS = Path("/usr/share/fonts/opentype/noto")  # fonts-noto-cjk
SC = 2  # Simplified Chinese in the Noto Sans CJK collection (JP, KR, SC, TC, HK)


@dataclass(frozen=True)
class Book:
    title: str
    running_header: str
    notice: str
    source: str
    out: str
    font: str = "Helvetica"


BOOKS = {
    "en": Book(
        "Clinical Handbook of Common Psychiatric Disorders",
        "ragtune sample handbook - for software demonstration only",
        "A sample handbook written for the ragtune project to demonstrate its pipeline. "
        "It summarises widely taught clinical knowledge in the authors' own words and is "
        "not a substitute for professional diagnosis or treatment guidance.",
        "source",
        "handbook.pdf",
    ),
    "zh": Book(
        "常见精神障碍临床手册",
        "ragtune 示例手册 - 仅用于软件演示",
        "本手册由 ragtune 项目编写，用于演示其处理流程。内容以作者自己的话概述通行的临床知识，不能替代专业的诊断或治疗指导。",
        "source_zh",
        "handbook_zh.pdf",
        "NotoSansSC",
    ),
}

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
    def __init__(self, book: Book) -> None:
        super().__init__(format="A4")
        self.book = book
        if book.font != "Helvetica":
            self.add_font(book.font, "", str(CJK_FONTS / "NotoSansCJK-Regular.ttc"), collection_font_number=SC)
            self.add_font(book.font, "B", str(CJK_FONTS / "NotoSansCJK-Bold.ttc"), collection_font_number=SC)
            self.add_font(book.font, "I", str(CJK_FONTS / "NotoSansCJK-Regular.ttc"), collection_font_number=SC)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(self.book.font, "I", 8)
        self.set_text_color(110)
        self.cell(0, 6, self.book.running_header, align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)
        self.ln(4)

    def footer(self) -> None:
        if self.page_no() == 1:
            return
        self.set_y(-15)
        self.set_font(self.book.font, "", 9)
        self.cell(0, 8, str(self.page_no()), align="C")


def build_pdf(chapters: list[Chapter], out: Path, blank_pages: int = 0, book: Book = BOOKS["en"]) -> Path:
    """blank_pages: empty pages after the title page (they move every chapter's pages, not its text)."""
    pdf = HandbookPDF(book)
    pdf.set_margins(25, 20, 25)
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_title(book.title)
    if book is BOOKS["zh"]:
        pdf.set_lang("zh-CN")  # the /Lang a reader (and ragtune's OCR language default) goes by
    pdf.set_author("ragtune developers")
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=timezone.utc))  # reproducible bytes
    pdf.add_page()
    pdf.set_font(book.font, "B", 22)
    pdf.ln(60)
    pdf.multi_cell(0, 11, book.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font(book.font, "", 12)
    pdf.multi_cell(0, 7, book.notice, align="C", new_x="LMARGIN", new_y="NEXT")
    for _ in range(blank_pages):
        pdf.add_page()
    for number, chapter in enumerate(chapters, start=1):
        pdf.add_page()
        heading = f"{number}. {chapter.title}"
        pdf.start_section(heading, level=0)
        pdf.set_font(book.font, "B", 18)
        pdf.multi_cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        for section in chapter.sections:
            pdf.ln(2)
            pdf.start_section(section.title, level=1)
            pdf.set_font(book.font, "B", 13)
            pdf.multi_cell(0, 7, section.title, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
            for block in section.blocks:
                _write_block(pdf, block, book.font)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


def _write_block(pdf: FPDF, block: Block, font: str) -> None:
    pdf.set_font(font, "", 11)
    if block.kind == "paragraph":
        pdf.multi_cell(0, 5.8, block.text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3.5)
        return
    if block.kind == "table":  # ruled grid, header row in bold
        pdf.set_font(font, "", 10)
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


def source_chapters(numbers: list[int] | None = None, book: Book = BOOKS["en"]) -> list[Chapter]:
    paths = sorted((HERE / book.source).glob("*.md"))
    if numbers:
        paths = [paths[n - 1] for n in numbers]
    return [read_chapter(p) for p in paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="default: handbook.pdf or handbook_zh.pdf here")
    parser.add_argument("--language", choices=sorted(BOOKS), default="en")
    parser.add_argument("--chapters", type=int, nargs="*", help="1-based chapter numbers to include")
    args = parser.parse_args()
    book = BOOKS[args.language]
    path = build_pdf(source_chapters(args.chapters, book), Path(args.out or HERE / book.out), book=book)
    print(path)


if __name__ == "__main__":
    main()
