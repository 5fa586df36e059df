"""Collections: many documents, one category each, from a folder layout or a mapping file.

A category replaces the outline's chapter keys: every chapter of a document in category
`anxiety` lands in partition `anxiety`, so several documents feed one category. In a mapping file
the category `outline` keeps a book's own chapters (a handbook beside a collection of leaflets).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ragtune.ingest.document import Document, slugify
from ragtune.ingest.pdf_parser import ParseError


def category_title(category: str) -> str:
    return " ".join(word.capitalize() for word in category.replace("_", "-").split("-"))


def category_of(relative_path: str | Path) -> str | None:
    """inbox-relative 'anxiety/gad.pdf' -> 'anxiety'; a file directly in the inbox has no category."""
    parts = Path(relative_path).parts
    return slugify(parts[0]) if len(parts) >= 2 else None


def folder_categories(files: list[Path], roots: list[Path]) -> dict[Path, str]:
    """inbox/<category>/file.pdf -> category; files directly in a root folder get no category."""
    categories: dict[Path, str] = {}
    for file in files:
        for root in roots:
            try:
                relative = file.resolve().relative_to(root.resolve())
            except ValueError:
                continue
            category = category_of(relative)
            if category:
                categories[file.resolve()] = category
            break
    return categories


KEEP_OUTLINE = "outline"  # a mapping file's category for a book whose outline's chapters are its categories


def mapping_categories(mapping_file: Path) -> dict[Path, str]:
    """A CSV/TSV with 'file' and 'category' columns; file paths are relative to the mapping file."""
    mapping_file = Path(mapping_file)
    if not mapping_file.exists():
        raise ParseError(mapping_file, "mapping file not found", "check the path in the parser config")
    with open(mapping_file, newline="", encoding="utf-8") as handle:
        dialect = csv.Sniffer().sniff(handle.read(4096), delimiters=",\t;")
        handle.seek(0)
        rows = list(csv.DictReader(handle, dialect=dialect))
    if not rows or not {"file", "category"} <= set(rows[0]):
        raise ParseError(mapping_file, "mapping file needs 'file' and 'category' columns", "add a header row: file<TAB>category")
    return {(mapping_file.parent / row["file"]).resolve(): slugify(row["category"]) for row in rows if row["file"] and row["category"]}


def assign_category(document: Document, category: str) -> Document:
    """Every chapter of the document goes to the category's partition, titled after the category."""
    title = category_title(category)
    for chapter in document.chapters:
        chapter.chapter_key = category
        chapter.title = title
    return document
