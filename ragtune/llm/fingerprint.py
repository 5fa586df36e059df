"""Content fingerprints for model identity: the cache keys every call by its model id, so the id
must change when the weights do (a replaced GGUF under the same name, a retrained adapter in the
same folder), or stale answers would be served. A file's sha256 is remembered by path, size and
mtime, in memory and in ~/.cache/ragtune/file_sha256.json, so a multi-GB GGUF is hashed once."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

SHORT = 12  # hex digits of a fingerprint in a model id


def _store() -> Path:
    """Read when a file is hashed, not at import, so RAGTUNE_FINGERPRINT_STORE set later still counts."""
    return Path(os.environ.get("RAGTUNE_FINGERPRINT_STORE", Path.home() / ".cache" / "ragtune" / "file_sha256.json"))


def _stat_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


@lru_cache(maxsize=256)
def _hash(stat_key: str, path: str) -> str:
    store = _store()
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if stat_key in known:
        return known[stat_key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    known[stat_key] = digest.hexdigest()
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        temporary = store.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(known), encoding="utf-8")
        temporary.replace(store)
    except OSError:
        pass  # a read-only home: the hash is still right, only not remembered across processes
    return known[stat_key]


def file_sha256(path: str | Path) -> str:
    path = Path(path)
    return _hash(_stat_key(path), str(path))


def folder_sha256(folder: str | Path) -> str:
    """One digest over every file of a folder (an adapter: its weights and config), by relative name."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def weights_id(path: str | Path) -> str:
    """The short fingerprint of a model file or folder, for a model id."""
    path = Path(path)
    return (folder_sha256(path) if path.is_dir() else file_sha256(path))[:SHORT]


def llamacpp_model_id(path: str | Path) -> str:
    """How a GGUF run through llama.cpp is named in cache keys and reports: file name and weights fingerprint."""
    return f"llamacpp:{Path(path).name}#{weights_id(path)}"
