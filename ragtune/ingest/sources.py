"""Turn input paths into parsed documents, and parsed documents into per-chapter bundles.

A chapter key may appear in several documents (a collection's category); its bundle holds one
part per document so every chunk keeps the document it came from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.ingest.collection import KEEP_OUTLINE, assign_category, folder_categories, mapping_categories
from ragtune.ingest.document import Chapter, Document, Section, unique_chapter_keys
from ragtune.ingest.formats import SUPPORTED_SUFFIXES, file_format
from ragtune.ingest.grobid import GrobidSettings, parse_pdf_with_grobid
from ragtune.ingest.office import parse_office
from ragtune.ingest.pdf_parser import ParseError, parse_pdf
from ragtune.ingest.tei_parser import parse_tei
from ragtune.ingest.text_parser import parse_markdown, parse_text

__all__ = ["SUPPORTED_SUFFIXES", "expand_paths", "is_candidate", "nothing_to_read", "parse_document", "parse_all"]


def is_candidate(path: Path) -> bool:
    """A file a folder or the inbox hands to the parsers: a known extension, or none at all (its
    content then says what it is). Hidden files and other extensions are left alone."""
    return path.is_file() and not path.name.startswith(".") and (path.name.lower().endswith(SUPPORTED_SUFFIXES) or not path.suffix)


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given; folders expanded to the candidate files inside them, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if is_candidate(p)))
        else:
            found.append(path)
    return found


def nothing_to_read(paths: list[str], shown: int = 8) -> str | None:
    """When the given files and folders hold no file a parser takes: one line saying what was skipped
    and which types are read; None when there is something to read."""
    if expand_paths(paths):
        return None
    skipped = [p for raw in paths for p in ([Path(raw)] if Path(raw).is_file() else sorted(Path(raw).rglob("*"))) if p.is_file()]
    listed = ", ".join(str(p) for p in skipped[:shown]) + (f" and {len(skipped) - shown} more" if len(skipped) > shown else "")
    return (f"nothing to read in {', '.join(paths)}: " + (f"skipped {listed}" if skipped else "no files") +
            f"; ragtune reads {', '.join(SUPPORTED_SUFFIXES)} files (or files without an extension whose content is one of them)")


def parse_document(
    path: Path | str, password: str | None = None, grobid: GrobidSettings | None = None, ocr_languages: str | None = None
) -> Document:
    """Any supported format, told by content and extension; a PDF goes to GROBID when settings are
    given, else to the embedded parser. Chapter keys come out unique within the document."""
    path = Path(path)
    if not path.is_file():
        raise ParseError(path, "file not found", "check the path")
    kind = file_format(path)
    if kind == "tei":
        document = parse_tei(path)
    elif kind == "markdown":
        document = parse_markdown(path)
    elif kind == "text":
        document = parse_text(path)
    elif kind == "pdf":
        document = parse_pdf_with_grobid(path, grobid) if grobid is not None else parse_pdf(path, password, ocr_languages)
    else:
        document = parse_office(path, kind)
    document.chapters = unique_chapter_keys(document.chapters)
    return document


def parse_all(
    paths: list[str],
    password: str | None = None,
    grobid: GrobidSettings | None = None,
    categories_from: str = "outline",
    mapping_file: str | None = None,
    ocr_languages: str | None = None,
) -> tuple[list[Document], list[dict[str, str]]]:
    """Parse every input; a bad file becomes a failure record and the others go on.

    categories_from: 'outline' (a book: chapter keys from its outline), 'folder'
    (inbox/<category>/*) or 'mapping' (a file/category table; category 'outline' keeps a book's
    own chapters); a document the folder layout or mapping does not place is recorded as a failure."""
    files = expand_paths(paths)
    categories: dict[Path, str] = {}
    if categories_from == "folder":
        categories = folder_categories(files, [Path(p) for p in paths if Path(p).is_dir()])
    elif categories_from == "mapping":
        if not mapping_file:
            raise ParseError("parser config", "categories_from is 'mapping' but no mapping_file is set", "set mapping_file")
        categories = mapping_categories(Path(mapping_file))
    documents, failures = [], []
    for path in files:
        try:
            document = parse_document(path, password, grobid, ocr_languages)
            if categories_from != "outline":
                category = categories.get(path.resolve())
                if category is None:
                    raise ParseError(path, f"no category for this file in the {categories_from} layout", "move it into inbox/<category>/ or add it to the mapping file")
                if category != KEEP_OUTLINE:
                    document = assign_category(document, category)
            documents.append(document)
        except ParseError as error:
            failures.append({"path": str(path), "problem": error.problem, "remedy": error.remedy})
        except Exception as error:  # an unreadable file (permissions, a parser's own bug) is that file's failure alone
            failures.append({"path": str(path), "problem": f"could not be read ({type(error).__name__}: {error})",
                             "remedy": "check the file's permissions and that it opens; the other files went on"})
    return documents, failures


@dataclass
class ChapterBundle:
    chapter_key: str
    title: str
    parts: list[tuple[str, Chapter]]  # (doc_id, chapter)

    def content_sha256(self) -> str:
        """The chapter's version: everything its rows will carry, its text and also each part's doc id,
        section paths and block pages, so a page shift of an unchanged text makes the chapter stale
        (its rows must show the new pages). Not the file's hash: editing another chapter of the
        same book changes that, and must not touch this chapter."""
        payload = [[doc_id, chapter.to_dict()] for doc_id, chapter in self.parts]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def merged(self) -> Chapter:
        sections: list[Section] = [s for _, chapter in self.parts for s in chapter.sections]
        return Chapter(self.chapter_key, self.title, sections)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chapter_key": self.chapter_key,
            "title": self.title,
            "content_sha256": self.content_sha256(),
            "parts": [{"doc_id": doc_id, "chapter": chapter.to_dict()} for doc_id, chapter in self.parts],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "ChapterBundle":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        parts = [(part["doc_id"], Chapter.from_dict(part["chapter"])) for part in data["parts"]]
        return cls(data["chapter_key"], data["title"], parts)


def collect_chapter(documents: list[Document], chapter_key: str) -> ChapterBundle | None:
    parts = [(d.doc_id, c) for d in documents for c in d.chapters if c.chapter_key == chapter_key]
    if not parts:
        return None
    return ChapterBundle(chapter_key, parts[0][1].title, parts)
