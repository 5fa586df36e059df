"""One evaluation over any question set (the frozen eval split, MedQuAD): every model's answers
graded 1-10, tuned vs base compared in both orders, and the statistics of eval_stats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragtune.evaluate.grading import GradeItem, JudgeSettings, PairItem, compare_pairwise, grade_many
from ragtune.evaluate.stats import summarize
from ragtune.llm.client import CachedLLM


@dataclass
class EvalQuestion:
    id: str
    group: str  # chapter key, or MedQuAD category: the per-group breakdown
    question: str
    reference: str
    evidence: str = ""


def evaluate(
    questions: list[EvalQuestion], answers: dict[str, list[str]], judge: CachedLLM, settings: JudgeSettings
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(one row per question, summary). answers maps model name -> answers in question order and
    must hold "base" and "tuned"."""
    models = list(answers)
    if not {"base", "tuned"} <= set(models):
        raise ValueError(f"evaluation needs base and tuned answers, got {models}")
    items = [GradeItem(q.question, q.reference, q.evidence, answers[m][i]) for m in models for i, q in enumerate(questions)]
    grades = grade_many(judge, items, settings)
    pairs = compare_pairwise(
        judge, [PairItem(q.question, q.reference, q.evidence, answers["tuned"][i], answers["base"][i]) for i, q in enumerate(questions)], settings
    )
    rows = []
    for i, q in enumerate(questions):
        row: dict[str, Any] = {"id": q.id, "group": q.group, "question": q.question, "reference": q.reference, "pairwise": pairs[i]}
        for k, name in enumerate(models):
            row[name] = {"answer": answers[name][i], **grades[k * len(questions) + i]}
        rows.append(row)
    return rows, summarize(rows, models, settings.bootstrap_resamples, settings.seed)
