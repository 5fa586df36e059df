"""Markdown and plain-text documents -> the same document JSON as the PDF and TEI parsers.

Markdown: one top-level heading makes the document one chapter with deeper headings as its
sections; several top-level headings make several chapters. Lists, pipe tables and paragraphs
become blocks. Plain text: one chapter, blank-line paragraphs, marker-led lines as list items.
These formats have no pages, so blocks carry page 0.
"""

from __future__ import annotations

import re
from pathlib import Path

from ragtune.ingest.document import Block, Chapter, Document, Section, document_id, file_sha256, slugify, strip_numbering
from ragtune.ingest.pdf_parser import ParseError
from ragtune.text import join_wrapped

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LIST_ITEM = re.compile(r"^\s*(?:([-*+•])|(\d{1,2}|[A-Za-z])[.)])\s+(.*)$")
RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _inline(text: str) -> str:
    """Drop images, keep link text, strip emphasis and code marks."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__|`)", "", text)
    text = re.sub(r"(?<!\w)[*_](\S[^*_]*?)[*_](?!\w)", r"\1", text)
    return " ".join(text.split())


def _paragraph_blocks(lines: list[str]) -> list[Block]:
    """One blank-line-separated group: a table, list items, or a paragraph."""
    if len(lines) >= 2 and lines[0].strip().startswith("|") and TABLE_SEPARATOR.match(lines[1]):
        rows = [[_inline(cell) for cell in line.strip().strip("|").split("|")] for line in lines if not TABLE_SEPARATOR.match(line)]
        rows = [row for row in rows if any(row)]  # converters write an empty header row for a table without one
        return [Block("table", "\n".join(" | ".join(r) for r in rows), 0, rows=rows)]
    blocks: list[Block] = []
    for line in lines:
        match = LIST_ITEM.match(line)
        if match:
            blocks.append(Block("list_item", _inline(match.group(3)), 0, match.group(2) or "•"))
        elif blocks:
            blocks[-1].text = join_wrapped(blocks[-1].text, _inline(line))
        else:
            blocks.append(Block("paragraph", _inline(line), 0))
    return [b for b in blocks if b.text]


def _groups(lines: list[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for line in lines:
        if not line.strip() or RULE.match(line):
            groups.append([])
        else:
            groups[-1].append(line)
    return [g for g in groups if g]


def parse_markdown(path: Path | str) -> Document:
    path = Path(path)
    return markdown_document(path, _read(path), "markdown")


def markdown_document(path: Path, source: list[str], parser: str) -> Document:
    """The document of Markdown lines: also what DOCX, HTML, EPUB and PPTX become (ragtune.ingest.office)."""
    headings = [(i, len(m.group(1)), _inline(m.group(2))) for i, line in enumerate(source) if (m := HEADING.match(line))]
    top = min((level for _, level, _ in headings), default=1)
    title = next((text for _, level, text in headings if level == top), path.stem)
    chapters: list[Chapter] = []
    preamble: list[Block] = []  # text before the first top-level heading joins the first chapter
    stack: list[tuple[int, str]] = []
    cursor = 0
    for index, level, text in headings + [(len(source), 0, "")]:
        blocks = [b for group in _groups(source[cursor:index]) for b in _paragraph_blocks(group)]
        (chapters[-1].sections[-1].blocks if chapters else preamble).extend(blocks)
        cursor = index + 1
        name = strip_numbering(text)
        if not level:
            break
        if level == top:
            chapters.append(Chapter(slugify(text), name, [Section(name, [name], preamble if not chapters else [])]))
            stack = []
        else:
            if not chapters:
                chapters.append(Chapter(slugify(title), strip_numbering(title), [Section(strip_numbering(title), [strip_numbering(title)], preamble)]))
            stack = [entry for entry in stack if entry[0] < level] + [(level, name)]
            chapters[-1].sections.append(Section(name, [chapters[-1].title] + [n for _, n in stack]))
    if not chapters:
        chapters.append(Chapter(slugify(title), strip_numbering(title), [Section(strip_numbering(title), [strip_numbering(title)], preamble)]))
    return _document(path, title, chapters, parser)


def parse_text(path: Path | str) -> Document:
    path = Path(path)
    lines = _read(path)
    first = next((line.strip() for line in lines if line.strip()), "")
    title = first if 0 < len(first.split()) <= 12 and not first.endswith(".") else path.stem
    body = lines[lines.index(next(line for line in lines if line.strip())) + 1 :] if title == first else lines
    name = strip_numbering(title)
    section = Section(name, [name])
    for group in _groups(body):
        section.blocks.extend(_paragraph_blocks(group))
    return _document(path, title, [Chapter(slugify(title), name, [section])], "text")


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ParseError(path, "not UTF-8 text", "convert the file to UTF-8") from error


def _document(path: Path, title: str, chapters: list[Chapter], parser: str) -> Document:
    for chapter in chapters:
        chapter.sections = [s for s in chapter.sections if s.blocks]
    chapters = [c for c in chapters if c.sections]
    if not chapters:
        raise ParseError(path, "no text found", "check the file is not empty")
    sha = file_sha256(path)
    return Document(document_id(path.stem, path), str(path), sha, title, parser, 0, chapters)
