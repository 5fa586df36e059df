"""Judge scores: base vs LoRA-tuned answers to the eval questions, graded 1-10 by an LLM judge."""

import json
from datetime import datetime, timezone

import dagster as dg

from pipeline_assets.config import config_from_settings
from pipeline_assets.metadata import table
from pipeline_assets.train import lora_adapter
from ragtune.dataset import read_jsonl
from ragtune.dataset_card import markdown_rows
from ragtune.judge import GradeItem, JudgeSettings, answer_questions, grade_many, summarize
from ragtune.plots import markdown_image, score_bars
from resources.base_model import BaseModelResource
from resources.llm import LLMResource
from resources.storage import DataDirResource


JudgeConfig = config_from_settings("JudgeConfig", JudgeSettings, "How many eval questions, answer length, judge sampling.")


@dg.asset(group_name="evaluate", deps=[lora_adapter], kinds={"pytorch", "llama-cpp"}, pool="gpu")
def judge_scores(
    context: dg.AssetExecutionContext,
    config: JudgeConfig,
    storage: DataDirResource,
    base_model: BaseModelResource,
    llm: LLMResource,
) -> dg.MaterializeResult:
    """Eval questions answered by the base and the tuned model, each answer graded 1-10 by the judge
    against the reference answer and evidence; totals per model as in the paper (726 vs 592)."""
    from peft import PeftModel

    rows = read_jsonl(storage.path("dataset", "eval.jsonl"))[: config.max_questions]
    if not rows:
        raise dg.Failure("the eval split is empty; materialize instruction_dataset first")
    evidence_by_id = {r["qa_id"]: r for r in read_jsonl(storage.path("dataset", "rows", "eval.jsonl"))}
    model, tokenizer = base_model.load(storage.root)
    tuned = PeftModel.from_pretrained(model, str(storage.path("adapter", "adapter_config.json").parent))
    questions = [r["instruction"] for r in rows]
    with tuned.disable_adapter():
        base_answers = answer_questions(tuned, tokenizer, questions, config.max_new_tokens)
    tuned_answers = answer_questions(tuned, tokenizer, questions, config.max_new_tokens)
    judge = llm.client(storage.path("cache", "llm", "x").parent)
    settings = JudgeSettings(**config.model_dump())
    evidence = ["\n\n".join(e["text"] for e in evidence_by_id.get(row["id"], {}).get("evidence", [])[:3]) for row in rows]
    items = [
        GradeItem(row["instruction"], row["output"], passages, answer)
        for answers in (base_answers, tuned_answers)
        for row, passages, answer in zip(rows, evidence, answers)
    ]
    grades = grade_many(judge, items, settings)  # one batch: base answers, then tuned answers
    graded = [
        {
            "id": row["id"],
            "chapter_key": row["chapter_key"],
            "question": row["instruction"],
            "reference": row["output"],
            "base": {"answer": base_answer, **grades[i]},
            "tuned": {"answer": tuned_answer, **grades[len(rows) + i]},
        }
        for i, (row, base_answer, tuned_answer) in enumerate(zip(rows, base_answers, tuned_answers))
    ]
    summary = summarize(graded, ["base", "tuned"])
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "judge_model": judge.model_id,
        "judge_note": "the embedded 135M judge is weak: these scores demonstrate the machinery, not model quality",
        "base_model": str(base_model.resolved_gguf()),
        "summary": summary,
        "questions": graded,
    }
    path = storage.path("reports", "judge_scores.json")
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    totals = {name: m["total"] for name, m in summary["models"].items()}
    plot = score_bars(totals, storage.path("reports", "judge_totals.png"), f"judge totals over {len(graded)} questions")
    score_rows = [
        {"model": name, "total": m["total"], "max": m["max_total"], "mean": m["mean"] if m["mean"] is not None else "n/a"}
        for name, m in summary["models"].items()
    ]
    return dg.MaterializeResult(
        metadata={
            "questions": len(graded),
            "base_total": totals["base"],
            "tuned_total": totals["tuned"],
            "scores": table(score_rows),
            "scores_markdown": dg.MetadataValue.md(markdown_rows(score_rows)),
            "totals_chart": dg.MetadataValue.md(markdown_image(plot, "judge totals")),
            "judge_model": judge.model_id,
            "per_question": table(
                [{"question": g["question"][:80], "base": str(g["base"]["score"]), "tuned": str(g["tuned"]["score"])} for g in graded]
            ),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
