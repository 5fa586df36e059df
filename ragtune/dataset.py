"""Merge filtered chapters into an alpaca-format instruction dataset with a train/eval split.

The split is by evidence, not by row: all pairs whose first retrieved chunk is the same land on
the same side, so an eval question is not answered from a passage the model trained on verbatim.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from ragtune.qa_filter import normalize_question


def to_alpaca(row: dict[str, Any]) -> dict[str, Any]:
    """instruction/input/output plus provenance columns that trace the row to its source."""
    return {
        "instruction": row["question"],
        "input": "",
        "output": row["answer"],
        "id": row["qa_id"],
        "chapter_key": row["chapter_key"],
        "doc_ids": sorted({e["doc_id"] for e in row["evidence"]}),
        "chunk_ids": row["chunk_ids"],
        "section_paths": [" > ".join(e["section_path"]) for e in row["evidence"]],
        "pages": sorted({p for e in row["evidence"] for p in e["pages"]}),
    }


def _bucket(key: str, seed: int) -> float:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def merge_and_split(
    chapters: dict[str, list[dict[str, Any]]], eval_fraction: float, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(train rows, eval rows, cross-chapter exact duplicates removed), in alpaca form."""
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    duplicates = 0
    for chapter_key in sorted(chapters):
        for row in chapters[chapter_key]:
            key = normalize_question(row["question"])
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            rows.append(row)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["chunk_ids"][0] if row["chunk_ids"] else row["qa_id"], []).append(to_alpaca(row))
    ranked = sorted(groups, key=lambda g: _bucket(g, seed))
    eval_groups = [g for g in ranked if _bucket(g, seed) < eval_fraction]
    if len(groups) >= 2 and not eval_groups:
        eval_groups = ranked[:1]  # a tiny dataset still gets one held-out group
    if len(groups) >= 2 and len(eval_groups) == len(groups):
        eval_groups = eval_groups[:-1]
    train = [r for g in ranked if g not in eval_groups for r in groups[g]]
    evaluation = [r for g in eval_groups for r in groups[g]]
    if len(groups) == 1 and len(train) >= 2:
        evaluation.append(train.pop())  # one evidence chunk only: a leak-free split is impossible
    return train, evaluation, duplicates


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
