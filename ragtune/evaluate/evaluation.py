"""One evaluation over any question set (the frozen eval split, MedQuAD): every model's answers
graded 1-10, tuned vs base compared in both orders, and the statistics of eval_stats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragtune.evaluate.grading import GradeItem, JudgeSettings, PairItem, compare_pairwise, grade_many, weighted_grades, weighted_verdicts
from ragtune.evaluate.stats import grade_outcomes, paired_difference, pairwise_summary, summarize
from ragtune.llm.client import CachedLLM


@dataclass
class EvalQuestion:
    id: str
    group: str  # chapter key, or MedQuAD category: the per-group breakdown
    question: str
    reference: str
    evidence: str = ""


@dataclass
class Evaluation:
    rows: list[dict[str, Any]]  # one per question: each model's answer and grade, the pairwise verdicts
    summary: dict[str, Any]  # eval_stats.summarize, plus "judged": graded and compared of asked
    failures: list[dict[str, Any]]  # every failed judge call or unusable judgement, with its raw output


def evaluate(questions: list[EvalQuestion], answers: dict[str, list[str | None]], judge: CachedLLM, settings: JudgeSettings,
             readings=None) -> Evaluation:
    """answers maps model name -> answers in question order and must hold "base" and "tuned"; an
    answer that is None (its model's call failed) is not graded. readings (geval.CachedReadings of
    the same judge): grades become its probability-weighted scores (G-Eval) and pairwise verdicts its
    probability-read ones, the rule its judge-check agreement was measured with."""
    models = list(answers)
    if not {"base", "tuned"} <= set(models):
        raise ValueError(f"evaluation needs base and tuned answers, got {models}")
    asked = [(m, i) for m in models for i in range(len(questions)) if answers[m][i] is not None]
    items = [GradeItem(questions[i].question, questions[i].reference, questions[i].evidence, answers[m][i]) for m, i in asked]
    graded, grade_failures = grade_many(
        judge, items, settings, lambda n: {"task": "grade", "model": asked[n][0], "id": questions[asked[n][1]].id}
    )
    if readings is not None:
        graded = weighted_grades(readings, items, graded)
    grades = dict(zip(asked, graded))
    pair_items = [PairItem(q.question, q.reference, q.evidence, answers["tuned"][i], answers["base"][i]) for i, q in enumerate(questions)]
    pairs, pair_failures = compare_pairwise(judge, pair_items, settings)
    if readings is not None:
        pairs = weighted_verdicts(readings, pair_items, pairs)
    rows = []
    for i, q in enumerate(questions):
        row: dict[str, Any] = {"id": q.id, "group": q.group, "question": q.question, "reference": q.reference, "pairwise": pairs[i]}
        for name in models:
            grade = grades.get((name, i), {"score": None, "rationale": "no answer to grade (the model's call failed)", "cache_key": None})
            row[name] = {"answer": answers[name][i], **grade}
        rows.append(row)
    summary = summarize(rows, models, settings.bootstrap_resamples, settings.seed)
    base_grades, tuned_grades = [r["base"]["score"] for r in rows], [r["tuned"]["score"] for r in rows]
    summary["tuned_minus_base_grade"] = paired_difference(base_grades, tuned_grades, settings.bootstrap_resamples, settings.seed)
    summary["tuned_vs_base_by_grade"] = pairwise_summary(grade_outcomes(base_grades, tuned_grades), settings.bootstrap_resamples, settings.seed)
    summary["judged"] = {
        "answers_asked": len(models) * len(questions),
        "answers_graded": sum(g["score"] is not None for g in graded),
        "comparisons_asked": 2 * len(questions),
        "comparisons_judged": sum((p["tuned_first"] is not None) + (p["base_first"] is not None) for p in pairs),
        "grades_weighted": sum(bool(g.get("weighted")) for g in graded),  # G-Eval readings that succeeded
        "comparisons_weighted": 2 * sum(bool(p.get("weighted")) for p in pairs),
    }
    return Evaluation(rows, summary, grade_failures + pair_failures)
