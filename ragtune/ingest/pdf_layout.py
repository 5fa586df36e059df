"""A PDF's text layer as laid-out boxes, page by page.

pdfium (through pypdfium2) reads each character's text, box and size: its C++ content-stream
interpreter is what made parsing fast, since pdfminer's pure-Python one spent most of the time
tokenising the vector graphics of browser-printed brochures. The characters are then grouped
into lines and boxes in reading order by pdfminer's layout analysis, the grouping the parser has
always used. pdfplumber's table finder looks for ruled tables, over pdfium's characters and
strokes, only on pages whose strokes cross into a grid.
"""

from __future__ import annotations

import ctypes
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
from pdfminer.layout import LAParams, LTChar, LTPage, LTTextBox, LTTextLine
from pdfplumber.table import TableFinder, TableSettings
from scipy.sparse.csgraph import connected_components

from ragtune.text import join_wrapped

LAYOUT = LAParams(char_margin=4.0)  # justified lines have wide gaps; pdfminer's 2.0 splits them
RTL = "\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff"
RTL_RUN = re.compile(f"[{RTL}](?:[{RTL}\\s\u064b-\u065f]*[{RTL}])?")  # marks and spaces inside a run go with it
RULE_MIN_LENGTH = 8.0  # points: shorter straight strokes are glyph-like decoration, not table rules
RULE_TOLERANCE = 3.0  # points by which rules may miss each other and still cross (pdfplumber's snap)


@dataclass
class Box:
    page: int
    top: float  # distance from the top of the page, in points
    bottom: float
    page_height: float
    size: float  # largest font size in the box
    lines: list[str]
    rows: list[list[str]] | None = None  # a ruled table's cells, row by row
    ocr_confidence: float | None = None  # set on text Tesseract read from a scanned page

    @property
    def text(self) -> str:
        return join_lines(self.lines)


class _Glyph(LTChar):
    """An LTChar made from pdfium's numbers, so pdfminer's layout analysis can group it. Sets
    what LTComponent.set_bbox would, directly: one is made per character of every page."""

    fontname = ""
    ncs = graphicstate = None
    upright = True

    def __init__(self, text: str, bbox: tuple[float, float, float, float], size: float):
        self._text = text
        self.bbox = bbox
        self.x0, self.y0, self.x1, self.y1 = bbox
        self.width, self.height = bbox[2] - bbox[0], bbox[3] - bbox[1]
        self.adv = self.width
        self.matrix = (1.0, 0.0, 0.0, 1.0, bbox[0], bbox[1])
        self.size = size


def page_count(path: Path, password: str | None) -> int:
    pdf = pdfium.PdfDocument(str(path), password=password or None)
    try:
        return len(pdf)
    finally:
        pdf.close()


def pages_boxes(path: Path, password: str | None, indices: range) -> list[tuple[list[Box], float]]:
    """page_boxes for a run of pages; a top-level function so worker processes can run it."""
    pdf = pdfium.PdfDocument(str(path), password=password or None)
    try:
        return [page_boxes(pdf, index) for index in indices]
    finally:
        pdf.close()


def page_boxes(pdf: pdfium.PdfDocument, index: int) -> tuple[list[Box], float]:
    """Boxes of one page (0-based index) in reading order, each ruled table as one box in place of
    the text boxes inside it; and the page height."""
    page = pdf[index]
    try:
        left, bottom, right, top = page.get_mediabox()
        width, height = right - left, top - bottom  # unrotated, in points
        rotation = page.get_rotation()
        glyphs = _glyphs(page, (left, bottom), rotation, width, height)
        rules = [_rotated(rule, rotation, width, height) for rule in _rules(page, (left, bottom))]
    finally:
        page.close()
    if rotation in (90, 270):
        width, height = height, width
    layout = LTPage(index + 1, (0, 0, width, height))
    for glyph in glyphs:
        layout.add(glyph)
    layout.analyze(LAYOUT)
    tables = _ruled_tables(glyphs, rules, width, height) if _has_grid(rules) else []
    return _boxes(layout, tables, index + 1, height), height


def _glyphs(page: pdfium.PdfPage, origin: tuple[float, float], rotation: int, width: float, height: float) -> list[_Glyph]:
    """The page's characters in displayed coordinates (origin bottom left of the media box,
    /Rotate applied), skipping the spaces and line breaks pdfium generates itself. A glyph's box
    is pdfminer's: the advance wide, from the font's descent up one font size."""
    textpage = page.get_textpage()
    left, bottom = origin
    try:
        handle = textpage.raw
        box = pdfium_raw.FS_RECTF()
        matrix = pdfium_raw.FS_MATRIX()
        glyphs: list[_Glyph] = []
        count = pdfium_raw.FPDFText_CountChars(handle)
        text = textpage.get_text_range(0, count)
        if len(text) != count:  # characters outside the BMP: one code unit is no longer one character
            text = "".join(chr(pdfium_raw.FPDFText_GetUnicode(handle, i)) for i in range(count))
        for i, char in enumerate(text):
            if char in "\r\n\x00\uffff" or (char == " " and pdfium_raw.FPDFText_IsGenerated(handle, i) == 1):
                continue
            if char == "\ufffe":  # pdfium's mark for a hyphen that ends a line
                char = "-"
            pdfium_raw.FPDFText_GetLooseCharBox(handle, i, box)
            pdfium_raw.FPDFText_GetMatrix(handle, i, matrix)
            size = pdfium_raw.FPDFText_GetFontSize(handle, i) * math.hypot(matrix.c, matrix.d)
            x0, x1 = box.left - left, box.right - left
            y0 = box.bottom - bottom
            y1 = y0 + size if size > 0 and rotation == 0 else box.top - bottom
            bbox = (x0, y0, x1, y1) if rotation == 0 else _rotated((x0, y0, x1, y1), rotation, width, height)
            glyphs.append(_Glyph(char, bbox, size))
        return glyphs
    finally:
        textpage.close()


def _rotated(bbox: tuple[float, float, float, float], rotation: int, width: float, height: float) -> tuple[float, float, float, float]:
    """A box in unrotated page space moved into the page as displayed (width x height, rotated)."""
    x0, y0, x1, y1 = bbox
    if rotation == 90:  # displayed width is the unrotated height
        return (y0, width - x1, y1, width - x0)
    if rotation == 180:
        return (width - x1, height - y1, width - x0, height - y0)
    if rotation == 270:
        return (height - y1, x0, height - y0, x1)
    return bbox


def _rules(page: pdfium.PdfPage, origin: tuple[float, float]) -> list[tuple[float, float, float, float]]:
    """Straight horizontal and vertical strokes of at least RULE_MIN_LENGTH points (rectangle
    sides included) as degenerate boxes (x0, y0, x1, y1) from the media box's origin. Paths with
    a curve are artwork and skipped whole; forms (XObjects) are entered with their matrix."""
    rules: list[tuple[float, float, float, float]] = []
    page_handle = page.raw
    objects = [(pdfium_raw.FPDFPage_GetObject(page_handle, i), (1.0, 1.0, -origin[0], -origin[1]))
               for i in range(pdfium_raw.FPDFPage_CountObjects(page_handle))]
    matrix = pdfium_raw.FS_MATRIX()
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    x, y = ctypes.c_float(), ctypes.c_float()
    while objects:
        handle, (sx, sy, tx, ty) = objects.pop()
        kind = pdfium_raw.FPDFPageObj_GetType(handle)
        if kind not in (pdfium_raw.FPDF_PAGEOBJ_PATH, pdfium_raw.FPDF_PAGEOBJ_FORM):
            continue
        pdfium_raw.FPDFPageObj_GetMatrix(handle, matrix)
        if abs(matrix.b) > 1e-6 or abs(matrix.c) > 1e-6:
            continue  # a rotated or skewed drawing: not a table's rules
        a, d, e, f = sx * matrix.a, sy * matrix.d, sx * matrix.e + tx, sy * matrix.f + ty
        if kind == pdfium_raw.FPDF_PAGEOBJ_FORM:
            objects.extend((pdfium_raw.FPDFFormObj_GetObject(handle, i), (a, d, e, f))
                           for i in range(pdfium_raw.FPDFFormObj_CountObjects(handle)))
            continue
        pdfium_raw.FPDFPageObj_GetBounds(handle, left, bottom, right, top)
        if abs(sx) * (right.value - left.value) < RULE_MIN_LENGTH and abs(sy) * (top.value - bottom.value) < RULE_MIN_LENGTH:
            continue  # a bullet or an icon's detail
        found: list[tuple[float, float, float, float]] = []
        start = previous = None
        for s in range(pdfium_raw.FPDFPath_CountSegments(handle)):
            segment = pdfium_raw.FPDFPath_GetPathSegment(handle, s)
            segment_kind = pdfium_raw.FPDFPathSegment_GetType(segment)
            if segment_kind == pdfium_raw.FPDF_SEGMENT_BEZIERTO:
                found = []
                break
            pdfium_raw.FPDFPathSegment_GetPoint(segment, x, y)
            current = (a * x.value + e, d * y.value + f)
            if segment_kind == pdfium_raw.FPDF_SEGMENT_MOVETO:
                start = current
            elif previous is not None:
                _add_rule(previous, current, found)
                if pdfium_raw.FPDFPathSegment_GetClose(segment) and start is not None:
                    _add_rule(current, start, found)
            previous = current
        rules.extend(found)
    return rules


def _add_rule(p: tuple[float, float], q: tuple[float, float], rules: list) -> None:
    dx, dy = abs(q[0] - p[0]), abs(q[1] - p[1])
    if (dy < 1 and dx >= RULE_MIN_LENGTH) or (dx < 1 and dy >= RULE_MIN_LENGTH):
        rules.append((min(p[0], q[0]), min(p[1], q[1]), max(p[0], q[0]), max(p[1], q[1])))


def _has_grid(rules: list[tuple[float, float, float, float]]) -> bool:
    """Whether the rules cross into at least a 2 x 1 grid of cells (three row and two column
    levels, or the reverse, in one connected set): the only pages worth a table search. Icons and
    the bands framing a page's header do not."""
    h = np.array([r for r in rules if r[3] - r[1] < 1]).reshape(-1, 4)
    v = np.array([r for r in rules if r[3] - r[1] >= 1]).reshape(-1, 4)
    if len(h) < 2 or len(v) < 2:
        return False
    tol = RULE_TOLERANCE
    crosses = (
        (h[:, None, 0] - tol <= v[None, :, 0]) & (v[None, :, 0] <= h[:, None, 2] + tol)
        & (v[None, :, 1] - tol <= h[:, None, 1]) & (h[:, None, 1] <= v[None, :, 3] + tol)
    )
    graph = np.block([[np.zeros((len(h), len(h)), bool), crosses], [crosses.T, np.zeros((len(v), len(v)), bool)]])
    count, component = connected_components(graph, directed=False)
    for label in range(count):  # one table's rules all cross one another, directly or through others
        rows, columns = _levels(h[component[: len(h)] == label, 1]), _levels(v[component[len(h):] == label, 0])
        if (rows >= 3 and columns >= 2) or (rows >= 2 and columns >= 3):
            return True
    return False


def _levels(positions: np.ndarray) -> int:
    """Distinct positions, those within RULE_TOLERANCE of the previous one counting once."""
    ordered = np.sort(positions)
    return int(len(ordered) and 1 + (np.diff(ordered) > RULE_TOLERANCE).sum())


class _RuledPage:
    """What pdfplumber's TableFinder reads of a page (bbox, edges, chars), made from pdfium's
    rules and glyphs, so its table search runs without re-reading the page in pure Python."""

    def __init__(self, glyphs: list[_Glyph], rules: list, width: float, height: float):
        self.bbox = (0.0, 0.0, width, height)
        self.chars = [
            {"text": g.get_text(), "x0": g.x0, "x1": g.x1, "top": height - g.y1, "bottom": height - g.y0,
             "doctop": height - g.y1, "upright": True, "size": g.size, "width": g.width, "height": g.height}
            for g in glyphs
        ]
        self.edges = [
            {"object_type": "line", "orientation": "h" if y1 - y0 < 1 else "v", "x0": x0, "x1": x1,
             "top": height - y1, "bottom": height - y0, "doctop": height - y1, "width": x1 - x0, "height": y1 - y0}
            for x0, y0, x1, y1 in rules
        ]


def _ruled_tables(glyphs: list[_Glyph], rules: list, width: float, height: float) -> list[tuple[tuple, list[list[str]]]]:
    """Data tables pdfplumber's TableFinder (its default, ruled-lines strategy) finds on the page."""
    finder = TableFinder(_RuledPage(glyphs, rules, width, height), TableSettings.resolve(None))
    found = [(t.bbox, table_rows(t.extract())) for t in finder.tables]
    return [(bbox, rows) for bbox, rows in found if is_data_table(rows)]


def _boxes(layout: LTPage, tables: list, page_number: int, height: float) -> list[Box]:
    """Text boxes in pdfminer's reading order; each ruled table replaces the boxes inside it,
    at the place of the first of them."""
    boxes: list[Box] = []
    placed: set[int] = set()
    for element in layout:
        if not isinstance(element, LTTextBox):
            continue
        lines = [logical_order(line.get_text()) for line in element if isinstance(line, LTTextLine)]
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
        boxes.append(Box(page_number, top, bottom, height, max(sizes, default=0.0), lines))
    for number, table in enumerate(tables):  # a table pdfminer found no text box inside
        if number not in placed and table[1]:
            box = _table_box(page_number, height, *table)
            boxes.insert(next((i for i, b in enumerate(boxes) if b.top > box.top), len(boxes)), box)
    return boxes


def logical_order(line: str) -> str:
    """pdfium hands right-to-left script (Arabic, Hebrew) over in visual order; each such run is
    turned back into reading order so words match what a reader types."""
    return RTL_RUN.sub(lambda run: run.group(0)[::-1], line)


def join_lines(lines: list[str]) -> str:
    """Join a box's lines into one string, rejoining words split by a line-end hyphen."""
    text = ""
    for raw in lines:
        line = " ".join(raw.split())
        if not line:
            continue
        if text.endswith("-") and line[:1].islower() and len(text) > 1 and text[-2].isalpha():
            text = text[:-1] + line
        else:
            text = join_wrapped(text, line)
    return text


def table_rows(cells: list[list[str | None]]) -> list[list[str]]:
    rows = [[join_lines((cell or "").splitlines()) for cell in row] for row in cells]
    return [row for row in rows if any(row)]


def is_data_table(rows: list[list[str]]) -> bool:
    """Brochures draw frames around sidebars and page furniture; those are read as text, not as tables."""
    cells = [cell for row in rows for cell in row]
    return len(rows) >= 2 and max(map(len, rows)) >= 2 and sum(map(bool, cells)) >= 0.6 * len(cells)


def _containing_table(tables: list, x: float, y: float) -> int | None:
    for number, ((x0, top, x1, bottom), _) in enumerate(tables):
        if x0 <= x <= x1 and top <= y <= bottom:
            return number
    return None


def _table_box(page: int, height: float, bbox: tuple, rows: list[list[str]]) -> Box:
    return Box(page, bbox[1], bbox[3], height, 0.0, [" | ".join(row) for row in rows], rows)
