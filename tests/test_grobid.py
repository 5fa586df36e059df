"""The GROBID HTTP path (grobid-client-python) against a local server that speaks GROBID's API:
it checks the multipart upload like GROBID does and answers with real GROBID TEI bodies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ragtune.ingest.document import file_sha256
from ragtune.ingest.grobid import GrobidSettings, parse_pdf_with_grobid
from ragtune.ingest.pdf_parser import ParseError
from tests.conftest import ROOT, shared_path


class GrobidReplay(ThreadingHTTPServer):
    """scenarios: uploaded file name -> list of (status, TEI path or None), answered in order (last one repeats)."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scenarios: dict[str, list[tuple[int, object]]] = {}
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def _reply(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/api/isalive":
            self._reply(200, b"true")
        else:
            self._reply(404)

    def do_POST(self):
        if self.path != "/api/processFulltextDocument":
            return self._reply(404)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = BytesParser(policy=email_policy).parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
        )
        fields: dict[str, list] = {}
        filename, pdf = None, b""
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "input":
                filename, pdf = Path(part.get_filename()).name, part.get_payload(decode=True)
            else:
                fields.setdefault(name, []).append(part.get_content().strip())
        self.server.requests.append({"filename": filename, "pdf": pdf, "fields": fields})
        if not pdf.startswith(b"%PDF"):
            return self._reply(400, b"missing or invalid 'input' PDF")
        queue = self.server.scenarios[filename]
        status, tei = queue.pop(0) if len(queue) > 1 else queue[0]
        payload = tei.read_bytes() if tei else b"" if status != 500 else b"[GENERAL] An exception occurred"
        self._reply(status, payload if status == 200 or status == 500 else b"", "application/xml")


@pytest.fixture
def grobid():
    server = GrobidReplay()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _settings(server, **overrides) -> GrobidSettings:
    return GrobidSettings(url=server.url, busy_wait_s=0.05, **overrides)


def test_pdf_goes_through_grobid_and_comes_back_as_document(grobid):
    pdf = shared_path("grobid", "pairs", "acl-2020-specter.pdf")
    grobid.scenarios["acl-2020-specter.pdf"] = [(200, shared_path("grobid", "pairs", "acl-2020-specter.tei.xml"))]
    doc = parse_pdf_with_grobid(pdf, _settings(grobid))
    assert doc.title == "SPECTER: Document-level Representation Learning using Citation-informed Transformers"
    assert doc.parser == "grobid-tei" and doc.source_sha256 == file_sha256(pdf) and doc.source_path == str(pdf)
    (request,) = grobid.requests
    assert request["pdf"] == pdf.read_bytes()
    assert "head" in request["fields"]["teiCoordinates"] and "consolidateHeader" not in request["fields"]


def test_busy_server_is_retried_until_it_answers(grobid, tmp_path):
    pdf = shutil.copy(shared_path("grobid", "pairs", "jner-2016-fes-hand-opening.pdf"), tmp_path / "busy.pdf")
    tei = shared_path("grobid", "pairs", "jner-2016-fes-hand-opening.tei.xml")
    grobid.scenarios["busy.pdf"] = [(503, None), (503, None), (200, tei)]
    doc = parse_pdf_with_grobid(pdf, _settings(grobid))
    assert doc.page_count == 8 and len(grobid.requests) == 3


def test_busy_forever_ends_in_a_clear_error(grobid, tmp_path):
    pdf = shutil.copy(shared_path("grobid", "pairs", "jner-2016-fes-hand-opening.pdf"), tmp_path / "stuck.pdf")
    grobid.scenarios["stuck.pdf"] = [(503, None)]
    with pytest.raises(ParseError, match=r"busy \(HTTP 503\) after 2 retries"):
        parse_pdf_with_grobid(pdf, _settings(grobid, max_busy_retries=2))
    assert len(grobid.requests) == 3


def test_nothing_extracted_204_is_a_clear_error(grobid, tmp_path):
    pdf = shutil.copy(ROOT / "sample_handbook" / "handbook.pdf", tmp_path / "blank.pdf")
    grobid.scenarios["blank.pdf"] = [(204, None)]
    with pytest.raises(ParseError, match=r"blank\.pdf: GROBID extracted nothing from this PDF \(HTTP 204\)"):
        parse_pdf_with_grobid(pdf, _settings(grobid))


def test_server_error_500_names_the_status(grobid, tmp_path):
    pdf = shutil.copy(ROOT / "sample_handbook" / "handbook.pdf", tmp_path / "crash.pdf")
    grobid.scenarios["crash.pdf"] = [(500, None)]
    with pytest.raises(ParseError, match=r"GROBID failed with HTTP 500 \(\[GENERAL\] An exception occurred\)"):
        parse_pdf_with_grobid(pdf, _settings(grobid))


def test_unreachable_server_is_a_clear_error(tmp_path):
    server = GrobidReplay()
    url = server.url
    server.server_close()  # nothing listens there any more
    with pytest.raises(ParseError, match="is not reachable"):
        parse_pdf_with_grobid(ROOT / "sample_handbook" / "handbook.pdf", GrobidSettings(url=url))


def test_cli_parse_with_grobid(grobid):
    pdf = shared_path("grobid", "pairs", "arxiv-1912.10667-getis-ord-pooling.pdf")
    grobid.scenarios[pdf.name] = [(200, shared_path("grobid", "pairs", "arxiv-1912.10667-getis-ord-pooling.tei.xml"))]
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_assets.cli", "parse", str(pdf), "--parser", "grobid", "--grobid-url", grobid.url],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["title"].startswith("Generalizing Deep Models for Overhead Image Segmentation")
    assert data["page_count"] == 8 and data["parser"] == "grobid-tei"
