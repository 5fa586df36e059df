"""From judged chapters to the dataset: cross-chapter dedup, the judge and groundedness thresholds,
and a leak-free train/eval split whose eval set is frozen by hash.

Leak-free means: eval questions come from held-out chunks (a row's first evidence chunk is the
passage it was asked about), no train row is asked about or answers from a held-out chunk (its
first chunk and its supporting spans), and no train question is a near duplicate of an eval
question by any dedup stage. The first split freezes the eval rows and the held-out chunks; later
runs reuse them unchanged (checked against their hash), so reruns compare like with like.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragtune.curate.dedup import DedupSettings, deduplicate, near_duplicate_pairs

FUNNEL = ("generated", "valid", "deduplicated", "judged", "kept")


@dataclass
class CurationSettings:
    min_judge_score: int = 7  # rows the judge scores lower are dropped
    # Scores of a judge marked weak (the embedded 135M model) stay on the rows but do not filter:
    # it scores almost everything alike. The groundedness threshold filters either way.
    trust_weak_judge: bool = False
    min_groundedness: float = 0.6  # rows whose deterministic groundedness is lower are dropped, whatever the judge said
    eval_fraction: float = 0.2  # share of the evidence chunks held out for eval questions
    seed: int = 0


@dataclass
class FrozenEval:
    held_out_chunks: list[str]
    rows: list[dict[str, Any]]
    sha256: str
    vectors: np.ndarray | None = None  # the rows' question embeddings, for the semantic leakage test

    @staticmethod
    def digest(rows: list[dict[str, Any]], held_out_chunks: list[str]) -> str:
        payload = [[r["qa_id"], r["question"], r["answer"]] for r in rows] + [sorted(held_out_chunks)]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()

    def manifest(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "rows": len(self.rows), "qa_ids": [r["qa_id"] for r in self.rows],
                "held_out_chunks": self.held_out_chunks}

    @classmethod
    def load(cls, manifest: dict[str, Any], rows: list[dict[str, Any]], vectors: np.ndarray | None = None) -> "FrozenEval":
        frozen = cls(manifest["held_out_chunks"], rows, manifest["sha256"], vectors)
        if cls.digest(rows, frozen.held_out_chunks) != frozen.sha256 or [r["qa_id"] for r in rows] != manifest["qa_ids"]:
            raise ValueError("the frozen eval set does not match its recorded sha256; it was edited. Restore it, "
                             "or set refreeze_eval to draw a new eval set (scores will no longer compare with earlier runs)")
        return frozen


@dataclass
class Curated:
    train: list[dict[str, Any]] = field(default_factory=list)
    eval: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)  # every row not kept, with its reason
    dedup_counts: list[dict[str, Any]] = field(default_factory=list)  # per chapter and stage
    funnel: list[dict[str, Any]] = field(default_factory=list)  # per chapter: generated .. kept
    frozen: FrozenEval | None = None
    newly_frozen: bool = False
    train_vectors: np.ndarray | None = None  # question embeddings of `train`, in order (eval's are frozen.vectors)


def priority(row: dict[str, Any]) -> tuple:
    """Best first, so that of two duplicates the better-judged, better-grounded one stays."""
    return (-(row.get("judge_score") or 0), -row.get("groundedness", 0.0), row["chapter_key"], row["qa_id"])


def chunk_bucket(chunk_id: str, seed: int) -> float:
    return int(hashlib.sha256(f"{seed}:{chunk_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def touched_chunks(row: dict[str, Any]) -> set[str]:
    """The chunks a row is about or answers from: its first evidence chunk and its supporting spans."""
    chunks = {span["chunk_id"] for span in row.get("supporting_spans") or []}
    if row.get("chunk_ids"):
        chunks.add(row["chunk_ids"][0])
    return chunks


def curate(
    judged: dict[str, list[dict[str, Any]]],
    vectors: dict[str, np.ndarray],
    chapter_counts: dict[str, dict[str, int]],
    settings: CurationSettings,
    dedup_settings: DedupSettings,
    frozen: FrozenEval | None = None,
) -> Curated:
    """judged: chapter key -> judged rows (each with judge_score and groundedness); vectors: the
    same rows' question embeddings; chapter_counts: chapter key -> {generated, valid} from the
    per-chapter filter. frozen: the eval set of an earlier run, reused as is."""
    rows = [row for key in sorted(judged) for row in judged[key]]
    row_vectors = {row["qa_id"]: vec for key in sorted(judged) for row, vec in zip(judged[key], vectors[key])}
    if frozen is not None and frozen.vectors is not None:
        row_vectors.update({row["qa_id"]: vec for row, vec in zip(frozen.rows, frozen.vectors)})
    eval_ids = {r["qa_id"] for r in frozen.rows} if frozen else set()
    rows = sorted((r for r in rows if r["qa_id"] not in eval_ids), key=priority)
    dim = next(iter(row_vectors.values())).shape[0] if row_vectors else 1
    matrix = np.stack([row_vectors[r["qa_id"]] for r in rows]) if rows else np.zeros((0, dim), np.float32)
    deduped = deduplicate(rows, matrix, dedup_settings)
    result = Curated(removed=[{**r, "removed_by": f"dedup:{r['dedup_stage']}"} for r in deduped.removed],
                     dedup_counts=deduped.counts_table())

    passing = []
    for row in deduped.kept:
        judge_counts = settings.trust_weak_judge or not row.get("judge_weak")
        if judge_counts and (row.get("judge_score") is None or row["judge_score"] < settings.min_judge_score):
            result.removed.append({**row, "removed_by": "judge"})
        elif row.get("groundedness", 0.0) < settings.min_groundedness:
            result.removed.append({**row, "removed_by": "groundedness"})
        else:
            passing.append(row)

    if frozen is None:
        frozen = _freeze(passing, settings)
        result.newly_frozen = True
    held_out = set(frozen.held_out_chunks)
    eval_vectors = np.stack([row_vectors.get(r["qa_id"], np.zeros(dim, np.float32)) for r in frozen.rows]) if frozen.rows else None
    frozen.vectors = eval_vectors
    result.frozen, result.eval = frozen, list(frozen.rows)
    candidates, eval_ids = [], {r["qa_id"] for r in frozen.rows}
    for row in passing:
        if row["qa_id"] in eval_ids:
            continue
        if touched_chunks(row) & held_out:
            result.removed.append({**row, "removed_by": "split:held_out_chunk"})
        else:
            candidates.append(row)
    train_vectors = np.stack([row_vectors[r["qa_id"]] for r in candidates]) if candidates else None
    leaks = {right for _, right, _ in near_duplicate_pairs(result.eval, candidates, dedup_settings, eval_vectors, train_vectors)}
    for row in candidates:
        if row["qa_id"] in leaks:
            result.removed.append({**row, "removed_by": "split:near_duplicate_of_eval"})
        else:
            result.train.append(row)
    result.train_vectors = np.stack([row_vectors[r["qa_id"]] for r in result.train]) if result.train else np.zeros((0, dim), np.float32)
    result.funnel = _funnel(judged, chapter_counts, deduped.kept, passing, result)
    return result


def _freeze(rows: list[dict[str, Any]], settings: CurationSettings) -> FrozenEval:
    """Hold out a share of the chunks that rows were asked about; their rows are the eval set.
    A small dataset still gets one held-out chunk, and never all of them."""
    seeds = sorted({r["chunk_ids"][0] for r in rows if r.get("chunk_ids")}, key=lambda c: (chunk_bucket(c, settings.seed), c))
    held = [c for c in seeds if chunk_bucket(c, settings.seed) < settings.eval_fraction]
    if len(seeds) >= 2 and not held:
        held = seeds[:1]
    if len(seeds) >= 2 and len(held) == len(seeds):
        held = held[:-1]
    held_set = set(held)
    eval_rows = sorted((r for r in rows if r.get("chunk_ids") and r["chunk_ids"][0] in held_set), key=lambda r: r["qa_id"])
    return FrozenEval(sorted(held), eval_rows, FrozenEval.digest(eval_rows, held))


def _funnel(judged, chapter_counts, deduplicated, passing, result: Curated) -> list[dict[str, Any]]:
    """Rows per chapter after each step. Frozen eval rows skip dedup and thresholds on later runs
    (they passed them when frozen), so they count as passing every step."""
    frozen = Counter(r["chapter_key"] for r in result.eval)
    dedup_kept = Counter(r["chapter_key"] for r in deduplicated)
    grounded_out = Counter(r["chapter_key"] for r in result.removed if r["removed_by"] == "groundedness")
    judge_pass = Counter(r["chapter_key"] for r in passing) + grounded_out
    if not result.newly_frozen:
        dedup_kept, judge_pass = dedup_kept + frozen, judge_pass + frozen
    final = Counter(r["chapter_key"] for r in result.train + result.eval)
    rows = []
    for key in sorted(set(judged) | set(chapter_counts) | set(final)):
        counts = chapter_counts.get(key, {})
        rows.append({
            "chapter_key": key,
            "generated": counts.get("generated", len(judged.get(key, []))),
            "valid": counts.get("valid", len(judged.get(key, []))),
            "deduplicated": dedup_kept[key],
            "judged": judge_pass[key],
            "kept": final[key],
        })
    return rows


def rows_per_chapter(train: list[dict], evaluation: list[dict]) -> list[dict[str, Any]]:
    """Train and eval rows per chapter: the paper's Table II."""
    train_counts = Counter(r["chapter_key"] for r in train)
    eval_counts = Counter(r["chapter_key"] for r in evaluation)
    return [
        {"chapter_key": key, "train": train_counts[key], "eval": eval_counts[key], "total": train_counts[key] + eval_counts[key]}
        for key in sorted(set(train_counts) | set(eval_counts))
    ]
