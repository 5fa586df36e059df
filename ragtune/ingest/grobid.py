"""PDF -> GROBID fulltext TEI over HTTP (grobid-client-python), then TEI -> document JSON.

The client retries a busy server (503) forever; here the retries are bounded so a stuck
server ends in a clear per-document error instead of a hung run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.ingest.document import Document, file_sha256
from ragtune.ingest.pdf_parser import ParseError
from ragtune.ingest.tei_parser import parse_tei_bytes


def default_grobid_url() -> str:
    """GROBID_URL, else GROBID's own default port on this machine (docker/ starts one there)."""
    return os.environ.get("GROBID_URL", "http://localhost:8070")


@dataclass
class GrobidSettings:
    url: str = field(default_factory=default_grobid_url)
    timeout_s: int = 180
    busy_wait_s: float = 5.0  # GROBID's docs suggest 5-10 s after a 503
    max_busy_retries: int = 5
    tei_coordinates: bool = True  # pages for every block
    consolidate_header: bool = False  # consolidation calls outside services (CrossRef)


def _client(settings: GrobidSettings):
    from grobid_client.grobid_client import GrobidClient

    class BoundedRetryClient(GrobidClient):
        busy_retries = 0

        def _handle_server_busy_retry(self, file_path: str, retry_func: Any, *args: Any, **kwargs: Any) -> Any:
            if self.busy_retries >= settings.max_busy_retries:
                return (file_path, 503, f"server still busy after {settings.max_busy_retries} retries")
            self.busy_retries += 1
            return super()._handle_server_busy_retry(file_path, retry_func, *args, **kwargs)

    return BoundedRetryClient(
        grobid_server=settings.url, sleep_time=settings.busy_wait_s, timeout=settings.timeout_s, check_server=False
    )


def grobid_tei(path: Path | str, settings: GrobidSettings) -> str:
    """The fulltext TEI GROBID returns for one PDF; any failure is a ParseError naming the file."""
    from grobid_client.grobid_client import ServerUnavailableException

    path = Path(path)
    client = _client(settings)
    try:
        alive, status = client.ping()
    except ServerUnavailableException as error:
        raise ParseError(path, f"GROBID server {settings.url} is not reachable", "start it (see docker/) or set the GROBID url") from error
    if not alive:
        raise ParseError(path, f"GROBID server {settings.url} is not alive (HTTP {status})", "check the GROBID server")
    _, status, text = client.process_pdf(
        "processFulltextDocument",
        str(path),
        consolidate_header=settings.consolidate_header,
        tei_coordinates=settings.tei_coordinates,
    )
    if status == 204:
        raise ParseError(path, "GROBID extracted nothing from this PDF (HTTP 204)", "check that it has a text layer (OCR it first) or use the embedded parser")
    if status == 503:
        raise ParseError(path, f"GROBID server busy (HTTP 503) after {client.busy_retries} retries", "retry later or add GROBID workers")
    if status != 200 or not text:
        detail = " ".join((text or "").split())[:200]
        raise ParseError(path, f"GROBID failed with HTTP {status} ({detail})", "check the GROBID server log")
    return text


def parse_pdf_with_grobid(path: Path | str, settings: GrobidSettings) -> Document:
    path = Path(path)
    tei = grobid_tei(path, settings)
    return parse_tei_bytes(tei.encode("utf-8"), source_path=str(path), doc_name=path.stem, source_sha256=file_sha256(path))
