"""Embedded PDF parser: pypdf for the outline and encryption, pdf_layout for the laid-out text
(pdfium's characters in pdfminer's reading order) and ruled tables, Tesseract for scanned pages.

Chapters come from the top level of the PDF outline and sections from the levels below;
without an outline the whole file is one chapter and sections come from larger fonts.
Running headers/footers are dropped, hyphenated line breaks joined, lettered, numbered or
bulleted lines kept as list items with their label, and ruled tables kept as rows of cells.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import pypdf

from ragtune.ingest.document import Block, Chapter, Document, Section, document_id, file_sha256, slugify, strip_numbering
from ragtune.ingest.ocr import OcrUnavailable, check_tesseract, languages_for, ocr_pdf_page
from ragtune.ingest.pdf_layout import Box, join_lines, page_count, pages_boxes

LIST_MARKER = re.compile(r"^\s*(?:\(?([A-Za-z]|\d{1,2})[.)]|([•●▪◦‣∙·\-–]))\s+(.*)$", re.S)
MARGIN_BAND = 0.09  # top/bottom fraction of the page where running headers/footers live
PARSE_WORKERS = min(4, os.cpu_count() or 1)  # processes reading one PDF's pages; 1 reads them in this one
PARALLEL_MIN_PAGES = 4  # fewer pages are not worth the hand-over to workers
PAGE_NUMBER = re.compile(r"(page )?#( (of )?#)?")  # "#", "page #", "# of #" after digits became "#"


class ParseError(Exception):
    """A document that cannot be parsed, with what is wrong and what the user can do."""

    def __init__(self, path: Path | str, problem: str, remedy: str):
        self.path, self.problem, self.remedy = str(path), problem, remedy
        super().__init__(f"{path}: {problem}; {remedy}")


@dataclass
class _Anchor:
    level: int
    title: str
    position: int  # index into the block stream where this heading starts


def parse_pdf(path: Path | str, password: str | None = None, ocr_languages: str | None = None, workers: int = PARSE_WORKERS) -> Document:
    """workers: processes that read the pages (1: this one only). ocr_languages: Tesseract languages for pages without a text layer (e.g. 'eng', 'chi_sim',
    'eng+chi_sim'); None takes the PDF's declared language, else eng+chi_sim."""
    path = Path(path)
    for noisy in ("pdfminer", "pypdf"):  # their warnings go to stderr; problems surface as ParseError
        logging.getLogger(noisy).setLevel(logging.ERROR)
    reader = _open_reader(path, password)
    outline = _flatten_outline(reader)
    boxes, scanned = _layout_boxes(path, password, workers)
    if scanned:
        boxes = _with_ocr(path, password, boxes, scanned, languages_for(_declared_language(reader), ocr_languages))
    if not any(box.text.strip() for box in boxes):
        if not scanned:
            raise ParseError(path, "the PDF has no pages", "re-export the file")
        raise ParseError(path, f"OCR found no text on its {len(scanned)} scanned page(s) (blank, or too faint to read)",
                         "check the scan, or rescan at 300 dpi or more")
    boxes = _drop_running_lines(boxes, page_count=len(reader.pages))
    title = _document_title(reader, outline, boxes, path)
    sha = file_sha256(path)
    doc = Document(
        doc_id=document_id(path.stem, path),
        source_path=str(path),
        source_sha256=sha,
        title=title,
        parser="embedded-pdfium+tesseract" if scanned else "embedded-pdfium",
        page_count=len(reader.pages),
        ocr_pages=[page for page, _ in scanned],
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


def _layout_boxes(path: Path, password: str | None, workers: int) -> tuple[list[Box], list[tuple[int, float]]]:
    """The text layer's boxes, and (page number, height) of each page that has none (a scan).
    Runs of pages go to worker processes; this process reads the first run itself."""
    boxes: list[Box] = []
    scanned: list[tuple[int, float]] = []
    try:
        count = page_count(path, password)
        # A daemon process (a Celery prefork worker, a multiprocess executor's child) may not fork workers.
        parallel = count >= PARALLEL_MIN_PAGES and not multiprocessing.current_process().daemon
        runs = _page_runs(count, workers if parallel else 1)
        futures = [_pool(workers).submit(pages_boxes, path, password, run) for run in runs[1:]]
        pages = pages_boxes(path, password, runs[0]) if runs else []
        for future in futures:
            pages.extend(future.result())
    except BrokenProcessPool:  # a worker died (out of memory, killed): read the pages here instead
        _pool.cache_clear()
        pages = pages_boxes(path, password, range(count))
    except Exception as error:
        raise ParseError(path, f"not a readable PDF ({type(error).__name__}: {error})", "re-export or repair the file") from error
    for number, (found, height) in enumerate(pages, start=1):
        if not found:
            scanned.append((number, height))
        boxes.extend(found)
    return boxes, scanned


def _page_runs(count: int, workers: int) -> list[range]:
    step = -(-count // max(1, workers))
    return [range(start, min(count, start + step)) for start in range(0, count, step)]


@functools.cache
def _pool(workers: int) -> ProcessPoolExecutor:
    """One pool per process. Forked workers start at once with the parser already imported, and
    unlike spawn or forkserver they do not re-run the caller's script (which may lack a
    __main__ guard); logging re-creates its locks in a forked child."""
    return ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("fork"))


def _declared_language(reader: pypdf.PdfReader) -> str | None:
    try:
        return str(reader.trailer["/Root"].get("/Lang") or "") or None
    except Exception:
        return None


def _with_ocr(path: Path, password: str | None, boxes: list[Box], scanned: list[tuple[int, float]], languages: str) -> list[Box]:
    """The boxes with each scanned page's OCR paragraphs put in page order."""
    pages = ", ".join(str(page) for page, _ in scanned[:10]) + (" ..." if len(scanned) > 10 else "")
    try:
        check_tesseract(languages)
    except OcrUnavailable as error:
        raise ParseError(path, f"page(s) {pages} have no text layer and {error}", "or add a PDF that already carries an OCR text layer") from error
    read: list[Box] = []
    for page, height in scanned:
        try:
            paragraphs = ocr_pdf_page(path, page - 1, languages, password)
        except Exception as error:  # Tesseract or the renderer failing on one page
            raise ParseError(path, f"OCR failed on page {page} ({type(error).__name__}: {str(error)[:200]})", "check the scan, or OCR it yourself (e.g. ocrmypdf) and add that PDF") from error
        read.extend(Box(page, p.top, p.bottom, height, p.size, p.lines, ocr_confidence=p.confidence) for p in paragraphs)
    return sorted(boxes + read, key=lambda box: box.page)  # stable: each page keeps its own order


def _normalize(text: str) -> str:
    """Lower-cased letters and digits of any script (a Chinese title must not normalize to '')."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def _drop_running_lines(boxes: list[Box], page_count: int) -> list[Box]:
    """Remove boxes in the page margins whose text (digits ignored) repeats across pages, and bare page numbers."""

    def in_margin(box: Box) -> bool:
        band = box.page_height * MARGIN_BAND
        return box.top < band or box.bottom > box.page_height - band

    def signature(box: Box) -> str:
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


def _box_blocks(box: Box) -> list[Block]:
    """A table, or a box split into a paragraph or one list item per marker-led line group."""
    if box.rows is not None:
        return [Block("table", "\n".join(box.lines), box.page, rows=box.rows)] if box.rows else []
    confidence = {"ocr_confidence": box.ocr_confidence} if box.ocr_confidence is not None else {}
    groups: list[list[str]] = []
    for line in box.lines:
        if LIST_MARKER.match(line) or not groups:
            groups.append([line])
        else:
            groups[-1].append(line)
    blocks: list[Block] = []
    for group in groups:
        text = join_lines(group)
        match = LIST_MARKER.match(text)
        if match:
            label = match.group(1) or "•"
            blocks.append(Block("list_item", match.group(3).strip(), box.page, label, **confidence))
        elif blocks and blocks[-1].kind == "paragraph":
            blocks[-1].text += " " + text
        else:
            blocks.append(Block("paragraph", text, box.page, **confidence))
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


def _document_title(reader: pypdf.PdfReader, outline: list, boxes: list[Box], path: Path) -> str:
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


def _find_anchor(boxes: list[Box], title: str, page: int, top: float | None, start: int) -> tuple[int, bool]:
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


def _chapters_from_outline(boxes: list[Box], outline: list[tuple[int, str, int, float | None]]) -> list[Chapter]:
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


def _chapters_from_fonts(boxes: list[Box], title: str) -> list[Chapter]:
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
