"""Expert review decisions and what curation does with them.

A decision is keyed by the row's content id (qa_id: a hash of chapter, question and answer), so a
regeneration that writes the same pair meets its decision again and one that writes another pair
cannot take it over. Each decision records the evidence the reviewer saw (evidence_sha256); when
the row's evidence has changed since, the decision is stale: the row is pushed for re-review, a
rejection still keeps it out (a clinician said no), an acceptance or edit no longer protects it.

Curation applies current decisions before dedup: rejected rows are removed ("review:rejected"),
edited rows carry the reviewer's text (expert_edited, the generated text kept beside it), and
accepted or edited rows are protected from the judge and groundedness thresholds. The gate's own
verdict on each reviewed row is kept, so the card can say how often gate and reviewers agree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from ragtune.chat import last_clinician_turn

DECISIONS = ("accept", "edit", "reject")
KEEPS = ("accept", "edit")  # decisions that protect a row from the thresholds


def evidence_sha256(row: dict[str, Any]) -> str:
    """What the reviewer judged the pair against: its evidence passages, by id and text."""
    payload = [[e["chunk_id"], e["text"]] for e in row.get("evidence") or []]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def is_stale(decision: dict[str, Any], row: dict[str, Any]) -> bool:
    return decision["evidence_sha256"] != evidence_sha256(row)


@dataclass
class ReviewSettings:
    # all: every judged row; sample: sample_per_chapter rows of each chapter (the same rows on every
    # push); near_threshold: rows whose groundedness (or, from a trusted judge, score) sits near the
    # dataset's thresholds, where the gate is least sure.
    select: Literal["all", "sample", "near_threshold"] = "sample"
    sample_per_chapter: int = 20
    groundedness_margin: float = 0.15  # near_threshold: |groundedness - min_groundedness| at most this
    judge_margin: int = 1  # near_threshold: |judge score - min_judge_score| at most this (a trusted judge only)
    seed: int = 0


def _draw(qa_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{qa_id}".encode()).hexdigest()


def select_for_review(rows: list[dict[str, Any]], settings: ReviewSettings, thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one chapter to show reviewers. thresholds: min_groundedness, min_judge_score and
    trust_weak_judge, as the dataset was last curated with."""
    if settings.select == "all":
        return list(rows)
    if settings.select == "sample":
        return sorted(rows, key=lambda r: _draw(r["qa_id"], settings.seed))[: settings.sample_per_chapter]

    def near(row: dict[str, Any]) -> bool:
        if abs(row.get("groundedness", 0.0) - thresholds["min_groundedness"]) <= settings.groundedness_margin:
            return True
        judged = row.get("judge_score") is not None and (thresholds.get("trust_weak_judge") or not row.get("judge_weak"))
        return bool(judged and abs(row["judge_score"] - thresholds["min_judge_score"]) <= settings.judge_margin)

    return [r for r in rows if near(r)]


def to_push(rows: list[dict[str, Any]], selected: list[dict[str, Any]], pushed: dict[str, dict], decisions: dict[str, dict]
            ) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(row, earlier decision) pairs to send: selected rows not yet sent with their current evidence,
    and every row whose decision went stale (whatever the selection), with that decision."""
    chosen = {r["qa_id"] for r in selected}
    out = []
    for row in rows:
        decision = decisions.get(row["qa_id"])
        stale = decision is not None and is_stale(decision, row)
        sent = pushed.get(row["qa_id"])
        if sent and sent["evidence_sha256"] == evidence_sha256(row):
            continue
        if stale or (row["qa_id"] in chosen and decision is None):
            out.append((row, decision if stale else None))
    return out


class AnnotationProblem(ValueError):
    """An annotation that carries no usable decision; the message says what the reviewer must fix."""


def decision_from_annotation(task: dict[str, Any], annotation: dict[str, Any]) -> dict[str, Any]:
    """A decision from one Label Studio annotation of a pushed task (the labelling config's
    from_names: decision, question, answer, reason)."""
    values = {r["from_name"]: r.get("value", {}) for r in annotation.get("result") or []}
    where = f"Label Studio task {task['id']} (pair {task['data']['qa_id']}, chapter '{task['data']['chapter_key']}')"
    choices = values.get("decision", {}).get("choices") or []
    if len(choices) != 1 or choices[0] not in DECISIONS:
        raise AnnotationProblem(f"{where}: annotation {annotation['id']} chooses {choices or 'nothing'}; choose one of accept, edit, reject")

    def text(name: str) -> str | None:
        found = values.get(name, {}).get("text")
        return "\n".join(found).strip() if found else None

    decision = choices[0]
    question, answer = text("question"), text("answer")
    data = task["data"]
    if decision == "edit" and not (question or answer):
        raise AnnotationProblem(f"{where}: annotation {annotation['id']} says edit but carries no edited question or answer")
    return {
        "qa_id": data["qa_id"],
        "chapter_key": data["chapter_key"],
        "decision": decision,
        "question": (question or data["question"]) if decision == "edit" else None,
        "answer": (answer or data["answer"]) if decision == "edit" else None,
        "reason": text("reason") or "",
        "reviewer": annotation.get("completed_by"),
        "reviewer_name": (annotation.get("created_username") or "").strip(),
        "annotation_id": annotation["id"],
        "task_id": task["id"],
        "reviewed_at": annotation.get("updated_at") or annotation.get("created_at"),
        "evidence_sha256": data["evidence_sha256"],
        "generated": {"question": data["question"], "answer": data["answer"]},
        "rereview": bool(data.get("rereview")),
    }


def merge_decisions(stored: dict[str, dict], pulled: list[dict[str, Any]]) -> dict[str, dict]:
    """The decision store after a pull: the newest decision per pair wins; the one it replaces goes
    into its history, and decisions of pairs no longer generated stay (nothing a reviewer did is lost)."""
    merged = {k: dict(v) for k, v in stored.items()}
    for decision in sorted(pulled, key=lambda d: (d["reviewed_at"] or "", d["annotation_id"])):
        earlier = merged.get(decision["qa_id"])
        if earlier and earlier["annotation_id"] == decision["annotation_id"] and earlier["reviewed_at"] == decision["reviewed_at"]:
            continue
        history = (earlier.get("history", []) + [{k: v for k, v in earlier.items() if k != "history"}]) if earlier else []
        merged[decision["qa_id"]] = {**decision, "history": history}
    return merged


def apply_decisions(rows: list[dict[str, Any]], decisions: dict[str, dict]) -> tuple[list[dict], list[dict]]:
    """(rows, removed): each reviewed row carries `review` (decision, reviewer, reason, stale) and,
    when edited, the reviewer's text (expert_edited, generated_question / generated_answer);
    rejected rows, stale or not, are removed with removed_by "review:rejected"."""
    kept, removed = [], []
    for row in rows:
        decision = decisions.get(row["qa_id"])
        if decision is None:
            kept.append(row)
            continue
        stale = is_stale(decision, row)
        review = {"decision": decision["decision"], "reviewer": decision["reviewer"], "reason": decision["reason"], "stale": stale,
                  "annotation_id": decision["annotation_id"], "reviewed_at": decision["reviewed_at"]}
        row = {**row, "review": review}
        if decision["decision"] == "reject":
            removed.append({**row, "removed_by": "review:rejected"})
        elif decision["decision"] == "edit" and not stale:
            kept.append(edited(row, decision))
        else:
            kept.append(row)
    return kept, removed


def review_text(row: dict[str, Any]) -> tuple[str, str]:
    """(question, answer) as a reviewer sees and edits them: a pair's own; for a dialogue, the
    speaker-labelled dialogue before its last clinician turn, and that turn."""
    turns = row.get("turns")
    if not turns:
        return row["question"], row["answer"]
    last = last_clinician_turn(turns)
    return "\n".join(f"{t['role']}: {t['content']}" for t in turns[:last]), turns[last]["content"]


def edited(row: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    """The row with the reviewer's text; in a dialogue the edited answer is its last clinician turn
    (the dialogue before it is context, not edited)."""
    # A frozen held-out row may carry the edit already (it was frozen edited): the generated text stays the first one.
    out = {**row, "expert_edited": True, "generated_question": row.get("generated_question", row["question"]),
           "generated_answer": row.get("generated_answer", row["answer"])}
    if not row.get("turns"):
        return {**out, "question": decision["question"], "answer": decision["answer"]}
    turns = [dict(t) for t in row["turns"]]
    last = last_clinician_turn(turns)
    turns[last]["content"] = decision["answer"]
    return {**out, "turns": turns, "answer": " ".join(t["content"] for t in turns if t["role"] == "clinician")}


def protected(row: dict[str, Any]) -> bool:
    """A row a reviewer kept (accepted or edited) against the evidence it still has."""
    review = row.get("review")
    return bool(review and not review["stale"] and review["decision"] in KEEPS)


def agreement(verdicts: list[tuple[bool, str]]) -> dict[str, Any]:
    """How the gate's verdict on the generated rows (passed?) matches the reviewers' decisions on
    the same rows. The reviewer keeps a row as generated only by accepting it: an edit says the
    generated text was not right. Agreement and Cohen's kappa over (gate passed, reviewer accepted)."""
    table = {f"gate_{'pass' if passed else 'fail'}_{decision}": 0 for passed in (True, False) for decision in DECISIONS}
    for passed, decision in verdicts:
        table[f"gate_{'pass' if passed else 'fail'}_{decision}"] += 1
    n = len(verdicts)
    if not n:
        return {"reviewed": 0, **table, "agreement": None, "kappa": None}
    both_keep = table["gate_pass_accept"]
    both_drop = table["gate_fail_edit"] + table["gate_fail_reject"]
    observed = (both_keep + both_drop) / n
    gate_pass = sum(passed for passed, _ in verdicts) / n
    accepted = sum(decision == "accept" for _, decision in verdicts) / n
    expected = gate_pass * accepted + (1 - gate_pass) * (1 - accepted)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else None
    return {"reviewed": n, **table, "agreement": round(observed, 3), "kappa": round(kappa, 3) if kappa is not None else None}
