"""GROBID fulltext TEI -> the same document JSON the embedded parser produces.

GROBID writes body sections as sibling <div>s; nesting is only in the head numbering
(<head n="2.1">), so the section path is rebuilt from it. Pages come from `coords`
attributes ("page,x,y,w,h;...") when the TEI was requested with teiCoordinates; otherwise
blocks carry page 0 (unknown). Tested on GROBID 0.6.1 to 0.8.3 output.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ragtune.ingest.document import Block, Chapter, Document, Section, document_id, slugify
from ragtune.ingest.pdf_parser import ParseError

TEI = "{http://www.tei-c.org/ns/1.0}"


def _tag(element: ET.Element) -> str:
    return element.tag.replace(TEI, "")


def _text(element: ET.Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _page(element: ET.Element) -> int:
    """First page named by a coords attribute on the element or inside it; 0 when there is none."""
    for node in element.iter():
        coords = node.get("coords")
        if coords:
            first = coords.split(";")[0].split(",")[0]
            if first.strip().isdigit():
                return int(first)
    return 0


def _depth(number: str | None) -> int:
    """'2.1.' -> 2; None or '' -> 1 (a top-level section)."""
    if not number:
        return 1
    parts = [p for p in number.strip().strip(".").split(".") if p]
    return max(1, len(parts))


def parse_tei(path: Path | str) -> Document:
    path = Path(path)
    data = path.read_bytes()
    stem = re.sub(r"\.tei$", "", path.stem)
    return parse_tei_bytes(data, source_path=str(path), doc_name=stem, source_sha256=hashlib.sha256(data).hexdigest())


def parse_tei_bytes(data: bytes, source_path: str, doc_name: str, source_sha256: str) -> Document:
    """source_sha256 is the hash of what the user gave: the TEI file, or the PDF sent to GROBID."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise ParseError(source_path, f"not well-formed TEI XML ({error})", "re-run GROBID or check the file") from error
    if _tag(root) != "TEI":
        raise ParseError(source_path, f"root element is <{_tag(root)}>, not <TEI>", "give a GROBID fulltext TEI file")
    header = root.find(f"{TEI}teiHeader")
    title = _text(header.find(f"{TEI}fileDesc/{TEI}titleStmt/{TEI}title")) if header is not None else ""
    title = title or doc_name
    authors = [
        " ".join(_text(part) for part in pers if _tag(part) in ("forename", "surname") and _text(part))
        for pers in root.iterfind(f".//{TEI}sourceDesc/{TEI}biblStruct/{TEI}analytic/{TEI}author/{TEI}persName")
    ]
    abstract_element = root.find(f".//{TEI}profileDesc/{TEI}abstract")
    abstract_blocks = _blocks(abstract_element, 0) if abstract_element is not None else []
    chapter = Chapter(chapter_key=slugify(title), title=title)
    if abstract_blocks:
        chapter.sections.append(Section("Abstract", [title, "Abstract"], abstract_blocks))
    body = root.find(f"{TEI}text/{TEI}body")
    if body is not None:
        _walk_body(body, chapter, title)
    chapter.sections = [s for s in chapter.sections if s.blocks]
    if not chapter.sections:
        raise ParseError(
            source_path,
            "GROBID extracted no text (empty TEI body and abstract)",
            "check that the PDF has a text layer, or parse it with the embedded parser",
        )
    pages = [b.page for s in chapter.sections for b in s.blocks]
    return Document(
        doc_id=document_id(doc_name, source_path),
        source_path=source_path,
        source_sha256=source_sha256,
        title=title,
        parser="grobid-tei",
        page_count=max(pages, default=0),
        chapters=[chapter],
        authors=[a for a in authors if a],
        abstract=" ".join(b.text for b in abstract_blocks),
    )


def _walk_body(body: ET.Element, chapter: Chapter, title: str) -> None:
    """Append one section per titled <div>; text before the first heading goes to a 'Body' section,
    body-level figures and tables to a 'Figures and tables' section."""
    stack: list[tuple[int, str]] = []  # (depth, heading) of the enclosing numbered sections
    first_body_section = len(chapter.sections)
    last_page = 0

    def target() -> Section:
        if len(chapter.sections) == first_body_section:
            chapter.sections.append(Section("Body", [title, "Body"]))
        return chapter.sections[-1]

    def add(element: ET.Element) -> None:
        nonlocal last_page
        blocks = _blocks(element, last_page)
        if blocks:
            last_page = blocks[-1].page or last_page
            target().blocks.extend(blocks)

    def visit_div(div: ET.Element) -> None:
        nonlocal stack
        head = div.find(f"{TEI}head")
        if head is not None and _text(head):
            depth, name = _depth(head.get("n")), _text(head)
            stack = [entry for entry in stack if entry[0] < depth] + [(depth, name)]
            chapter.sections.append(Section(name, [title] + [n for _, n in stack]))
        for child in div:
            if _tag(child) == "div":
                visit_div(child)
            elif _tag(child) != "head":
                add(child)

    figures = Section("Figures and tables", [title, "Figures and tables"])
    for child in body:
        if _tag(child) == "div":
            visit_div(child)
        elif _tag(child) == "figure":  # GROBID lists floats after the last section
            figures.blocks.extend(_blocks(child, last_page))
        else:
            add(child)
    chapter.sections.append(figures)


def _blocks(element: ET.Element, fallback_page: int) -> list[Block]:
    """Blocks for one TEI element: paragraphs, list items, formulas, tables, figure captions."""
    tag = _tag(element)
    page = _page(element) or fallback_page
    if tag in ("abstract", "div"):
        blocks: list[Block] = []
        for child in element:
            blocks.extend(_blocks(child, page))
            page = blocks[-1].page if blocks else page
        return blocks
    if tag == "p":
        text = _text(element)
        return [Block("paragraph", text, page)] if text else []
    if tag == "list":
        return [
            Block("list_item", _text(item), _page(item) or page, item.get("n") or "•")
            for item in element.iterfind(f"{TEI}item")
            if _text(item)
        ]
    if tag == "formula":
        label = _text(element.find(f"{TEI}label"))
        text = " ".join(t for t in (_text(element).removesuffix(label).strip(), label) if t)
        return [Block("formula", text, page, label)] if text else []
    if tag == "figure":
        head, label = _text(element.find(f"{TEI}head")), _text(element.find(f"{TEI}label"))
        caption = _text(element.find(f"{TEI}figDesc"))
        table = element.find(f"{TEI}table")
        if element.get("type") == "table" or table is not None:
            rows = [[_text(cell) for cell in row.iterfind(f"{TEI}cell")] for row in (table.iterfind(f"{TEI}row") if table is not None else [])]
            lines = [" | ".join(r) for r in rows]
            text = "\n".join(t for t in [head, caption, *lines] if t)
            return [Block("table", text, page, label, rows)] if text else []
        text = ": ".join(t for t in (head, caption) if t)
        return [Block("figure_caption", text, page, label)] if text else []
    return []
