"""DPO preference pairs, in the columns TRL's DPOTrainer reads (prompt, chosen, rejected) with a
dataset_info.json entry that points LLaMA-Factory at the same file. Three sources:

- judged comparisons: a pair from the pairwise verdict when the two orders agree on a winner;
  otherwise from the single grades when they differ by at least min_margin. Ties and close calls
  make no pair: a preference the judge is unsure of teaches noise;
- expert review: an edit makes (edited = chosen, generated = rejected); a rejection makes a pair
  when another kept row asks the same question (its answer chosen); decisions whose evidence
  changed make none;
- the reference over the model's own answer (as in SPIN): a kept train row's grounded answer is
  chosen over what the SFT model answers to its question.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ragtune.curate.leakage import HeldOutText
from ragtune.jsonl import write_jsonl
from ragtune.review.decisions import is_stale
from ragtune.tasks import task_style


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
    return preference(row["question"], row[chosen]["answer"], row[rejected]["answer"], row["id"], row["id"], row["group"], "judged",
                      chosen, rejected, reason)


def preference(prompt: str, chosen: str, rejected: str, pair_id: str, qa_id: str, group: str, source: str, chosen_model: str,
               rejected_model: str, reason: str) -> dict[str, Any]:
    """One pair; qa_id names the row (or evaluation question) it was made from."""
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "id": pair_id, "qa_id": qa_id, "group": group, "source": source,
            "chosen_model": chosen_model, "rejected_model": rejected_model, "reason": reason}


def _normal(text: str) -> str:
    """Text compared without case or spacing: the same answer, the same question."""
    return " ".join(text.casefold().split())


def review_pairs(decisions: list[dict[str, Any]], rows: dict[str, dict[str, Any]], kept: list[dict[str, Any]],
                 excluded_tasks: Iterable[str] = ()) -> tuple[list[dict], dict[str, int]]:
    """Pairs from the reviewers' edits and rejections. rows: qa id -> the generated row as judged
    now (a decision whose row is gone or whose evidence changed makes no pair); kept: the rows a
    rejection may take its chosen answer from. Dialogues make none (their edit is one turn of many),
    nor rows of a style the dataset leaves out (instruction_dataset's exclude_tasks)."""
    by_question: dict[str, dict[str, Any]] = {}
    for row in kept:
        by_question.setdefault(_normal(row["question"]), row)
    pairs, skipped = [], {"stale_or_regenerated": 0, "dialogue": 0, "rejected_without_kept_answer": 0, "task_excluded": 0}
    excluded = set(excluded_tasks)
    for decision in decisions:
        row = rows.get(decision["qa_id"])
        if decision["decision"] == "accept":
            continue
        if row is None or is_stale(decision, row):
            skipped["stale_or_regenerated"] += 1
        elif task_style(row.get("task")).name in excluded:
            skipped["task_excluded"] += 1
        elif row.get("turns"):
            skipped["dialogue"] += 1
        elif decision["decision"] == "edit":
            if _normal(decision["answer"]) != _normal(row["answer"]):
                pairs.append(preference(decision["question"], decision["answer"], row["answer"], f"{row['qa_id']}:edit", row["qa_id"], row["chapter_key"],
                                        "review_edit", "reviewer", "generator", decision["reason"] or "edited by a reviewer"))
        else:
            other = by_question.get(_normal(row["question"]))
            if other is None or other["qa_id"] == row["qa_id"]:
                skipped["rejected_without_kept_answer"] += 1
            else:
                pairs.append(preference(row["question"], other["answer"], row["answer"], f"{row['qa_id']}:reject", row["qa_id"], row["chapter_key"],
                                        "review_reject", "kept row", "generator", decision["reason"] or "rejected by a reviewer"))
    return pairs, skipped


def reference_pairs(rows: list[dict[str, Any]], answers: list[str]) -> list[dict[str, Any]]:
    """The kept row's grounded answer over the SFT model's own answer to the same question; none
    where the model already says the same."""
    return [preference(row["question"], row["answer"], answer, f"{row['qa_id']}:reference", row["qa_id"], row["chapter_key"], "reference",
                       "reference", "sft", "the curated, evidence-grounded answer over the SFT model's own")
            for row, answer in zip(rows, answers) if answer.strip() and _normal(answer) != _normal(row["answer"])]


def train_side(pairs: list[dict[str, Any]], held_out: HeldOutText, held_ids: set[str]) -> tuple[list[dict[str, Any]], int]:
    """(pairs, dropped): whatever its source, a pair is dropped when its row is held out (held_ids) or any
    of its texts shares a 13-word window with validation or test text, so evaluating on them stays honest."""
    kept = [p for p in pairs if p["qa_id"] not in held_ids
            and not any(held_out.sources(p[field]) for field in ("prompt", "chosen", "rejected"))]
    return kept, len(pairs) - len(kept)


def write_dpo(pairs: list[dict[str, Any]], out_dir: Path, name: str) -> Path:
    """<name>.jsonl and a dataset_info.json that offers LLaMA-Factory that file alone as a ranking
    dataset: written afresh, so an entry an older version left there (its evaluation pairs on test
    questions) is offered to no trainer again."""
    path = out_dir / f"{name}.jsonl"
    write_jsonl(path, pairs)
    Path(out_dir, "dataset_info.json").write_text(json.dumps({name: {
        "file_name": path.name, "ranking": True, "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}}}, indent=2),
        encoding="utf-8")
    return path
