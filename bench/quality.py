"""The paper's evaluation, reproduced on CPU with the embedded models, in one run of the whole graph:

the sample handbook at a real quota (25 kept pairs per chapter by default), Table II (rows per
split per chapter), a LoRA adapter trained on train with early stopping on validation, then on
the frozen test split and on MedQuAD's reference answers: base vs tuned answer loss with a paired
bootstrap 95% interval of the per-question difference, and the judge's totals, win/tie/loss and
intervals. The embedded judge (SmolLM2-135M) is weak: its totals show the machinery, the answer
loss is the objective measure. Writes its section of BENCHMARKS.md with the adapter path.

Usage: .venv/bin/python bench/quality.py [--quota 25] [--epochs 8] [--medquad ../shared/data/medquad]
       [--medquad-questions 40] [--data data/bench/quality]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from pipeline_assets.runner import materialize_graph  # noqa: E402
from ragtune.benchmarks import machine, write_section  # noqa: E402
from ragtune.curate.dataset_card import markdown_rows, with_total  # noqa: E402
from ragtune.evaluate.judge_check import verdict_text  # noqa: E402
from ragtune.layout import DataLayout  # noqa: E402
from resources import DataDirResource  # noqa: E402

SHARED_MEDQUAD = ROOT.parent / "shared" / "data" / "medquad"


def difference_text(difference: dict) -> str:
    ci = difference["ci95"]
    interval = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "(too few questions)"
    verdict = ("tuned lower: the interval excludes 0" if ci and ci[1] < 0 else
               "tuned higher: the interval excludes 0" if ci and ci[0] > 0 else "no verdict: the interval holds 0")
    return (f"{difference['mean_difference']:+.3f} {interval} over {difference['questions']} questions, tuned lower on "
            f"{difference['tuned_lower']} and higher on {difference['tuned_higher']}; {verdict}")


def judge_lines(report: dict) -> list[str]:
    summary = report["summary"]
    lines = ["| model | total | max | mean [95% CI] |", "|---|---|---|---|"]
    for name, m in summary["models"].items():
        ci = f" [{m['ci95'][0]}, {m['ci95'][1]}]" if m["ci95"] else ""
        lines.append(f"| {name} | {m['total']} | {m['max_total']} | {m['mean']}{ci} |")
    pair = summary["tuned_vs_base"]
    ci = pair["win_rate_ci95"]
    lines += ["", f"tuned vs base, both orders: {verdict_text(pair, report)}; "
              f"win rate {pair['win_rate']}" + (f" [{ci[0]}, {ci[1]}]" if ci else "") + f". Judge: {report['judge_note']}"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quota", type=int, default=25, help="kept pairs wanted per chapter")
    parser.add_argument("--epochs", type=float, default=8.0, help="LoRA epochs at most; validation stops it earlier")
    parser.add_argument("--medquad", type=Path, default=SHARED_MEDQUAD, help="a MedQuAD copy with mental-health/")
    parser.add_argument("--medquad-questions", type=int, default=40)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bench" / "quality", help="data folder (emptied first)")
    args = parser.parse_args()
    shutil.rmtree(args.data, ignore_errors=True)
    layout = DataLayout(args.data)
    config = {
        "parsed_documents": {"paths": [str(ROOT / "sample_handbook" / "handbook.pdf")]},
        "chapter_evidence": {"rounds": 8 * args.quota},
        "qa_candidates": {"quota": args.quota},
        "lora_adapter": {"epochs": args.epochs},
        "judge_scores": {"max_questions": 0},
        "medquad_scores": {"max_questions": args.medquad_questions, "medquad_dir": str(args.medquad)},
    }
    start = time.perf_counter()
    with dg.instance_for_test() as instance:
        records = materialize_graph(instance, config, {"storage": DataDirResource(data_dir=str(args.data))})
    minutes = (time.perf_counter() - start) / 60
    seconds_per_job: dict[str, float] = defaultdict(float)
    for record in records:
        seconds_per_job[record["job"]] += record["seconds"]

    curation = json.loads(layout.curation_report.read_text())
    table = [{**row, "quota met": "yes" if layout.read_json(layout.generation_status(row["chapter_key"]), {}).get("quota_met") else "no"}
             for row in curation["rows_per_chapter"]]
    training = json.loads(layout.training_report.read_text())
    test = json.loads(layout.report("heldout_loss").read_text())
    judge = json.loads(layout.report("judge_scores").read_text())
    medquad_path = layout.report("medquad_scores")
    medquad = json.loads(medquad_path.read_text()) if medquad_path.exists() else None

    best = min(training["eval_losses"], key=lambda e: e["eval_loss"]) if training["eval_losses"] else None
    lines = [
        "## The paper's evaluation on CPU (bench/quality.py)",
        "",
        f"{machine()}, {date.today().isoformat()}: the whole graph on the sample handbook, embedded SmolLM2-135M generating, "
        f"judging and being tuned, quota {args.quota} kept pairs per chapter; {minutes:.0f} min in all "
        f"({', '.join(f'{job} {s / 60:.1f} min' for job, s in seconds_per_job.items())}). Adapter: `{layout.adapter_dir}`.",
        "",
        "Table II, rows per split per chapter (validation chose the epoch; test was seen by neither training nor that choice):",
        "",
        markdown_rows(with_total([{k: v for k, v in r.items() if k != "quota met"} for r in table], "chapter_key")),
        "",
        "Quota met: " + ", ".join(f"{r['chapter_key']} {r['quota met']}" for r in table) + ". Removed by reason: "
        + ", ".join(f"{r['removed_by']} {r['rows']}" for r in curation["removed_by"]) + ".",
        "",
        f"LoRA ({training['train_rows']} train rows, {training['eval_rows']} validation rows, at most {args.epochs:g} epochs): "
        f"{training['epochs_run']:g} epochs run, stopped early: {training['stopped_early']}; validation loss per epoch "
        + ", ".join(f"{e['epoch']:g}: {e['eval_loss']:.3f}" for e in training["eval_losses"])
        + (f"; kept epoch {best['epoch']:g}." if best else "."),
        "",
        "Answer loss (mean per answer token) of the reference answers, base vs tuned, and the paired per-question "
        "difference tuned minus base with its bootstrap 95% interval:",
        "",
        "| question set | questions | base loss | tuned loss | tuned − base per question |",
        "|---|---|---|---|---|",
        f"| test split | {test['rows']} | {test['base']['loss']:.3f} | {test['tuned']['loss']:.3f} | {difference_text(test['tuned_minus_base'])} |",
    ]
    if medquad:
        loss = medquad["reference_answer_loss"]
        lines.append(f"| MedQuAD mental health, NIH reference answers | {loss['tuned_minus_base']['questions']} | {loss['base']['loss']:.3f} | "
                     f"{loss['tuned']['loss']:.3f} | {difference_text(loss['tuned_minus_base'])} |")
    else:
        lines.append(f"| MedQuAD | - | - | - | not run: no MedQuAD at {args.medquad} |")
    lines += ["", f"Judge on the test split ({judge['summary']['questions']} questions):", "", *judge_lines(judge), ""]
    if medquad:
        lines += [f"Judge on MedQuAD ({medquad['summary']['questions']} questions, NIH answers as references):", "", *judge_lines(medquad), ""]
    section = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", lines[0], section)
    print(section)


if __name__ == "__main__":
    main()
