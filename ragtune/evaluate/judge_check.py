"""A judge is believed only after it is checked: on a set of questions each with a reference answer
and six answers of known lower quality (a contradiction, a wrong entity, an answer to another
question, a vague non-answer, a truncated answer, a fluent but unsupported one;
tests/data/judge_check.jsonl), how often the judge prefers the reference in both orders, how often
it ties, and how well its probability-weighted 1-10 grades follow the known order.

The measured agreement of each judge is kept in judge_agreement.json beside this module (written by
bench/judge.py). Every evaluation report names its judge and that agreement; a judge under
AGREEMENT_THRESHOLD, or one never measured, is weak and its verdict is not printed as one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.evaluate.geval import VERDICT_MARGIN, Judge, expected_score, verdict_of
from ragtune.evaluate.grading import combine_orders
from ragtune.evaluate.stats import bootstrap_ci
from ragtune.llm.prompts import fenced, render_messages

AGREEMENT_THRESHOLD = 0.8  # share of (reference, worse answer) pairs preferred the right way in both orders
KINDS = ("contradiction", "wrong_entity", "other_question", "vague", "truncated", "unsupported")
REGISTRY = Path(__file__).with_name("judge_agreement.json")
NO_EVIDENCE = "(none beyond the reference)"


@dataclass
class CheckGroup:
    id: str
    source: str
    split: str
    question: str
    passage: str
    reference: str
    degraded: list[dict[str, str]]  # {"kind", "answer"}


def load_check_set(path: Path) -> list[CheckGroup]:
    groups = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        kinds = sorted(d["kind"] for d in data["degraded"])
        if kinds != sorted(KINDS):
            raise ValueError(f"{path}:{number} ({data.get('id')}): degraded kinds {kinds} are not the six of {KINDS}")
        groups.append(CheckGroup(data["id"], data["source"], data["split"], data["question"], data["passage"], data["reference"], data["degraded"]))
    return groups


def check_set_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def grade_prompt(group: CheckGroup, answer: str) -> list[dict[str, str]]:
    """The evaluation's own grading template; the source passage stands where the reference answer does."""
    return render_messages("judge", question=fenced(group.question), reference_answer=fenced(group.passage),
                           evidence=fenced(NO_EVIDENCE), answer=fenced(answer))


def pairwise_prompt(group: CheckGroup, first: str, second: str) -> list[dict[str, str]]:
    return render_messages("judge_pairwise", question=fenced(group.question), reference_answer=fenced(group.passage),
                           evidence=fenced(NO_EVIDENCE), answer_a=fenced(first), answer_b=fenced(second))


def measure_judge(judge: Judge, groups: list[CheckGroup], margin: float = VERDICT_MARGIN, resamples: int = 2000, seed: int = 0,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Every (reference, worse answer) pair compared in both orders and every answer graded; returns
    the per-pair records and the summary (agreement with its bootstrap interval, ties, losses, per
    kind; grade AUC and Spearman rank correlation of grades with the known order)."""
    from scipy.stats import spearmanr

    records, levels, grades = [], [], []
    total, done = sum(len(g.degraded) for g in groups), 0
    for group in groups:
        # Prompts that share a prefix run one after another: a local judge evaluates the shared part once.
        answers = [group.reference] + [worse["answer"] for worse in group.degraded]
        group_grades = [expected_score(judge.grade(grade_prompt(group, answer))) for answer in answers]
        reference_first = [judge.verdict(pairwise_prompt(group, group.reference, answer)) for answer in answers[1:]]
        worse_first = [judge.verdict(pairwise_prompt(group, answer, group.reference)) for answer in answers[1:]]
        levels += [1] + [0] * len(group.degraded)
        grades += group_grades
        for n, worse in enumerate(group.degraded):
            outcome = combine_orders(verdict_of(reference_first[n], margin), verdict_of(worse_first[n], margin))
            records.append({"group": group.id, "source": group.source, "split": group.split, "kind": worse["kind"], "outcome": outcome,
                            "reference_first": reference_first[n], "worse_first": worse_first[n],
                            "reference_grade": round(group_grades[0], 3), "worse_grade": round(group_grades[n + 1], 3)})
        done += len(group.degraded)
        if progress:
            progress(done, total)
    return {"pairs": records, "summary": summarise(records, levels, grades, resamples, seed, spearmanr)}


def _agreement(records: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {outcome: sum(r["outcome"] == outcome for r in records) for outcome in ("win", "tie", "loss")}
    n = len(records)
    return {"pairs": n, "prefers_reference_both_orders": counts["win"], "ties": counts["tie"], "prefers_worse": counts["loss"],
            "agreement": round(counts["win"] / n, 3) if n else None}


def summarise(records: list[dict[str, Any]], levels: list[int], grades: list[float], resamples: int, seed: int, spearmanr) -> dict[str, Any]:
    overall = _agreement(records)
    wins = [1.0 if r["outcome"] == "win" else 0.0 for r in records]
    above = [1.0 if r["reference_grade"] > r["worse_grade"] else 0.5 if r["reference_grade"] == r["worse_grade"] else 0.0 for r in records]
    rho = spearmanr(levels, grades).statistic if len(set(grades)) > 1 else 0.0
    return {
        **overall,
        "agreement_ci95": bootstrap_ci(wins, resamples, seed),
        "grade_auc": round(float(np.mean(above)), 3) if above else None,  # reference graded above the worse answer (ties half)
        "grade_auc_ci95": bootstrap_ci(above, resamples, seed),
        "spearman_grades_vs_known_order": round(float(rho), 3),
        "mean_reference_grade": round(float(np.mean([g for g, level in zip(grades, levels) if level == 1])), 3) if grades else None,
        "mean_worse_grade": round(float(np.mean([g for g, level in zip(grades, levels) if level == 0])), 3) if grades else None,
        "by_kind": {kind: _agreement([r for r in records if r["kind"] == kind]) for kind in KINDS},
        "by_source": {source: _agreement([r for r in records if r["source"] == source]) for source in sorted({r["source"] for r in records})},
        "weak": overall["agreement"] is None or overall["agreement"] < AGREEMENT_THRESHOLD,
    }


def read_registry(registry: Path = REGISTRY) -> dict[str, Any]:
    return json.loads(registry.read_text(encoding="utf-8")) if registry.exists() else {}


def record_agreement(model_id: str, summary: dict[str, Any], check_sha256: str, groups: int, split: str = "all", registry: Path = REGISTRY) -> None:
    """Keep a judge's measured agreement (by its model id: a GGUF's id names its weights' content)."""
    entries = read_registry(registry)
    keep = ("pairs", "agreement", "agreement_ci95", "ties", "prefers_worse", "grade_auc", "spearman_grades_vs_known_order", "weak")
    entries[model_id] = {**{k: summary[k] for k in keep}, "groups": groups, "split": split, "check_set_sha256": check_sha256, "measured": date.today().isoformat()}
    registry.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def judge_standing(model_id: str, registry: Path = REGISTRY) -> dict[str, Any]:
    """What a report says about its judge: the model, its measured agreement (None: never measured),
    and whether it is weak (unmeasured or under the threshold), with a one-line note."""
    entry = read_registry(registry).get(model_id)
    agreement = entry["agreement"] if entry else None
    weak = agreement is None or agreement < AGREEMENT_THRESHOLD
    grade_auc = entry.get("grade_auc") if entry else None
    grades_weak = grade_auc is None or grade_auc < AGREEMENT_THRESHOLD
    if entry is None:
        note = f"judge {model_id} has no measured agreement (run bench/judge.py); its verdict is not a result"
    elif weak:
        note = (f"judge {model_id} prefers the reference in both orders on {agreement:.0%} of the judge check's pairs "
                f"(under {AGREEMENT_THRESHOLD:.0%}): weak, its verdict is not a result")
    else:
        note = f"judge {model_id}: agreement {agreement:.0%} on the judge check ({entry['pairs']} pairs, {entry['measured']})"
    if entry is not None:
        note += (f"; its weighted grades put the reference above the worse answer on {grade_auc:.0%} of the pairs (grade AUC)"
                 + (": too weak to compare grades" if grades_weak else ": grade differences are a measured comparison"))
    return {"judge_model": model_id, "judge_agreement": agreement, "judge_agreement_measured": entry["measured"] if entry else None,
            "judge_weak": weak, "judge_grade_auc": grade_auc, "grades_weak": grades_weak, "judge_note": note}


def grade_difference_text(difference: dict[str, Any], standing: dict[str, Any]) -> str:
    """Tuned minus base in weighted grade, per question, with its interval; not a result under grades that failed the check."""
    ci = difference["ci95"]
    text = (f"{difference['mean_difference']}" + (f" [{ci[0]}, {ci[1]}]" if ci else "") + f" over {difference['questions']} questions "
            f"(tuned graded higher on {difference['tuned_higher']}, lower on {difference['tuned_lower']})")
    if standing["grades_weak"]:
        measured = "not measured" if standing["judge_grade_auc"] is None else standing["judge_grade_auc"]
        return f"not a result (judge grades weak, grade AUC {measured}): {text}"
    return text


def grade_verdict_text(pair: dict[str, Any], standing: dict[str, Any]) -> str:
    """Win/tie/loss of tuned against base read from the two grades of each question, with the win rate's
    interval; a verdict only under grades that passed the check (grade AUC at least the threshold)."""
    ci = pair["win_rate_ci95"]
    counts = (f"{pair['win']} win / {pair['tie']} tie / {pair['loss']} loss by grade ({pair['undecided']} ungraded), win rate {pair['win_rate']}"
              + (f" [{ci[0]}, {ci[1]}]" if ci else ""))
    if standing["grades_weak"]:
        measured = "not measured" if standing["judge_grade_auc"] is None else standing["judge_grade_auc"]
        return f"not a verdict (judge grades weak, grade AUC {measured}): {counts}"
    decided = ("tuned better: the interval lies above 0.5" if ci and ci[0] > 0.5 else "base better: the interval lies below 0.5" if ci and ci[1] < 0.5
               else "no verdict: the interval holds 0.5")
    return f"{counts}; {decided}"


def verdict_text(pair: dict[str, Any], standing: dict[str, Any]) -> str:
    """Win/tie/loss of tuned against base; under a weak or unmeasured judge it is said not to be a verdict."""
    counts = f"{pair['win']} win / {pair['tie']} tie / {pair['loss']} loss ({pair['undecided']} undecided)"
    agreement = standing["judge_agreement"]
    measured = "not measured" if agreement is None else agreement
    return f"not a verdict (weak judge, agreement {measured}): {counts}" if standing["judge_weak"] else counts
