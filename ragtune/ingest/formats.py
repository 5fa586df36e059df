"""Which parser a file needs: by its content first (a DOCX saved as .pdf is still a DOCX), by its
extension second (Markdown, plain text and bare HTML fragments carry no signature), and a
clear per-file error when it is none of the formats ragtune reads.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ragtune.ingest.pdf_parser import ParseError

BY_SUFFIX = {
    ".pdf": "pdf", ".xml": "tei", ".md": "markdown", ".markdown": "markdown", ".txt": "text",
    ".docx": "docx", ".pptx": "pptx", ".epub": "epub", ".html": "html", ".htm": "html", ".xhtml": "html",
}  # fmt: skip
SUPPORTED_SUFFIXES = (".tei.xml", *(s for s in BY_SUFFIX if s != ".xml"))
CONTAINERS = ("pdf", "docx", "pptx", "epub")  # binary formats: a name that promises one must hold one
SUPPORTED = "a PDF, DOCX, PPTX, EPUB, HTML, GROBID TEI XML, Markdown or UTF-8 text file"


def sniff_format(path: Path) -> str | None:
    """The format the bytes show, or None when they carry no signature (text-like files)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(path)
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n").lower()
    if "<tei" in text:
        return "tei"
    if text.startswith("<!doctype html") or "<html" in text[:1024]:
        return "html"
    return None


def _zip_format(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype").decode("ascii", errors="ignore").strip() if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if mimetype == "application/epub+zip" or "META-INF/container.xml" in names:
        return "epub"
    return None


def file_format(path: Path) -> str:
    """One of pdf, tei, markdown, text, docx, pptx, epub, html; raises ParseError otherwise."""
    suffix = path.suffix.lower()
    by_name = BY_SUFFIX.get(suffix)
    by_content = sniff_format(path)
    if by_content:
        return by_content
    if by_name in CONTAINERS:
        raise ParseError(path, f"named {suffix} but its content is not a {by_name.upper()} (damaged, truncated or renamed)",
                         f"re-export it from the program that made it, or give {SUPPORTED}")
    if by_name:
        return by_name
    if _is_utf8_text(path):
        return "text"
    raise ParseError(path, f"unsupported file type ('{suffix or 'no extension'}', content not recognised)", f"give {SUPPORTED}")


def _is_utf8_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start > len(head) - 4  # a multi-byte character cut by the read
    return bool(head.strip()) and b"\x00" not in head
