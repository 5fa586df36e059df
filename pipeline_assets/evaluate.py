"""Evaluation: base vs LoRA-tuned (vs an optional reference model) on the frozen test split and on
MedQuAD's outside questions, judged by the judge_llm; test answer loss beside the judge. The test
split is the one training and epoch choice never saw (validation chose the epoch)."""

import json
import os
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import dagster as dg
import torch
from pydantic import Field

from pipeline_assets.config import LLM_RETRY, config_from_settings, fail_if_endpoint_down
from pipeline_assets.metadata import table, usage_metadata, watched_client
from pipeline_assets.train import dpo_adapter, lora_adapter, sft_model, start_model, trained_from_pt
from ragtune.curate.dataset_card import markdown_rows
from ragtune.evaluate.evaluation import EvalQuestion, evaluate
from ragtune.evaluate.geval import CachedReadings
from ragtune.evaluate.judge_check import grade_difference_text, grade_verdict_text, judge_standing, verdict_text
from ragtune.evaluate.grading import JudgeSettings, answer_questions, reference_answers
from ragtune.evaluate.medquad import load_medquad, sample_questions
from ragtune.evaluate.stats import group_table, paired_difference, summary_table
from ragtune.jsonl import read_jsonl, write_jsonl
from ragtune.plots import markdown_image, score_bars
from ragtune.train.dpo import load_dpo_model
from ragtune.train.lora import answer_loss
from resources.base_model import BaseModelResource
from resources.llm import LLMResource
from resources.storage import DataDirResource

JudgeConfig = config_from_settings("JudgeConfig", JudgeSettings, "Questions, answer length, judge sampling, reference model, statistics.",
                                   asset="judge_scores")
EVALUATION_SPLIT = "test"


def grades_text(judged: dict) -> str:
    """How the grades and verdicts were read, with how many readings succeeded."""
    if not judged["grades_weighted"] and not judged["comparisons_weighted"]:
        return "the digits and verdicts the judge wrote (no token probabilities from this backend, or every reading failed)"
    return (f"probability-weighted over the score tokens (G-Eval): {judged['grades_weighted']} of {judged['answers_graded']} grades, "
            f"{judged['comparisons_weighted']} of {judged['comparisons_asked']} verdicts; the rest as written")


DPO_MODEL = "tuned_dpo"  # SFT + the DPO step, beside "base" and "tuned" (SFT) wherever dpo_adapter has run


def _dpo_model(storage: DataDirResource, base_model: BaseModelResource):
    """The SFT+DPO model, or None before dpo_adapter has run."""
    layout = storage.layout
    if not layout.dpo_adapter_config.exists():
        return None
    from_pt, pt_sha256 = trained_from_pt(layout)
    model, _ = start_model(storage, base_model, from_pt, torch.cuda.is_available(), pt_sha256)
    return load_dpo_model(model, layout.adapter_dir, layout.dpo_adapter_dir)


def base_label(storage: DataDirResource, base_model: BaseModelResource) -> str:
    """What "base" is in a report: the model SFT started from (with from_pt, the base with PT merged in)."""
    from_pt, _ = trained_from_pt(storage.layout)
    return base_model.model_id() + (" + the PT adapter merged (SFT started from it: 'base' in this report is base+PT)" if from_pt else "")


def _base_and_tuned_loss(tuned, tokenizer, rows: list[dict], max_length: int, resamples: int = 2000, seed: int = 0, dpo=None) -> dict[str, dict]:
    """answer_loss of the same rows with the adapter off (base), on (tuned) and, when given, under
    the SFT+DPO model, and the paired per-question differences (tuned minus base, SFT+DPO minus
    tuned; negative: the later model fits the references better)."""
    with tuned.disable_adapter():
        base = answer_loss(tuned, tokenizer, rows, max_length)
    tuned_loss = answer_loss(tuned, tokenizer, rows, max_length)
    losses = {"base": base, "tuned": tuned_loss, "tuned_minus_base": paired_difference(base["per_row"], tuned_loss["per_row"], resamples, seed)}
    if dpo is not None:
        losses[DPO_MODEL] = answer_loss(dpo, tokenizer, rows, max_length)
        losses[f"{DPO_MODEL}_minus_tuned"] = paired_difference(tuned_loss["per_row"], losses[DPO_MODEL]["per_row"], resamples, seed)
    return losses


def _difference_text(difference: dict) -> str:
    ci = difference["ci95"]
    interval = f" [{ci[0]}, {ci[1]}]" if ci else ""
    return (f"{difference['mean_difference']}{interval} over {difference['questions']} questions "
            f"(tuned lower on {difference['tuned_lower']}, higher on {difference['tuned_higher']})")


def _answers(context, tuned, tokenizer, questions: list[EvalQuestion], settings: JudgeSettings, reference_llm: LLMResource, storage: DataDirResource,
             dpo=None):
    texts = [q.question for q in questions]
    with tuned.disable_adapter():
        base = answer_questions(tuned, tokenizer, texts, settings.max_new_tokens, settings.answer_batch_size)
    answers = {"base": base, "tuned": answer_questions(tuned, tokenizer, texts, settings.max_new_tokens, settings.answer_batch_size)}
    if dpo is not None:
        answers[DPO_MODEL] = answer_questions(dpo, tokenizer, texts, settings.max_new_tokens, settings.answer_batch_size)
    failures: list[dict] = []
    if settings.with_reference:
        answers["reference"], failures = reference_answers(watched_client(context, reference_llm, storage, "reference_answers"), texts, settings)
    return answers, failures


def _report(context, name: str, title: str, questions, answers, reference_failures: list[dict], judge_llm: LLMResource, settings: JudgeSettings,
            storage: DataDirResource, extra: dict):
    """Judge, write reports/<name>.json, its failure ledger and the chart (no preference pairs: evaluation
    questions write no training-shaped data); return the asset metadata. When the judge (or reference) endpoint
    was down, fail the step after writing them: the calls that finished are cached, so the retry or a
    rerun pays only for the rest."""
    judge = watched_client(context, judge_llm, storage, name)
    weighted = judge_llm.weighted_judge()
    readings = CachedReadings(weighted, storage.layout.llm_cache_dir) if weighted is not None else None
    result = evaluate(questions, answers, judge, settings, readings)
    standing = judge_standing(judge.model_id)
    if standing["judge_weak"]:
        context.log.warning(standing["judge_note"])
    rows, summary, failures = result.rows, result.summary, reference_failures + result.failures
    write_jsonl(storage.layout.evaluation_failures(name), failures)
    models = list(answers)
    dpo_step = {}
    if DPO_MODEL in answers:  # the DPO step's effect: judge score of SFT+DPO minus SFT, question by question
        step = paired_difference([r["tuned"]["score"] for r in rows], [r[DPO_MODEL]["score"] for r in rows], settings.bootstrap_resamples,
                                 settings.seed)
        summary[f"{DPO_MODEL}_minus_tuned_score"] = step
        ci = f" [{step['ci95'][0]}, {step['ci95'][1]}]" if step["ci95"] else ""
        dpo_step = {f"{DPO_MODEL}_minus_tuned_score": f"{step['mean_difference']}{ci} over {step['questions']} questions (SFT+DPO higher on "
                                                       f"{step['tuned_higher']}, lower on {step['tuned_lower']})"}
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **standing,
        "grades": grades_text(summary["judged"]),
        "settings": asdict(settings),
        **extra,
        "summary": summary,
        "questions": rows,
    }
    path = storage.layout.report(name)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    plot = score_bars(summary["models"], storage.layout.chart(name), f"{title}: {len(rows)} questions")
    judged = summary["judged"]
    fail_if_endpoint_down(f"{name}: judge", failures, judged["answers_graded"] + judged["comparisons_judged"], judge_llm.endpoint)
    pair = summary["tuned_vs_base"]
    scores = summary_table(summary, models)
    return {
        **dpo_step,
        "questions": len(rows),
        **{f"{m}_total": summary["models"][m]["total"] for m in models},
        **{f"{m}_mean": summary["models"][m]["mean"] for m in models},
        "tuned_vs_base": verdict_text(pair, standing),
        "tuned_minus_base_grade": grade_difference_text(summary["tuned_minus_base_grade"], standing),
        "tuned_vs_base_by_grade": grade_verdict_text(summary["tuned_vs_base_by_grade"], standing),
        "tuned_win_rate": pair["win_rate"],
        "scores": table(scores),
        "scores_markdown": dg.MetadataValue.md(markdown_rows(scores)),
        "per_group": table(group_table(summary, models)),
        "chart": dg.MetadataValue.md(markdown_image(plot, f"{title} judge scores")),
        "judge_model": judge.model_id,
        "judge_agreement": standing["judge_agreement"],
        "judge_weak": standing["judge_weak"],
        "judge_grade_auc": standing["judge_grade_auc"],
        "judge_note": standing["judge_note"],
        "grades": grades_text(judged),
        "answers_graded": f"{judged['answers_graded']} of {judged['answers_asked']}",
        "comparisons_judged": f"{judged['comparisons_judged']} of {judged['comparisons_asked']}",
        "judge_failures": len(failures),
        **usage_metadata(judge.paid, judge_llm.price()),
        "judge_readings_paid": readings.paid if readings is not None else 0,  # G-Eval readings computed now (cached ones are free)
        "failure_ledger": dg.MetadataValue.path(str(storage.layout.evaluation_failures(name))),
        "path": dg.MetadataValue.path(str(path)),
    }


@dg.asset(group_name="evaluate", deps=[lora_adapter, dpo_adapter], kinds={"pytorch"}, pool="gpu", retry_policy=LLM_RETRY)
def judge_scores(
    context: dg.AssetExecutionContext,
    config: JudgeConfig,
    storage: DataDirResource,
    base_model: BaseModelResource,
    judge_llm: LLMResource,
    reference_llm: LLMResource,
) -> dg.MaterializeResult:
    """Frozen test questions answered by base, SFT (tuned), SFT+DPO (tuned_dpo, once dpo_adapter has
    run) and the reference model if asked, graded
    1-10 against the evidence and compared pairwise in both orders; totals, bootstrap CIs,
    win/tie/loss, per-chapter breakdown and a chart."""
    settings = JudgeSettings(**config.model_dump())
    eval_rows = read_jsonl(storage.layout.dataset_rows(EVALUATION_SPLIT))
    if settings.max_questions > 0:
        eval_rows = eval_rows[: settings.max_questions]
    if not eval_rows:
        raise dg.Failure("the test split is empty; materialize instruction_dataset first")
    questions = [
        EvalQuestion(r["qa_id"], r["chapter_key"], r["question"], r["answer"], "\n\n".join(e["text"] for e in r.get("evidence", [])[:3]))
        for r in eval_rows
    ]
    tuned, tokenizer = sft_model(storage, base_model)
    dpo = _dpo_model(storage, base_model)
    answers, reference_failures = _answers(context, tuned, tokenizer, questions, settings, reference_llm, storage, dpo)
    extra = {"base_model": base_label(storage, base_model), "split": EVALUATION_SPLIT}
    metadata = _report(context, "judge_scores", "frozen test split", questions, answers, reference_failures, judge_llm, settings, storage, extra)
    return dg.MaterializeResult(metadata={**metadata, "split": EVALUATION_SPLIT})


@dg.asset(group_name="evaluate", deps=[lora_adapter, dpo_adapter], kinds={"pytorch"}, pool="gpu")
def heldout_loss(storage: DataDirResource, base_model: BaseModelResource) -> dg.MaterializeResult:
    """Loss and perplexity of the reference answers of the whole test split under the base, the SFT
    and the SFT+DPO model: an objective measure beside the judge (lower is better). Test, not validation:
    validation chose the epoch, so its loss is the quantity training was selected on."""
    rows = read_jsonl(storage.layout.alpaca_split(EVALUATION_SPLIT))
    if not rows:
        raise dg.Failure("the test split is empty; materialize instruction_dataset first")
    tuned, tokenizer = sft_model(storage, base_model)
    dpo = _dpo_model(storage, base_model)
    training = json.loads(storage.layout.training_report.read_text())
    max_length = training["settings"]["max_length"]
    losses = _base_and_tuned_loss(tuned, tokenizer, rows, max_length, dpo=dpo)
    result = {**losses, "base_model": base_label(storage, base_model), "split": EVALUATION_SPLIT, "rows": len(rows), "max_length": max_length}
    storage.layout.write_json(storage.layout.report("heldout_loss"), result, indent=2)
    return dg.MaterializeResult(
        metadata={
            "base_loss": losses["base"]["loss"],
            "tuned_loss": losses["tuned"]["loss"],
            "base_perplexity": losses["base"]["perplexity"],
            "tuned_perplexity": losses["tuned"]["perplexity"],
            "answer_tokens": losses["base"]["tokens"],
            "tuned_minus_base_per_question": _difference_text(losses["tuned_minus_base"]),
            **({f"{DPO_MODEL}_loss": losses[DPO_MODEL]["loss"], f"{DPO_MODEL}_perplexity": losses[DPO_MODEL]["perplexity"],
                f"{DPO_MODEL}_minus_tuned_per_question": _difference_text(losses[f"{DPO_MODEL}_minus_tuned"])} if dpo is not None else {}),
            "split": EVALUATION_SPLIT,
            "rows": len(rows),
        }
    )


class MedQuADConfig(JudgeConfig):
    medquad_dir: Optional[str] = Field(
        default=None, description="A MedQuAD copy with mental-health/ (default: $RAGTUNE_MEDQUAD_DIR)."
    )


def medquad_root(configured: Optional[str]) -> Optional[Path]:
    """The configured folder, else $RAGTUNE_MEDQUAD_DIR; None if it lacks mental-health/."""
    chosen = configured or os.environ.get("RAGTUNE_MEDQUAD_DIR")
    return Path(chosen) if chosen and (Path(chosen) / "mental-health").is_dir() else None


@dg.asset(
    group_name="evaluate", deps=[lora_adapter, dpo_adapter], kinds={"pytorch"}, pool="gpu", output_required=False, retry_policy=LLM_RETRY
)
def medquad_scores(
    context: dg.AssetExecutionContext,
    config: MedQuADConfig,
    storage: DataDirResource,
    base_model: BaseModelResource,
    judge_llm: LLMResource,
    reference_llm: LLMResource,
):
    """The same base-vs-tuned comparison on real outside questions: MedQuAD's mental-health slice,
    its NIH answers as references, broken down by category. Skipped when MedQuAD is absent."""
    root = medquad_root(config.medquad_dir)
    if root is None:
        context.log.warning("MedQuAD not found (set medquad_dir or RAGTUNE_MEDQUAD_DIR); medquad_scores skipped")
        return
    settings = JudgeSettings(**{k: v for k, v in config.model_dump().items() if k != "medquad_dir"})
    found, problems = load_medquad(root)
    for problem in problems:
        context.log.warning(problem)
    questions = sample_questions(found, settings.max_questions, settings.seed)
    tuned, tokenizer = sft_model(storage, base_model)
    dpo = _dpo_model(storage, base_model)
    answers, reference_failures = _answers(context, tuned, tokenizer, questions, settings, reference_llm, storage, dpo)
    references = [{"instruction": q.question, "output": q.reference} for q in questions]
    losses = _base_and_tuned_loss(tuned, tokenizer, references, 512, settings.bootstrap_resamples, settings.seed, dpo)
    extra = {"base_model": base_label(storage, base_model), "source": str(root), "available_questions": len(found), "problems": problems,
             "reference_answer_loss": losses}
    metadata = _report(context, "medquad_scores", "MedQuAD", questions, answers, reference_failures, judge_llm, settings, storage, extra)
    metadata.update({"available_questions": len(found), "base_reference_loss": losses["base"]["loss"], "tuned_reference_loss": losses["tuned"]["loss"],
                     "reference_loss_tuned_minus_base": _difference_text(losses["tuned_minus_base"])})
    yield dg.MaterializeResult(metadata=metadata)
