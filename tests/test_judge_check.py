"""The judge check: the labelled set's shape, G-Eval readings from the real local judge, the
agreement statistics, and what a report says about a judge that was never measured or is weak."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ragtune.evaluate.geval import CachedReadings, LocalJudge, expected_score, verdict_of
from ragtune.evaluate.judge_check import (AGREEMENT_THRESHOLD, KINDS, REGISTRY, check_set_sha256, grade_difference_text, grade_prompt,
                                          grade_verdict_text,
                                          judge_standing, load_check_set,
                                          measure_judge, pairwise_prompt, record_agreement, verdict_text)

CHECK_SET = Path(__file__).parent / "data" / "judge_check.jsonl"


def test_the_check_set_has_150_pairs_over_three_sources_and_six_kinds():
    groups = load_check_set(CHECK_SET)
    pairs = [(g, d) for g in groups for d in g.degraded]
    assert len(pairs) >= 150 and len({g.id for g in groups}) == len(groups)
    assert Counter(g.source for g in groups).keys() == {"handbook", "nimh", "medquad"}
    assert Counter(d["kind"] for _, d in pairs) == {kind: len(groups) for kind in KINDS}
    assert all(g.reference != g.passage and all(d["answer"] != g.reference for d in g.degraded) for g in groups)
    assert {g.split for g in groups} == {"dev", "holdout"}


def test_a_broken_group_is_named(tmp_path):
    line = json.loads(CHECK_SET.read_text().splitlines()[0])
    line["degraded"] = line["degraded"][:5]
    broken = tmp_path / "set.jsonl"
    broken.write_text(json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=f"set.jsonl:1 \\({line['id']}\\): degraded kinds"):
        load_check_set(broken)


def test_probability_weighted_score_and_verdict():
    assert expected_score({1: 0.5, 10: 0.5}) == 5.5
    assert expected_score({7: 2.0, 9: 2.0}) == 8.0  # normalised
    with pytest.raises(ValueError):
        expected_score({})
    assert verdict_of({"A": 0.6, "B": 0.3, "tie": 0.1}, 0.05) == "A"
    assert verdict_of({"A": 0.46, "B": 0.5, "tie": 0.04}, 0.05) == "tie"
    assert verdict_of({"A": 0.1, "B": 0.8, "tie": 0.1}, 0.05) == "B"


@pytest.mark.slow
def test_the_local_judge_reads_distributions_and_the_cache_repays_nothing(tmp_path):
    groups = load_check_set(CHECK_SET)[:2]
    judge = CachedReadings(LocalJudge("smollm2"), tmp_path / "cache")
    grade = judge.grade(grade_prompt(groups[0], groups[0].reference))
    assert sorted(grade) == list(range(1, 11)) and abs(sum(grade.values()) - 1) < 1e-6
    assert len({round(p, 4) for p in grade.values()}) > 3  # a distribution, not one digit
    verdict = judge.verdict(pairwise_prompt(groups[0], groups[0].reference, groups[0].degraded[0]["answer"]))
    assert set(verdict) == {"A", "B", "tie"} and abs(sum(verdict.values()) - 1) < 1e-6
    measured = measure_judge(judge, groups)
    summary = measured["summary"]
    assert summary["pairs"] == 12 == len(measured["pairs"])
    assert summary["prefers_reference_both_orders"] + summary["ties"] + summary["prefers_worse"] == 12
    assert summary["weak"] == (summary["agreement"] < AGREEMENT_THRESHOLD)
    assert -1 <= summary["spearman_grades_vs_known_order"] <= 1 and 0 <= summary["grade_auc"] <= 1
    paid = judge.paid
    again = CachedReadings(LocalJudge("smollm2"), tmp_path / "cache")
    assert measure_judge(again, groups)["summary"] == summary and again.paid == 0 and paid == 2 * (1 + 6 * 3)


def test_a_report_names_its_judge_agreement_and_withholds_a_weak_verdict(tmp_path):
    registry = tmp_path / "judge_agreement.json"
    pair = {"win": 3, "tie": 1, "loss": 0, "undecided": 0}
    unmeasured = judge_standing("openai:gpt-x@http://127.0.0.1:1/v1", registry)
    assert unmeasured["judge_weak"] and unmeasured["judge_agreement"] is None and "no measured agreement" in unmeasured["judge_note"]
    assert verdict_text(pair, unmeasured).startswith("not a verdict")
    summary = {"pairs": 222, "agreement": 0.86, "agreement_ci95": [0.81, 0.9], "ties": 20, "prefers_worse": 11, "grade_auc": 0.9,
               "spearman_grades_vs_known_order": 0.5, "weak": False}
    record_agreement("strong", summary, check_set_sha256(CHECK_SET), 37, "all", registry)
    record_agreement("small", {**summary, "agreement": 0.55, "weak": True}, check_set_sha256(CHECK_SET), 37, "all", registry)
    strong, small = judge_standing("strong", registry), judge_standing("small", registry)
    assert not strong["judge_weak"] and strong["judge_agreement"] == 0.86 and verdict_text(pair, strong) == "3 win / 1 tie / 0 loss (0 undecided)"
    assert small["judge_weak"] and "55%" in small["judge_note"] and verdict_text(pair, small).startswith("not a verdict (weak judge, agreement 0.55)")
    # Grades are judged apart: a judge with weak verdicts may still grade in the known order (the 1.5B model did).
    difference = {"mean_difference": 0.8, "ci95": [0.3, 1.2], "questions": 40, "tuned_higher": 25, "tuned_lower": 10}
    assert not small["grades_weak"] and grade_difference_text(difference, small).startswith("0.8 [0.3, 1.2] over 40 questions")
    record_agreement("flat", {**summary, "agreement": 0.55, "weak": True, "grade_auc": 0.6}, check_set_sha256(CHECK_SET), 37, "all", registry)
    assert grade_difference_text(difference, judge_standing("flat", registry)).startswith("not a result (judge grades weak, grade AUC 0.6)")
    assert grade_difference_text(difference, unmeasured).startswith("not a result (judge grades weak, grade AUC not measured)")
    by_grade = {"win": 25, "tie": 5, "loss": 10, "undecided": 0, "win_rate": 0.688, "win_rate_ci95": [0.55, 0.81]}
    assert grade_verdict_text(by_grade, small).endswith("win rate 0.688 [0.55, 0.81]; tuned better: the interval lies above 0.5")
    assert grade_verdict_text({**by_grade, "win_rate_ci95": [0.45, 0.8]}, small).endswith("no verdict: the interval holds 0.5")
    assert grade_verdict_text(by_grade, judge_standing("flat", registry)).startswith("not a verdict (judge grades weak, grade AUC 0.6)")


def test_an_endpoint_grade_of_ten_written_as_one_then_zero_is_split_from_one():
    from ragtune.evaluate.geval import split_ten

    assert split_ten({1: 0.6, 5: 0.4}, "1", {"0": 0.5, ",": 0.5}) == pytest.approx({1: 0.3, 5: 0.4, 10: 0.3})
    assert expected_score(split_ten({1: 0.6, 5: 0.4}, "1", {"0": 0.5, ",": 0.5})) == pytest.approx(0.3 + 2.0 + 3.0)
    assert split_ten({1: 0.6, 5: 0.4}, "5", {",": 1.0}) == {1: 0.6, 5: 0.4}  # wrote 5: nothing known about what follows a 1
    assert split_ten({1: 0.2, 10: 0.8}, "10", {",": 1.0}) == {1: 0.2, 10: 0.8}  # a tokenizer with one token for 10


def test_the_shipped_registry_holds_measured_judges_only():
    entries = json.loads(REGISTRY.read_text())
    assert entries, "bench/judge.py has not recorded any judge"
    for model_id, entry in entries.items():
        assert entry["pairs"] >= 150 or entry["split"] != "all", model_id
        assert entry["weak"] == (entry["agreement"] < AGREEMENT_THRESHOLD) and len(entry["check_set_sha256"]) == 64
        # a changed check set needs its judges measured again (bench/judge.py) before their numbers are shown
        assert entry["check_set_sha256"] == check_set_sha256(CHECK_SET), f"{model_id} was measured on another judge check set"


@pytest.mark.slow
def test_an_endpoint_judge_is_read_from_its_top_logprobs(tmp_path):
    """A real OpenAI-compatible server (llama.cpp's, on the embedded model): the grade and the verdict
    come from the top_logprobs at the score and verdict tokens of its JSON reply, and agree with the
    same model read teacher-forced on where the mass lies."""
    from tests.servers import llama_server_url
    from ragtune.evaluate.geval import EndpointJudge

    group = load_check_set(CHECK_SET)[0]
    local = LocalJudge("smollm2").grade(grade_prompt(group, group.reference))
    with llama_server_url() as url:
        judge = EndpointJudge(url, "smollm2", json_mode="json_object")
        grade = judge.grade(grade_prompt(group, group.reference))
        verdict = judge.verdict(pairwise_prompt(group, group.reference, group.degraded[0]["answer"]))
    assert set(grade) <= set(range(1, 11)) and len(grade) >= 5 and sum(grade.values()) <= 1 + 1e-6
    assert max(grade, key=grade.get) == max(local, key=local.get)
    assert set(verdict) == {"A", "B", "tie"} and abs(sum(verdict.values()) - 1) < 1e-6
