"""DPO preference pairs from judged comparisons, in the columns TRL's DPOTrainer reads (prompt,
chosen, rejected) with a dataset_info.json entry that points LLaMA-Factory at the same file.

A pair comes from the pairwise verdict when the two orders agree on a winner; otherwise from the
single grades when they differ by at least min_margin. Ties and close calls make no pair: a
preference the judge is unsure of teaches noise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ragtune.jsonl import write_jsonl


def dpo_pairs(rows: list[dict[str, Any]], models: list[str], min_margin: int) -> list[dict[str, Any]]:
    """rows as in the evaluation report: question, id, group, each model's {answer, score}, pairwise."""
    pairs = []
    for row in rows:
        outcome = row["pairwise"]["outcome"]
        if outcome in ("win", "loss"):
            chosen, rejected = ("tuned", "base") if outcome == "win" else ("base", "tuned")
            pairs.append(_pair(row, chosen, rejected, "pairwise both orders"))
            continue
        graded = [m for m in models if row[m]["score"] is not None and row[m]["answer"].strip()]
        if len(graded) < 2:
            continue
        best = max(graded, key=lambda m: row[m]["score"])
        worst = min(graded, key=lambda m: row[m]["score"])
        if row[best]["score"] - row[worst]["score"] >= min_margin:
            pairs.append(_pair(row, best, worst, f"single grades {row[best]['score']} vs {row[worst]['score']}"))
    return pairs


def _pair(row: dict[str, Any], chosen: str, rejected: str, reason: str) -> dict[str, Any]:
    return {
        "prompt": row["question"],
        "chosen": row[chosen]["answer"],
        "rejected": row[rejected]["answer"],
        "id": row["id"],
        "group": row["group"],
        "chosen_model": chosen,
        "rejected_model": rejected,
        "reason": reason,
    }


def write_dpo(pairs: list[dict[str, Any]], out_dir: Path, name: str) -> Path:
    """<name>.jsonl plus its LLaMA-Factory ranking entry in dataset_info.json (other entries kept)."""
    path = out_dir / f"{name}.jsonl"
    write_jsonl(path, pairs)
    info_path = out_dir / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    info[name] = {"file_name": path.name, "ranking": True, "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}}
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return path
