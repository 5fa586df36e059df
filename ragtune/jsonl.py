"""JSONL reading and writing, and the rows-per-chapter count (the paper's Table II)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def rows_per_chapter(train: list[dict], evaluation: list[dict]) -> list[dict[str, Any]]:
    train_counts = Counter(r["chapter_key"] for r in train)
    eval_counts = Counter(r["chapter_key"] for r in evaluation)
    return [
        {"chapter_key": key, "train": train_counts[key], "eval": eval_counts[key], "total": train_counts[key] + eval_counts[key]}
        for key in sorted(set(train_counts) | set(eval_counts))
    ]
