"""Evaluation statistics, pairwise judging with the real local judge, DPO pairs read by TRL and
LLaMA-Factory, and the MedQuAD loader on the real files."""

from __future__ import annotations

import json
import shutil
import types

import datasets
import pytest

from ragtune.curate.preference import dpo_pairs, write_dpo
from ragtune.evaluate.evaluation import EvalQuestion, evaluate
from ragtune.evaluate.grading import VERDICTS, JudgeSettings, PairItem, combine_orders, compare_pairwise, reference_answers
from ragtune.evaluate.medquad import load_medquad, sample_questions
from ragtune.evaluate.stats import bootstrap_ci, grade_outcomes, paired_difference, pairwise_summary, summarize
from tests.conftest import shared_path
from tests.test_curation import load_llamafactory_converters

EVIDENCE = "Lithium has the strongest evidence for preventing relapse. It needs blood level, kidney and thyroid monitoring."


def test_both_orders_combine_so_position_bias_ties():
    assert combine_orders("A", "B") == "win"  # tuned first: A; base first: B (tuned again)
    assert combine_orders("A", "tie") == "win" and combine_orders("tie", "B") == "win"
    assert combine_orders("B", "A") == "loss" and combine_orders("tie", "A") == "loss"
    assert combine_orders("A", "A") == "tie"  # always the first answer: position bias, no preference
    assert combine_orders("tie", "tie") == "tie" and combine_orders("B", "B") == "tie"
    assert combine_orders(None, "A") is None


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_questions():
    few = [3, 9, 5, 7, 4, 8]
    low, high = bootstrap_ci(few, 2000, seed=0)
    assert low < sum(few) / len(few) < high and 3 <= low and high <= 9
    assert bootstrap_ci(few, 2000, seed=0) == [low, high]  # seeded: the report is reproducible
    many_low, many_high = bootstrap_ci(few * 20, 2000, seed=0)
    assert many_high - many_low < (high - low) / 3
    assert bootstrap_ci([7], 2000, seed=0) is None and bootstrap_ci([5, 5, 5], 500, seed=1) == [5.0, 5.0]


def test_the_paired_difference_is_per_question_and_narrower_than_two_separate_intervals():
    base = [2.0, 3.5, 1.2, 4.0, 2.8, 3.1, None]
    tuned = [1.8, 3.3, 1.1, 3.7, 2.9, 2.8, 2.0]  # lower on five of the six questions both scored, by 0.1-0.3
    found = paired_difference(base, tuned, 2000, seed=0)
    assert found["questions"] == 6 and (found["tuned_lower"], found["tuned_higher"]) == (5, 1)
    assert found["mean_difference"] == pytest.approx((-0.2 - 0.2 - 0.1 - 0.3 + 0.1 - 0.3) / 6, abs=1e-5)
    low, high = found["ci95"]
    assert low < found["mean_difference"] < high < 0  # every resample of these differences favours tuned
    separate = [bootstrap_ci([b for b in base if b is not None], 2000, 0), bootstrap_ci(tuned[:6], 2000, 0)]
    assert separate[0][0] < separate[1][1]  # the two models' own intervals overlap: unpaired, no verdict
    assert paired_difference([1.0], [0.5], 2000, 0)["ci95"] is None


def _row(n, group, base, tuned, outcome):
    return {"id": f"q{n}", "group": group, "question": f"question {n}?", "base": {"answer": f"base {n}", "score": base},
            "tuned": {"answer": f"tuned {n}", "score": tuned}, "pairwise": {"outcome": outcome}}


ROWS = [
    _row(1, "anxiety", 4, 8, "win"), _row(2, "anxiety", 6, 6, "tie"), _row(3, "anxiety", 5, None, None),
    _row(4, "bipolar", 7, 3, "tie"), _row(5, "bipolar", 2, 9, "loss"),
]


def test_summary_has_paper_totals_intervals_win_tie_loss_and_chapters():
    summary = summarize(ROWS, ["base", "tuned"], 1000, seed=0)
    base, tuned = summary["models"]["base"], summary["models"]["tuned"]
    assert (base["total"], base["graded"], base["max_total"]) == (24, 5, 50)
    assert (tuned["total"], tuned["graded"], tuned["mean"]) == (26, 4, 6.5)
    assert tuned["ci95"][0] < tuned["mean"] < tuned["ci95"][1]
    pair = summary["tuned_vs_base"]
    assert (pair["win"], pair["tie"], pair["loss"], pair["undecided"]) == (1, 2, 1, 1) and pair["win_rate"] == 0.5
    groups = {g["group"]: g for g in summary["per_group"]}
    assert groups["anxiety"]["questions"] == 3 and groups["anxiety"]["tuned"]["total"] == 14
    assert groups["bipolar"]["tuned_vs_base"]["loss"] == 1 and groups["bipolar"]["base"]["mean"] == 4.5


def test_the_verdict_by_grade_compares_each_questions_two_grades():
    base, tuned = [r["base"]["score"] for r in ROWS], [r["tuned"]["score"] for r in ROWS]
    assert grade_outcomes(base, tuned) == ["win", "tie", None, "loss", "win"]
    pair = pairwise_summary(grade_outcomes(base, tuned), 1000, seed=0)
    assert (pair["win"], pair["tie"], pair["loss"], pair["undecided"], pair["win_rate"]) == (2, 1, 1, 1, 0.625)
    assert pairwise_summary(["win"] * 30 + ["tie"] * 3, 1000, seed=0)["win_rate_ci95"][0] > 0.5


def test_dpo_pairs_load_in_trl_and_llamafactory(tmp_path, base_model_cache):
    pairs = dpo_pairs(ROWS, ["base", "tuned"], min_margin=3)
    # q1 pairwise win, q5 pairwise loss, q4 a tie by verdict but graded 7 vs 3; q2 (tie, equal) and q3 (undecided) make none
    assert [(p["id"], p["chosen"], p["rejected"]) for p in pairs] == [
        ("q1", "tuned 1", "base 1"), ("q4", "base 4", "tuned 4"), ("q5", "base 5", "tuned 5")]
    write_dpo(pairs[:1], tmp_path, "older_dpo")
    path = write_dpo(pairs, tmp_path, "eval_dpo")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"eval_dpo"} and info["eval_dpo"]["ranking"]  # written afresh: an older entry is offered no more

    get_dataset_list, get_dataset_converter = load_llamafactory_converters()
    attr = get_dataset_list(["eval_dpo"], str(tmp_path))[0]
    convert = get_dataset_converter(attr.formatting, attr, types.SimpleNamespace(dataset_dir=str(tmp_path), media_dir=str(tmp_path)))
    aligned = [convert(example) for example in datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "c"))]
    assert [a["_response"][0]["content"] for a in aligned] == ["tuned 1", "base 4", "base 5"]  # chosen first
    assert aligned[0]["_response"][1]["content"] == "base 1" and aligned[0]["_prompt"][0]["content"] == "question 1?"

    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from tests.conftest import load_embedded_model

    model, tokenizer = load_embedded_model(base_model_cache)
    dataset = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "c"))
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=3, report_to=[], use_cpu=True,
                     max_length=96, logging_steps=1, save_strategy="no", disable_tqdm=True)
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and logged[0]["loss"] > 0  # TRL tokenized prompt/chosen/rejected and took a DPO step


def test_pairwise_judging_asks_both_orders_in_one_cached_batch(tmp_path, embedded_llm):
    items = [
        PairItem("What monitoring does lithium need?", "Blood level, kidney and thyroid monitoring.", EVIDENCE,
                 tuned="Lithium needs blood level, kidney and thyroid checks.", base="Lithium needs no monitoring."),
        PairItem("What monitoring does lithium need?", "Blood level, kidney and thyroid monitoring.", EVIDENCE, tuned="", base="Kidney tests."),
    ]
    llm = embedded_llm(tmp_path)
    results, failures = compare_pairwise(llm, items, JudgeSettings())
    assert llm.calls == 4  # two questions x two orders
    for result in results:
        assert result["tuned_first"] in (*VERDICTS, None) and result["base_first"] in (*VERDICTS, None)
        assert result["outcome"] == combine_orders(result["tuned_first"], result["base_first"])
    unusable = sum((r["tuned_first"] is None) + (r["base_first"] is None) for r in results)
    assert len(failures) == unusable and all(f["raw"] is not None and f["task"] == "pairwise" for f in failures)
    again = embedded_llm(tmp_path)
    assert compare_pairwise(again, items, JudgeSettings()) == (results, failures) and again.calls == 0


def test_evaluate_grades_every_model_and_compares_tuned_with_base(tmp_path, embedded_llm):
    questions = [EvalQuestion("q1", "bipolar", "What monitoring does lithium need?", "Blood level, kidney and thyroid monitoring.", EVIDENCE)]
    llm = embedded_llm(tmp_path)
    reference, failed = reference_answers(llm, [q.question for q in questions], JudgeSettings(max_new_tokens=40))
    assert llm.calls == 1 and reference[0].strip() and not failed  # the reference model answers closed-book, through the cache
    answers = {"base": ["No monitoring."], "tuned": ["Blood levels, kidney and thyroid."], "reference": reference}
    result = evaluate(questions, answers, llm, JudgeSettings(bootstrap_resamples=200))
    rows, summary = result.rows, result.summary
    assert llm.calls == 1 + 5  # three single grades, two pairwise orders
    assert set(rows[0]) >= {"base", "tuned", "reference", "pairwise"} and rows[0]["reference"]["answer"] == reference[0]
    assert set(summary["models"]) == {"base", "tuned", "reference"} and summary["per_group"][0]["group"] == "bipolar"
    graded = sum(rows[0][m]["score"] is not None for m in ("base", "tuned", "reference"))
    assert summary["judged"]["answers_asked"] == 3 and summary["judged"]["answers_graded"] == graded
    assert len([f for f in result.failures if f["task"] == "grade"]) == 3 - graded
    with pytest.raises(ValueError, match="base and tuned"):
        evaluate(questions, {"tuned": answers["tuned"]}, llm, JudgeSettings())


def test_medquad_mental_health_questions_load_with_categories_and_bad_files_are_named(tmp_path):
    root = shared_path("medquad")
    questions, problems = load_medquad(root)
    assert len(questions) >= 100 and not problems
    assert all(q.question.strip() and q.reference and "  " not in q.question for q in questions)
    groups = {q.group for q in questions}
    assert {"anxiety", "substance-related", "neurocognitive"} <= groups
    anxiety = next(q for q in questions if q.id == "0000048-1")
    assert anxiety.group == "anxiety" and anxiety.reference.startswith("Fear and anxiety are part of life.")
    picked = sample_questions(questions, 12, seed=0)
    assert len(picked) == 12 and len({q.group for q in picked}) >= 8 and picked == sample_questions(questions, 12, seed=0)

    copy = tmp_path / "medquad"
    shutil.copytree(root / "mental-health", copy / "mental-health")
    broken = copy / "mental-health" / "4_MPlus_Health_Topics_QA" / "0000048.xml"
    broken.write_text("<Document><QAPairs>", encoding="utf-8")
    again, problems = load_medquad(copy)
    assert len(problems) == 1 and "0000048.xml" in problems[0] and len(again) == len(questions) - 1
    with pytest.raises(FileNotFoundError, match="mental-health"):
        load_medquad(tmp_path / "nowhere")


def test_medquad_asset_is_skipped_when_the_data_is_absent(tmp_path):
    import dagster as dg

    from pipeline_assets.evaluate import medquad_scores
    from resources import BaseModelResource, DataDirResource, LLMResource

    resources = {"storage": DataDirResource(data_dir=str(tmp_path)), "base_model": BaseModelResource(),
                 "judge_llm": LLMResource(), "reference_llm": LLMResource()}
    config = {"ops": {"medquad_scores": {"config": {"medquad_dir": str(tmp_path / "no-medquad")}}}}
    result = dg.materialize([medquad_scores], resources=resources, run_config=config)
    assert result.success and not result.asset_materializations_for_node("medquad_scores")
    skipped = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    assert not skipped and not (tmp_path / "reports").exists()


def test_a_garbage_judge_answer_is_a_ledger_entry_with_its_raw_text_and_the_totals_say_so(tmp_path, embedded_llm):
    """A judge cut off after 4 tokens writes JSON that does not parse: every grade and verdict is a
    ledger entry with the raw output, nothing is graded, and the totals say 0 of 4 and 0 of 2."""
    questions = [EvalQuestion("q1", "bipolar", "What monitoring does lithium need?", "Blood level, kidney and thyroid monitoring.", EVIDENCE)]
    answers = {"base": ["No monitoring."], "tuned": ["Blood levels, kidney and thyroid."]}
    result = evaluate(questions, answers, embedded_llm(tmp_path), JudgeSettings(judge_max_tokens=4, bootstrap_resamples=50))
    assert result.summary["judged"] == {"answers_asked": 2, "answers_graded": 0, "comparisons_asked": 2, "comparisons_judged": 0,
                                        "grades_weighted": 0, "comparisons_weighted": 0}  # no readings asked for
    assert len(result.failures) == 4 and {f["task"] for f in result.failures} == {"grade", "pairwise"}
    for failure in result.failures:
        assert failure["raw"] and failure["raw"].lstrip().startswith("{") and failure["cache_key"] and not failure["unavailable"]
        assert "unparseable" in failure["reason"] or "not A, B or tie" in failure["reason"]
    assert all(result.rows[0][m]["score"] is None for m in ("base", "tuned"))


def test_a_failed_reference_answer_is_recorded_and_not_graded(tmp_path, embedded_llm):
    from ragtune.llm.backends import OpenAICompatibleBackend
    from ragtune.llm.client import CachedLLM, LLMCache
    from tests.servers import free_port

    down = CachedLLM(OpenAICompatibleBackend(f"http://127.0.0.1:{free_port()}/v1", "smollm2", timeout_s=2, max_retries=0), LLMCache(tmp_path / "down"))
    reference, failures = reference_answers(down, ["What monitoring does lithium need?"], JudgeSettings(max_new_tokens=20))
    assert reference == [None] and len(failures) == 1 and failures[0]["unavailable"] and failures[0]["task"] == "reference_answer"
    questions = [EvalQuestion("q1", "bipolar", "What monitoring does lithium need?", "Blood level, kidney and thyroid monitoring.", EVIDENCE)]
    answers = {"base": ["No monitoring."], "tuned": ["Blood levels, kidney and thyroid."], "reference": reference}
    llm = embedded_llm(tmp_path / "judge")
    result = evaluate(questions, answers, llm, JudgeSettings(bootstrap_resamples=50))
    assert llm.calls == 2 + 2  # base and tuned graded, both pairwise orders; the missing reference answer is not sent
    assert result.rows[0]["reference"]["score"] is None and "no answer" in result.rows[0]["reference"]["rationale"]
