"""An OpenAI Batch API server on localhost for the batch backend's tests: /v1/files, /v1/batches and /v1/models
as OpenAI documents them (upload, create, retrieve, download output and error files), with every
request line answered by a real OpenAI-compatible upstream, llama.cpp's server on SmolLM2. OpenAI
itself cannot be reached from the test machine; this is the most real Batch API that can run here.

Knobs for the fault tests: `hold` keeps batches in_progress until set; `expire_after` answers only
that many lines and lets the rest expire, as a batch past its window does."""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from email.parser import BytesParser
from email.policy import HTTP


class BatchServer(http.server.ThreadingHTTPServer):
    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream.rstrip("/")
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.hold = threading.Event()
        self.hold.set()
        self.expire_after: int | None = None
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def new_file(self, name: str, content: bytes, purpose: str) -> dict:
        with self.lock:
            file_id = f"file-{next(self._ids)}"
            self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                                   "filename": name, "purpose": purpose, "status": "processed", "content": content}
        return self.files[file_id]

    def create_batch(self, spec: dict) -> dict:
        with self.lock:
            batch_id = f"batch_{next(self._ids)}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": spec["endpoint"], "input_file_id": spec["input_file_id"],
                "completion_window": spec["completion_window"], "status": "validating", "created_at": int(time.time()),
                "metadata": spec.get("metadata"), "errors": None, "output_file_id": None, "error_file_id": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
            }
        threading.Thread(target=self._run, args=(batch_id,), daemon=True).start()
        return self.batches[batch_id]

    def _upstream(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.upstream + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.loads(error.read() or b"{}")
            except ValueError:
                return error.code, {"error": {"message": str(error)}}

    def _validate(self, lines: list[dict], endpoint: str) -> list[dict]:
        models = {m["id"] for m in self._upstream("/models")[1]["data"]}
        errors, seen = [], set()
        for number, line in enumerate(lines, 1):
            if line.get("url") != endpoint or line.get("method") != "POST":
                errors.append({"code": "invalid_url", "line": number, "message": f"url must be {endpoint}"})
            elif line.get("custom_id") in seen:
                errors.append({"code": "duplicate_custom_id", "line": number, "message": "custom_id must be unique"})
            elif line["body"].get("model") not in models:
                errors.append({"code": "model_not_found", "line": number, "message": f"model {line['body'].get('model')!r} does not exist"})
            seen.add(line.get("custom_id"))
        return errors

    def _run(self, batch_id: str) -> None:
        batch = self.batches[batch_id]
        lines = [json.loads(raw) for raw in self.files[batch["input_file_id"]]["content"].decode().splitlines() if raw.strip()]
        batch["request_counts"]["total"] = len(lines)
        errors = self._validate(lines, batch["endpoint"])
        if errors:
            batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": errors})
            return
        batch.update(status="in_progress", in_progress_at=int(time.time()))
        self.hold.wait()
        outputs, failures = [], []
        for number, line in enumerate(lines):
            if self.expire_after is not None and number >= self.expire_after:
                failures.append({"id": f"req_{number}", "custom_id": line["custom_id"], "response": None,
                                 "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}})
                continue
            status, body = self._upstream("/chat/completions", line["body"])
            record = {"id": f"req_{number}", "custom_id": line["custom_id"],
                      "response": {"status_code": status, "request_id": f"rq{number}", "body": body}, "error": None}
            (outputs if status == 200 else failures).append(record)
            batch["request_counts"]["completed" if status == 200 else "failed"] += 1
        for records, field in ((outputs, "output_file_id"), (failures, "error_file_id")):
            if records:
                content = "".join(json.dumps(r) + "\n" for r in records).encode()
                batch[field] = self.new_file(f"{batch_id}_{field}.jsonl", content, "batch_output")["id"]
        expired = self.expire_after is not None and self.expire_after < len(lines)
        batch.update(status="expired" if expired else "completed", **{("expired_at" if expired else "completed_at"): int(time.time())})


class _Handler(http.server.BaseHTTPRequestHandler):
    server: BatchServer

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, payload: dict | bytes) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/files":
            form = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
            fields = {part.get_param("name", header="content-disposition"): part for part in form.iter_parts()}
            upload = fields["file"]
            created = self.server.new_file(upload.get_filename(), upload.get_payload(decode=True), fields["purpose"].get_content().strip())
            self._send(200, {k: v for k, v in created.items() if k != "content"})
        elif self.path == "/v1/batches":
            self._send(200, self.server.create_batch(json.loads(body)))
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if parts == ["v1", "models"]:  # the Batch API's host serves the model listing too
            self._send(*self.server._upstream("/models"))
        elif parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] in self.server.batches:
            self._send(200, self.server.batches[parts[2]])
        elif parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content" and parts[2] in self.server.files:
            self._send(200, self.server.files[parts[2]]["content"])
        else:
            self._send(404, {"error": {"message": f"no such object: {self.path}", "type": "invalid_request_error"}})
