"""Watch an inbox folder cheaply: size and mtime first, a content hash only when those moved.

A file whose bytes are unchanged (copied again, touched) is not new; a deleted file is
reported. The state is a plain dict so a sensor can keep it in its cursor across restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ragtune.ingest.collection import category_of
from ragtune.ingest.document import file_sha256
from ragtune.ingest.sources import is_candidate


@dataclass
class FileState:
    size: int
    mtime_ns: int
    sha256: str


@dataclass
class InboxScan:
    state: dict[str, FileState] = field(default_factory=dict)  # path relative to the inbox -> state
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)  # mtime moved, bytes did not
    outside: list[str] = field(default_factory=list)  # links that point out of the inbox: ignored

    @property
    def has_changes(self) -> bool:
        return bool(self.new or self.changed or self.deleted)

    @property
    def affected_categories(self) -> list[str]:
        return sorted({c for p in self.new + self.changed + self.deleted if (c := category_of(p))})

    def cursor_state(self) -> dict[str, dict]:
        return {path: asdict(state) for path, state in self.state.items()}


def scan_inbox(inbox: Path, previous: dict[str, dict]) -> InboxScan:
    inbox = Path(inbox)
    scan = InboxScan()
    root = inbox.resolve()
    files = sorted(p for p in inbox.rglob("*") if is_candidate(p)) if inbox.exists() else []
    for path in files:
        relative = path.relative_to(inbox).as_posix()
        if not path.resolve().is_relative_to(root):
            scan.outside.append(relative)
            continue
        stat = path.stat()
        old = previous.get(relative)
        if old and old["size"] == stat.st_size and old["mtime_ns"] == stat.st_mtime_ns:
            scan.state[relative] = FileState(**old)
            continue
        sha = file_sha256(path)
        scan.state[relative] = FileState(stat.st_size, stat.st_mtime_ns, sha)
        if old is None:
            scan.new.append(relative)
        elif old["sha256"] != sha:
            scan.changed.append(relative)
        else:
            scan.touched.append(relative)
    scan.deleted = sorted(set(previous) - set(scan.state) - set(scan.outside))
    return scan
