"""DOCX, PPTX, EPUB and HTML -> the same document JSON as every other parser, through Microsoft's
markitdown (mammoth for DOCX, python-pptx for slides, the EPUB spine in reading order, BeautifulSoup
for HTML). It writes Markdown: headings become chapters and sections, numbered and bulleted lists
list items with their labels, tables pipe tables and so rows of cells, as for a Markdown file.
These formats have no fixed pages, so blocks carry page 0.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ragtune.ingest.document import Document
from ragtune.ingest.pdf_parser import ParseError
from ragtune.ingest.text_parser import markdown_document

NAMES = {"docx": "Word document", "pptx": "PowerPoint file", "epub": "EPUB book", "html": "HTML page"}
REMEDY = {
    "docx": "open it in Word or LibreOffice and save it again as .docx, or export it to PDF",
    "pptx": "open it in PowerPoint or LibreOffice and save it again as .pptx, or export it to PDF",
    "epub": "check the book opens in an e-reader, or convert it again (e.g. with Calibre)",
    "html": "save the page again as UTF-8 HTML",
}
# markitdown writes these for slides and e-books; they are navigation, not content.
NOISE = re.compile(r"^\s*(?:<!--.*?-->|\*\*(?:Title|Authors?|Language|Publisher|Date|Identifier|Description):\*\*.*|### Notes:)\s*$")


def parse_office(path: Path, kind: str) -> Document:
    from markitdown import MarkItDown

    logging.getLogger("markitdown").setLevel(logging.ERROR)
    try:
        result = MarkItDown(enable_plugins=False).convert_local(str(path), file_extension=f".{kind}")
    except Exception as error:  # markitdown wraps each converter's own exception types
        cause = error.__cause__ or error
        raise ParseError(path, f"not a readable {NAMES[kind]} ({type(cause).__name__}: {str(cause)[:200]})", REMEDY[kind]) from error
    lines = [line for line in (result.markdown or "").splitlines() if not NOISE.match(line)]
    try:
        return markdown_document(path, lines, f"markitdown-{kind}")
    except ParseError as error:  # nothing but images, empty cells or navigation
        raise ParseError(path, f"the {NAMES[kind]} holds no text", "check it is not empty or made only of images (put scans in a PDF: ragtune OCRs those)") from error
