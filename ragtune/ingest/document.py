"""The parsed-document model every parser produces and every later stage reads.

A document has chapters; a chapter has sections (with a section path for nesting);
a section has blocks (paragraphs and list items), each with the page it came from.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.text import CJK_RUN

CJK_SPLIT = re.compile(f"({CJK_RUN.pattern})")
_NUMBERING = re.compile(
    r"^\s*(?:(?:chapter|part|section)\s+(?:[0-9]+|[ivxlc]+)[.:)\-]?|(?:[0-9]+(?:\.[0-9]+)*|[ivxlc]+)[.:)]|[0-9]+(?:\.[0-9]+)+)\s+",
    re.IGNORECASE,
)


@dataclass
class Block:
    kind: str  # "paragraph" | "list_item" | "table" | "figure_caption" | "formula"
    text: str
    page: int  # 1-based physical page; 0 when the source does not say (TEI without coordinates)
    label: str = ""  # list marker such as "A", "3", "•"; figure/table label from TEI
    rows: list[list[str]] = field(default_factory=list)  # table cells, row by row
    ocr_confidence: float | None = None  # Tesseract's mean word confidence (0..1) for text read off a scan


@dataclass
class Section:
    title: str
    section_path: list[str]
    blocks: list[Block] = field(default_factory=list)

    @property
    def pages(self) -> list[int]:
        return sorted({b.page for b in self.blocks if b.page > 0})


@dataclass
class Chapter:
    chapter_key: str
    title: str
    sections: list[Section] = field(default_factory=list)

    @property
    def pages(self) -> list[int]:
        return sorted({p for s in self.sections for p in s.pages})

    def text(self) -> str:
        parts: list[str] = [self.title]
        for section in self.sections:
            parts.append(section.title)
            parts.extend(f"{b.label}. {b.text}" if b.label else b.text for b in section.blocks)
        return "\n".join(parts)

    def content_sha256(self) -> str:
        return hashlib.sha256(self.text().encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pages"] = self.pages
        data["content_sha256"] = self.content_sha256()
        for section, raw in zip(self.sections, data["sections"]):
            raw["pages"] = section.pages
            for block in raw["blocks"]:
                if not block["rows"]:
                    del block["rows"]  # only tables carry rows
                if block["ocr_confidence"] is None:
                    del block["ocr_confidence"]  # only OCR'd text carries it
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Chapter":
        sections = [
            Section(title=s["title"], section_path=list(s["section_path"]), blocks=[Block(**b) for b in s["blocks"]])
            for s in data["sections"]
        ]
        return cls(chapter_key=data["chapter_key"], title=data["title"], sections=sections)


@dataclass
class Document:
    doc_id: str
    source_path: str
    source_sha256: str
    title: str
    parser: str
    page_count: int
    chapters: list[Chapter] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    abstract: str = ""
    ocr_pages: list[int] = field(default_factory=list)  # pages read by OCR (no text layer)

    def to_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self).items() if k != "chapters"}
        return {**fields, "chapters": [c.to_dict() for c in self.chapters]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Document":
        fields = {k: data[k] for k in ("doc_id", "source_path", "source_sha256", "title", "parser", "page_count")}
        return cls(
            **fields,
            chapters=[Chapter.from_dict(c) for c in data["chapters"]],
            authors=list(data.get("authors", [])),
            abstract=data.get("abstract", ""),
            ocr_pages=list(data.get("ocr_pages", [])),
        )

    @classmethod
    def load(cls, path: Path) -> "Document":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def strip_numbering(title: str) -> str:
    """'1. Depressive Disorders' -> 'Depressive Disorders'; 'Chapter 3: X' -> 'X'."""
    stripped = _NUMBERING.sub("", title, count=1).strip()
    return stripped or title.strip()


def romanize(text: str) -> str:
    """Latin letters for any script, so partition keys stay readable: Chinese as pinyin syllables
    (pypinyin reads characters in context, so polyphones such as 重 come out right), every other
    script and accented letters through anyascii ('Ménière' -> 'Meniere')."""
    from anyascii import anyascii
    from pypinyin import lazy_pinyin

    parts = [" ".join(lazy_pinyin(run)) if CJK_RUN.fullmatch(run) else run for run in CJK_SPLIT.split(text) if run]
    return anyascii(" ".join(parts))


def slugify(title: str, max_len: int = 48) -> str:
    """A Dagster-safe partition key ([a-z0-9-]) from a chapter title in any script, cut on a word
    boundary: '抑郁障碍' -> 'yi-yu-zhang-ai'."""
    slug = re.sub(r"[^a-z0-9]+", "-", romanize(strip_numbering(title)).lower()).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len].rsplit("-", 1)[0]
    return slug or "untitled"


def unique_chapter_keys(chapters: list[Chapter]) -> list[Chapter]:
    """Chapters of one document whose titles romanize to the same key would merge into one
    partition. Keep the first key; a later chapter with another title gets a suffix from its own
    title's hash (stable when chapters are added or moved), a repeated title a running number."""
    taken: set[str] = set()
    for chapter in chapters:
        key = chapter.chapter_key
        if key in taken:
            key = f"{chapter.chapter_key}-{hashlib.sha256(chapter.title.encode()).hexdigest()[:6]}"
            number = 2
            while key in taken:  # the same title again
                key, number = f"{chapter.chapter_key}-{number}", number + 1
        taken.add(key)
        chapter.chapter_key = key
    return chapters


def document_id(name: str, source_path: str | Path) -> str:
    """"<name>-<hash of where the file lives>": the same id when the file is edited (its content
    hash, source_sha256, is the version), so an edit of one chapter leaves the other chapters'
    provenance alone; a different id for another file of the same name elsewhere. A moved file
    is a new document."""
    where = str(Path(source_path).expanduser().resolve())
    return f"{slugify(name, 32)}-{hashlib.sha256(where.encode()).hexdigest()[:10]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
