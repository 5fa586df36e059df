"""Embedded PDF parser: pypdf for the outline and encryption, pdfminer.six (through pdfplumber)
for laid-out text, pdfplumber for ruled tables.

Chapters come from the top level of the PDF outline and sections from the levels below;
without an outline the whole file is one chapter and sections come from larger fonts.
Running headers/footers are dropped, hyphenated line breaks joined, lettered, numbered or
bulleted lines kept as list items with their label, and ruled tables kept as rows of cells.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pdfplumber
import pypdf
from pdfminer.layout import LTChar, LTCurve, LTTextBox, LTTextLine

from ragtune.ingest.document import Block, Chapter, Document, Section, document_id, file_sha256, slugify, strip_numbering

LIST_MARKER = re.compile(r"^\s*(?:\(?([A-Za-z]|\d{1,2})[.)]|([•●▪◦‣∙·\-–]))\s+(.*)$", re.S)
LAYOUT = {"char_margin": 4.0}  # pdfminer LAParams: justified lines have wide gaps; 2.0 splits them
MARGIN_BAND = 0.09  # top/bottom fraction of the page where running headers/footers live
PAGE_NUMBER = re.compile(r"(page )?#( (of )?#)?")  # "#", "page #", "# of #" after digits became "#"


class ParseError(Exception):
    """A document that cannot be parsed, with what is wrong and what the user can do."""

    def __init__(self, path: Path | str, problem: str, remedy: str):
        self.path, self.problem, self.remedy = str(path), problem, remedy
        super().__init__(f"{path}: {problem}; {remedy}")


@dataclass
class _Box:
    page: int
    top: float  # distance from the top of the page, in points
    bottom: float
    page_height: float
    size: float  # largest font size in the box
    lines: list[str]
    rows: list[list[str]] | None = None  # a ruled table's cells, row by row

    @property
    def text(self) -> str:
        return _join_lines(self.lines)


@dataclass
class _Anchor:
    level: int
    title: str
    position: int  # index into the block stream where this heading starts


def parse_pdf(path: Path | str, password: str | None = None) -> Document:
    path = Path(path)
    for noisy in ("pdfminer", "pypdf"):  # their warnings go to stderr; problems surface as ParseError
        logging.getLogger(noisy).setLevel(logging.ERROR)
    reader = _open_reader(path, password)
    outline = _flatten_outline(reader)
    boxes = _layout_boxes(path, password)
    if not any(box.text.strip() for box in boxes):
        raise ParseError(path, "no text layer (scanned or image-only PDF)", "run OCR first (e.g. ocrmypdf) and add the OCR'd PDF")
    boxes = _drop_running_lines(boxes, page_count=len(reader.pages))
    title = _document_title(reader, outline, boxes, path)
    sha = file_sha256(path)
    doc = Document(
        doc_id=document_id(path.stem, path),
        source_path=str(path),
        source_sha256=sha,
        title=title,
        parser="embedded-pdfminer",
        page_count=len(reader.pages),
    )
    if outline:
        doc.chapters = _chapters_from_outline(boxes, outline)
    else:
        doc.chapters = _chapters_from_fonts(boxes, title)
    doc.chapters = [c for c in doc.chapters if any(s.blocks for s in c.sections)]
    if not doc.chapters:
        raise ParseError(path, "no chapter text found after the outline's first entry", "check the PDF outline")
    return doc


def _open_reader(path: Path, password: str | None) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(password or ""):
            raise ParseError(path, "encrypted PDF and the password is missing or wrong", "supply the password in the parser config")
        _ = len(reader.pages)
        return reader
    except ParseError:
        raise
    except Exception as error:  # pypdf raises many types for damaged files
        raise ParseError(path, f"not a readable PDF ({type(error).__name__}: {error})", "re-export or repair the file") from error


def _flatten_outline(reader: pypdf.PdfReader) -> list[tuple[int, str, int, float | None]]:
    """(level, title, 0-based page, top of destination in points or None), in outline order."""
    entries: list[tuple[int, str, int, float | None]] = []

    def walk(items: list, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            title = " ".join(str(item.title or "").split())
            top = getattr(item, "top", None)
            if title and page is not None and page >= 0:
                entries.append((level, title, page, float(top) if top is not None else None))

    try:
        walk(reader.outline, 0)
    except Exception:
        return []
    return entries


def _layout_boxes(path: Path, password: str | None) -> list[_Box]:
    boxes: list[_Box] = []
    try:
        with pdfplumber.open(path, password=password or "", laparams=LAYOUT) as pdf:
            for page_number, page in enumerate(pdf.pages, start=1):
                boxes.extend(_page_boxes(page, page_number))
                page.close()  # drop pdfplumber's per-page object cache: books have hundreds of pages
    except ParseError:
        raise
    except Exception as error:
        raise ParseError(path, f"not a readable PDF ({type(error).__name__}: {error})", "re-export or repair the file") from error
    return boxes


def _page_boxes(page: pdfplumber.page.Page, page_number: int) -> list[_Box]:
    """Text boxes in pdfminer's reading order; each ruled table replaces the boxes inside it,
    at the place of the first of them."""
    height = page.height
    # Ruled tables need drawn lines (LTRect and LTLine are LTCurves); pdfplumber's table finder
    # converts every object of the page, so pages without any are not handed to it.
    ruled = any(isinstance(element, LTCurve) for element in page.layout)
    found = [(t.bbox, _table_rows(t.extract())) for t in page.find_tables()] if ruled else []
    tables = [(bbox, rows) for bbox, rows in found if _is_data_table(rows)]
    boxes: list[_Box] = []
    placed: set[int] = set()
    for element in page.layout:
        if not isinstance(element, LTTextBox):
            continue
        lines = [line.get_text() for line in element if isinstance(line, LTTextLine)]
        if not "".join(lines).strip():
            continue
        top, bottom = height - element.y1, height - element.y0
        inside = _containing_table(tables, (element.x0 + element.x1) / 2, (top + bottom) / 2)
        if inside is not None:
            if inside not in placed:
                placed.add(inside)
                boxes.append(_table_box(page_number, height, *tables[inside]))
            continue
        sizes = [c.size for line in element for c in line if isinstance(c, LTChar)]
        boxes.append(_Box(page_number, top, bottom, height, max(sizes, default=0.0), lines))
    for number, table in enumerate(tables):  # a table pdfminer found no text box inside
        if number not in placed and table[1]:
            box = _table_box(page_number, height, *table)
            boxes.insert(next((i for i, b in enumerate(boxes) if b.top > box.top), len(boxes)), box)
    return boxes


def _containing_table(tables: list, x: float, y: float) -> int | None:
    for number, ((x0, top, x1, bottom), _) in enumerate(tables):
        if x0 <= x <= x1 and top <= y <= bottom:
            return number
    return None


def _is_data_table(rows: list[list[str]]) -> bool:
    """Brochures draw frames around sidebars and page furniture; those are read as text, not as tables."""
    cells = [cell for row in rows for cell in row]
    return len(rows) >= 2 and max(map(len, rows)) >= 2 and sum(map(bool, cells)) >= 0.6 * len(cells)


def _table_rows(cells: list[list[str | None]]) -> list[list[str]]:
    rows = [[_join_lines((cell or "").splitlines()) for cell in row] for row in cells]
    return [row for row in rows if any(row)]


def _table_box(page: int, height: float, bbox: tuple, rows: list[list[str]]) -> _Box:
    lines = [" | ".join(row) for row in rows]
    return _Box(page, bbox[1], bbox[3], height, 0.0, lines, rows)


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def _drop_running_lines(boxes: list[_Box], page_count: int) -> list[_Box]:
    """Remove boxes in the page margins whose text (digits ignored) repeats across pages, and bare page numbers."""

    def in_margin(box: _Box) -> bool:
        band = box.page_height * MARGIN_BAND
        return box.top < band or box.bottom > box.page_height - band

    def signature(box: _Box) -> str:
        return re.sub(r"\d+", "#", _normalize(box.text))

    pages_by_signature: dict[str, set[int]] = {}
    for box in boxes:
        if in_margin(box):
            pages_by_signature.setdefault(signature(box), set()).add(box.page)
    repeated = {s for s, pages in pages_by_signature.items() if len(pages) >= max(2, page_count // 3)}
    kept = []
    for box in boxes:
        if in_margin(box) and (signature(box) in repeated or PAGE_NUMBER.fullmatch(signature(box))):
            continue
        kept.append(box)
    return kept


def _join_lines(lines: list[str]) -> str:
    """Join a box's lines into one string, rejoining words split by a line-end hyphen."""
    text = ""
    for raw in lines:
        line = " ".join(raw.split())
        if not line:
            continue
        if text.endswith("-") and line[:1].islower() and len(text) > 1 and text[-2].isalpha():
            text = text[:-1] + line
        else:
            text = f"{text} {line}" if text else line
    return text


def _box_blocks(box: _Box) -> list[Block]:
    """A table, or a box split into a paragraph or one list item per marker-led line group."""
    if box.rows is not None:
        return [Block("table", "\n".join(box.lines), box.page, rows=box.rows)] if box.rows else []
    groups: list[list[str]] = []
    for line in box.lines:
        if LIST_MARKER.match(line) or not groups:
            groups.append([line])
        else:
            groups[-1].append(line)
    blocks: list[Block] = []
    for group in groups:
        text = _join_lines(group)
        match = LIST_MARKER.match(text)
        if match:
            label = match.group(1) or "•"
            blocks.append(Block("list_item", match.group(3).strip(), box.page, label))
        elif blocks and blocks[-1].kind == "paragraph":
            blocks[-1].text += " " + text
        else:
            blocks.append(Block("paragraph", text, box.page))
    return blocks


def _append_blocks(section: Section, blocks: list[Block]) -> None:
    """Append blocks, joining a paragraph that a page or column break split mid-sentence."""
    for block in blocks:
        previous = section.blocks[-1] if section.blocks else None
        continues = block.kind == "paragraph" and block.text[:1].islower()
        if previous and continues and not previous.text.rstrip().endswith((".", "!", "?", ":", ";")):
            previous.text += " " + block.text
        else:
            section.blocks.append(block)


def _document_title(reader: pypdf.PdfReader, outline: list, boxes: list[_Box], path: Path) -> str:
    """Single outline root, else PDF metadata (unless it is a file name), else a large-font line, else the file name."""
    roots = [title for level, title, _, _ in outline if level == 0]
    if len(roots) == 1:
        return roots[0]
    meta_title = ""
    try:
        meta_title = " ".join(str((reader.metadata or {}).get("/Title") or "").split())
    except Exception:
        pass
    looks_like_file = re.search(r"\.(pdf|docx?|indd|tex)$", meta_title, re.I) or meta_title.lower().startswith(
        ("microsoft word", "untitled")
    )
    if meta_title and not looks_like_file:
        return re.sub(r"\s+-\s+National Institute of Mental Health.*$", "", meta_title)
    first_page = [b for b in boxes if b.page == min(x.page for x in boxes)]
    body_size = Counter(round(b.size, 1) for b in boxes).most_common(1)[0][0] if boxes else 0.0
    headings = [b for b in first_page if b.size > body_size * 1.15 and len(b.text.split()) <= 20]
    if headings:
        return max(headings, key=lambda b: b.size).text
    return path.stem


def _find_anchor(boxes: list[_Box], title: str, page: int, top: float | None, start: int) -> tuple[int, bool]:
    """Position of the box that starts the outline entry; True when the box is the heading itself."""
    wanted = _normalize(title)
    for index in range(start, len(boxes)):
        box = boxes[index]
        if box.page < page + 1:
            continue
        if box.page > page + 2:
            break
        text = _normalize(box.text)
        if text and (text == wanted or (wanted.startswith(text) and len(text) > 8) or text.startswith(wanted)):
            return index, text == wanted or wanted.startswith(text)
    for index in range(start, len(boxes)):
        box = boxes[index]
        if box.page == page + 1 and (top is None or box.top >= box.page_height - top - 2):
            return index, False
        if box.page > page + 1:
            return index, False
    return len(boxes), False


def _chapters_from_outline(boxes: list[_Box], outline: list[tuple[int, str, int, float | None]]) -> list[Chapter]:
    anchors: list[_Anchor] = []
    heading_boxes: set[int] = set()
    cursor = 0
    for level, title, page, top in outline:
        position, is_heading = _find_anchor(boxes, title, page, top, cursor)
        if is_heading:
            heading_boxes.add(position)
        cursor = min(position, len(boxes))
        anchors.append(_Anchor(level, title, position))
    chapters: list[Chapter] = []
    path: list[str] = []
    anchor_at: dict[int, list[_Anchor]] = {}
    for anchor in anchors:
        anchor_at.setdefault(anchor.position, []).append(anchor)
    for index in range(len(boxes) + 1):
        for anchor in anchor_at.get(index, []):
            clean = strip_numbering(anchor.title)
            if anchor.level == 0:
                chapters.append(Chapter(chapter_key=slugify(anchor.title), title=clean))
                path = [clean]
                chapters[-1].sections.append(Section(title=clean, section_path=[clean]))
            elif chapters:
                path = path[: anchor.level] + [clean]
                chapters[-1].sections.append(Section(title=clean, section_path=list(path)))
        if index == len(boxes) or index in heading_boxes or not chapters:
            continue
        _append_blocks(chapters[-1].sections[-1], _box_blocks(boxes[index]))
    for chapter in chapters:
        chapter.sections = [s for s in chapter.sections if s.blocks]
    return chapters


def _chapters_from_fonts(boxes: list[_Box], title: str) -> list[Chapter]:
    """One chapter for the whole file; short boxes in a larger font than the body start sections."""
    weights: Counter[float] = Counter()
    for box in boxes:
        weights[round(box.size, 1)] += len(box.text)
    body = weights.most_common(1)[0][0] if weights else 0.0
    clean_title = strip_numbering(title)
    chapter = Chapter(chapter_key=slugify(title), title=clean_title)
    chapter.sections.append(Section(title=clean_title, section_path=[clean_title]))
    for box in boxes:
        text = box.text
        is_heading = box.size >= body * 1.15 and len(text.split()) <= 16 and not text.endswith(".")
        if is_heading and _normalize(text) == _normalize(title):
            continue
        if is_heading:
            heading = strip_numbering(text)
            chapter.sections.append(Section(title=heading, section_path=[clean_title, heading]))
            continue
        _append_blocks(chapter.sections[-1], _box_blocks(box))
    chapter.sections = [s for s in chapter.sections if s.blocks]
    return [chapter]
