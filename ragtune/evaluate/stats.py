"""Honest statistics for the evaluation report: paper-style totals, means with percentile-bootstrap
95% intervals, tuned-vs-base win/tie/loss with a bootstrap interval on the win rate, and the
same per chapter (or per MedQuAD category), where a few questions give wide intervals."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

OUTCOMES = ("win", "tie", "loss")


def bootstrap_ci(values: list[float], resamples: int, seed: int, level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap interval of the mean; None for fewer than two values."""
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return [round(float(np.percentile(means, tail)), 3), round(float(np.percentile(means, 100 - tail)), 3)]


def paired_difference(base: list[float | None], tuned: list[float | None], resamples: int, seed: int) -> dict[str, Any]:
    """Tuned minus base per question (e.g. answer loss: negative is better for tuned), its mean with a
    percentile-bootstrap 95% interval over questions, and how many questions went each way. Pairing
    removes the spread between questions that separate intervals would carry."""
    differences = [t - b for b, t in zip(base, tuned) if b is not None and t is not None]
    return {
        "questions": len(differences),
        "mean_difference": round(float(np.mean(differences)), 5) if differences else None,
        "ci95": bootstrap_ci(differences, resamples, seed),
        "tuned_lower": sum(d < 0 for d in differences),
        "tuned_higher": sum(d > 0 for d in differences),
    }


def model_summary(scores: list[int | None], resamples: int, seed: int) -> dict[str, Any]:
    graded = [s for s in scores if s is not None]
    return {
        "total": sum(graded),
        "graded": len(graded),
        "questions": len(scores),
        "max_total": 10 * len(scores),
        "mean": round(sum(graded) / len(graded), 3) if graded else None,
        "ci95": bootstrap_ci(graded, resamples, seed),
    }


def pairwise_summary(outcomes: list[str | None], resamples: int, seed: int) -> dict[str, Any]:
    """Counts of win/tie/loss for tuned, and its win rate (a tie counts half) with a 95% interval."""
    decided = [o for o in outcomes if o is not None]
    counts = {o: decided.count(o) for o in OUTCOMES}
    points = [{"win": 1.0, "tie": 0.5, "loss": 0.0}[o] for o in decided]
    return {
        **counts,
        "undecided": len(outcomes) - len(decided),
        "win_rate": round(sum(points) / len(points), 3) if points else None,
        "win_rate_ci95": bootstrap_ci(points, resamples, seed),
    }


def grade_outcomes(base: list[float | None], tuned: list[float | None]) -> list[str | None]:
    """Tuned against base per question read from two independent grades: the higher grade wins, equal
    grades tie (the reading whose agreement with the known order the judge check reports as grade AUC)."""
    return [None if b is None or t is None else "win" if t > b else "loss" if t < b else "tie" for b, t in zip(base, tuned)]


def summarize(rows: list[dict[str, Any]], models: list[str], resamples: int, seed: int) -> dict[str, Any]:
    """rows: one per question with "group", each model's {"score"} and "pairwise" {"outcome"}."""
    summary: dict[str, Any] = {
        "questions": len(rows),
        "models": {m: model_summary([r[m]["score"] for r in rows], resamples, seed) for m in models},
        "tuned_vs_base": pairwise_summary([r["pairwise"]["outcome"] for r in rows], resamples, seed),
    }
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    summary["per_group"] = [
        {
            "group": name,
            "questions": len(members),
            **{m: model_summary([r[m]["score"] for r in members], resamples, seed) for m in models},
            "tuned_vs_base": pairwise_summary([r["pairwise"]["outcome"] for r in members], resamples, seed),
        }
        for name, members in sorted(groups.items())
    ]
    return summary


def summary_table(summary: dict[str, Any], models: list[str]) -> list[dict[str, Any]]:
    """One row per model: total, mean [95% CI], graded (for metadata tables and the card)."""
    rows = []
    for name in models:
        m = summary["models"][name]
        ci = f" [{m['ci95'][0]}, {m['ci95'][1]}]" if m["ci95"] else ""
        rows.append({"model": name, "total": f"{m['total']} / {m['max_total']}", "mean [95% CI]": f"{m['mean']}{ci}", "graded": m["graded"]})
    return rows


def group_table(summary: dict[str, Any], models: list[str]) -> list[dict[str, Any]]:
    rows = []
    for g in summary["per_group"]:
        pair = g["tuned_vs_base"]
        rows.append({"group": g["group"], "questions": g["questions"], **{f"{m} mean": g[m]["mean"] for m in models},
                     "tuned W/T/L": f"{pair['win']}/{pair['tie']}/{pair['loss']}"})
    return rows
