"""The OpenAI Batch API as a backend: a partition's requests go up as one JSONL file, the provider
runs them within its 24-hour window (at about half the online price, outside the online rate
limits), and the answers come back as one output file plus an error file.

Batches outlive the process that submitted them, so every batch is journaled under `journal_dir`
the moment it is created: a run that is killed, or that stops waiting after `max_wait_s`, picks
its batches up again on the rerun instead of submitting (and paying for) them twice. Answers are
the same model's as the online API, so the backend shares the online backend's model_id and cache.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ragtune.llm.backends.openai_compatible import JSON_MODES, ServedModelIdentity, chat_arguments, chat_result
from ragtune.llm.client import ChatRequest, ChatResult, OnResult, public_url
from ragtune.stopping import pause

ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_REQUESTS_PER_BATCH = 50_000  # OpenAI's limits per batch file: 50,000 requests and 200 MB
MAX_BATCH_BYTES = 190 * 1024 * 1024


class BatchPending(TimeoutError):
    """The batch is still running at the provider; the journal keeps it for the rerun. A
    TimeoutError, so ledgers mark the request `unavailable` and the asset fails clearly."""


class BatchFailed(RuntimeError):
    """The provider rejected the batch as a whole (validation: unknown model, malformed line...)."""


class BatchRequestFailed(RuntimeError):
    """One request of a finished batch failed, expired or was cancelled; the others stand."""


def custom_id(body: dict[str, Any]) -> str:
    """A request's id inside a batch: a digest of its body, so a rerun recognises its requests."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:48]


def batch_line(key: str, body: dict[str, Any]) -> bytes:
    """One line of a JSONL input file: a chat-completions request keyed by its custom_id."""
    return (json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False) + "\n").encode("utf-8")


def batch_files(bodies: dict[str, dict[str, Any]], max_requests: int, max_bytes: int) -> Iterator[tuple[list[str], bytes]]:
    """The input files for a set of requests, each within the provider's request and size limits."""
    keys: list[str] = []
    lines: list[bytes] = []
    size = 0
    for key, body in bodies.items():
        line = batch_line(key, body)
        if keys and (len(keys) == max_requests or size + len(line) > max_bytes):
            yield keys, b"".join(lines)
            keys, lines, size = [], [], 0
        keys.append(key)
        lines.append(line)
        size += len(line)
    if keys:
        yield keys, b"".join(lines)


def parse_output_line(line: dict[str, Any]) -> ChatResult | Exception:
    """One line of an output or error file: the completion, or why this request has none."""
    response = line.get("response") or {}
    body = response.get("body") or {}
    if line.get("error"):
        error = line["error"]
        return BatchRequestFailed(f"{error.get('code', 'error')}: {error.get('message', '')}")
    if response.get("status_code") != 200:
        detail = body.get("error", body)
        message = detail.get("message", json.dumps(detail)) if isinstance(detail, dict) else str(detail)
        return BatchRequestFailed(f"HTTP {response.get('status_code')}: {message}")
    try:
        return chat_result(body)
    except (KeyError, IndexError, TypeError, AttributeError):
        return BatchRequestFailed(f"no completion in the batch output: {json.dumps(body)[:200]}")


@dataclass
class BatchJournal:
    """Batches submitted and not yet collected: one JSON file per batch id with its custom_ids."""

    root: Path

    def entries(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for path in sorted(self.root.glob("*.json")) if self.root.exists() else []:
            try:
                found[path.stem] = set(json.loads(path.read_text(encoding="utf-8"))["custom_ids"])
            except (OSError, ValueError, KeyError):
                continue  # a torn entry: its batch is resubmitted, never half-trusted
        return found

    def add(self, batch_id: str, ids: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{batch_id}.tmp"
        tmp.write_text(json.dumps({"batch_id": batch_id, "custom_ids": ids, "submitted_at": time.time()}), encoding="utf-8")
        tmp.replace(self.root / f"{batch_id}.json")

    def remove(self, batch_id: str) -> None:
        (self.root / f"{batch_id}.json").unlink(missing_ok=True)


class OpenAIBatchBackend(ServedModelIdentity):
    """Requests to `base_url` through the Batch API (OpenAI, or any server implementing /files and
    /batches). json_mode as for the online backend. The API key comes from the resource's EnvVar."""

    def __init__(
        self,
        base_url: str,
        model: str,
        journal_dir: Path,
        api_key: str | None = None,
        json_mode: str = "json_schema",
        poll_interval_s: float = 30.0,
        max_wait_s: float = 26 * 3600.0,
        max_requests_per_batch: int = MAX_REQUESTS_PER_BATCH,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        timeout_s: float = 120.0,
        max_retries: int = 4,
    ):
        if json_mode not in JSON_MODES:
            raise ValueError(f"json_mode must be one of {', '.join(JSON_MODES)}, not {json_mode!r}")
        if not 1 <= max_requests_per_batch <= MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"max_requests_per_batch must be between 1 and {MAX_REQUESTS_PER_BATCH}")
        self.base_url, self.model, self.json_mode = base_url, model, json_mode
        self.journal = BatchJournal(Path(journal_dir))
        self.poll_interval_s, self.max_wait_s = poll_interval_s, max_wait_s
        self.max_requests_per_batch, self.max_batch_bytes = max_requests_per_batch, max_batch_bytes
        self.timeout_s, self.max_retries = timeout_s, max_retries
        self._api_key = api_key or "not-needed"
        self.model_id = f"openai:{model}@{public_url(base_url)}"  # the online backend's: the same model's answers, one cache
        self.submitted: list[str] = []  # batch ids this instance created (the rest were picked up from the journal)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBatchBackend({self.model_id}, json_mode={self.json_mode})"

    def _client(self) -> Any:
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.timeout_s, max_retries=self.max_retries)

    def _submit(self, client: Any, keys: list[str], content: bytes) -> str:
        upload = client.files.create(file=("ragtune-batch.jsonl", content, "application/jsonl"), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h", metadata={"source": "ragtune", "model": self.model}
        )
        self.journal.add(batch.id, keys)
        self.submitted.append(batch.id)
        return batch.id

    def _collect(self, client: Any, batch: Any, wanted: set[str]) -> dict[str, ChatResult | Exception]:
        """The outcome of every wanted request in a finished batch."""
        outcomes: dict[str, ChatResult | Exception] = {}
        if batch.status == "failed":
            reasons = "; ".join(f"{e.code}: {e.message}" for e in (batch.errors.data if batch.errors and batch.errors.data else []))
            failure = BatchFailed(f"batch {batch.id} failed validation: {reasons or 'no reason given'}")
            return {key: failure for key in wanted}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for raw in client.files.content(file_id).text.splitlines():
                if raw.strip():
                    line = json.loads(raw)
                    if line.get("custom_id") in wanted:
                        outcomes[line["custom_id"]] = parse_output_line(line)
        for key in wanted - set(outcomes):
            outcomes[key] = BatchRequestFailed(f"batch {batch.id} ended {batch.status} without an answer for this request")
        return outcomes

    def chat_many(self, requests: list[ChatRequest], on_result: OnResult) -> None:
        bodies = [chat_arguments(self.model, self.json_mode, r) for r in requests]
        ids = [custom_id(b) for b in bodies]
        positions: dict[str, list[int]] = {}
        for index, key in enumerate(ids):
            positions.setdefault(key, []).append(index)

        def deliver(key: str, outcome: ChatResult | Exception) -> None:
            for index in positions.pop(key, []):
                on_result(index, outcome)

        client = self._client()
        waiting: dict[str, set[str]] = {}  # batch id -> the requests of this call it answers
        claimed: set[str] = set()
        for batch_id, journaled in self.journal.entries().items():  # batches a killed run left running
            mine = (journaled & positions.keys()) - claimed
            if mine:
                waiting[batch_id], claimed = mine, claimed | mine
        fresh = {key: bodies[at[0]] for key, at in positions.items() if key not in claimed}
        for keys, content in batch_files(fresh, self.max_requests_per_batch, self.max_batch_bytes):
            try:
                waiting[self._submit(client, keys, content)] = set(keys)
            except Exception as error:  # the upload or the create call failed: these requests record it
                for key in keys:
                    deliver(key, error)

        deadline = time.monotonic() + self.max_wait_s
        while waiting:
            for batch_id in list(waiting):
                try:
                    batch = client.batches.retrieve(batch_id)
                except Exception as error:
                    if type(error).__name__ == "NotFoundError":  # the provider forgot it: resubmitted next run
                        self.journal.remove(batch_id)
                    for key in waiting.pop(batch_id):
                        deliver(key, error)
                    continue
                if batch.status in TERMINAL:
                    for key, outcome in self._collect(client, batch, waiting.pop(batch_id)).items():
                        deliver(key, outcome)
                    self.journal.remove(batch_id)
            if waiting and time.monotonic() >= deadline:
                for batch_id, keys_left in waiting.items():
                    pending = BatchPending(f"batch {batch_id} still running after {self.max_wait_s:.0f}s; rerun to collect it (journaled in {self.journal.root})")
                    for key in keys_left:
                        deliver(key, pending)
                return
            if waiting:
                pause(self.poll_interval_s)  # a stop ends the wait; the journal collects the batch on the rerun
