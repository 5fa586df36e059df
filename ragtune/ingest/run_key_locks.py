"""At-most-once locks on a shared folder, for sensor run keys.

Dagster skips a run key it has already launched, but two ticks of the same sensor evaluated at
the same moment (two daemons on one instance, a tick retried while the first still runs) both see
no such run and both launch it. Each tick first claims the run key by creating a file with
O_CREAT|O_EXCL, which exactly one process wins; the loser skips. A claim whose run never appeared
(its tick died between claiming and submitting) goes stale: one later caller, holding a lock on the
claim file, refreshes it and wins it again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path
from typing import Callable


def lock_run_key(folder: Path, key: str, stale_after_s: float, launched: Callable[[str], bool]) -> bool:
    """True for exactly one caller per key; True again (for one caller) once the claim is older than
    stale_after_s and launched(key) says its run never started."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / hashlib.sha256(key.encode()).hexdigest()
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        with open(path) as existing:
            try:
                fcntl.flock(existing, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another caller is reclaiming it right now
            if time.time() - os.fstat(existing.fileno()).st_mtime < stale_after_s or launched(key):
                return False
            os.utime(path)  # fresh again: callers after us see a live claim
            return True
    with os.fdopen(handle, "w") as claimed:
        claimed.write(key)
    return True
