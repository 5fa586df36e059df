"""`make demo`: materialize the whole graph on the bundled sample handbook with embedded defaults,
then print where the dataset, adapter and scores are, and the scores table. It writes its own timings
(reports/demo_timings.json, and its section of BENCHMARKS.md in a checkout), so the docs quote a
measured run, not a typed number."""

from __future__ import annotations

import json
import os
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")  # model-loading progress bars
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)

from collections import Counter  # noqa: E402
from datetime import date  # noqa: E402

import dagster as dg  # noqa: E402

from pipeline_assets.runner import DEMO_RUN, materialize_graph  # noqa: E402
from ragtune.benchmarks import BENCHMARKS, machine, write_section  # noqa: E402
from ragtune.evaluate.judge_check import verdict_text  # noqa: E402
from resources.storage import DataDirResource  # noqa: E402

NEXT_STEPS = """
Next:
  make ui                                     the runs, the asset graph and the chapters at http://127.0.0.1:3000;
                                              drop a PDF into inbox/<category>/ and its QA and the dataset follow
  .venv/bin/ragtune estimate ~/my-docs/       calls, tokens and cost of a run on your own folder (no LLM call)
  .venv/bin/ragtune run ~/my-docs/ --categories-from folder
  .venv/bin/ragtune run ~/my-docs/ --backend openai --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
                                              a real model behind any OpenAI-compatible endpoint (docs/backends.md)
  .venv/bin/ragtune status                    per chapter: fresh or stale, kept/quota, failures, tokens, cost
"""


def write_timings(storage: DataDirResource, records: list[dict], seconds: float) -> None:
    """Seconds per job (summed over its partitions) and in all, as this run measured them."""
    per_job = Counter()
    runs = Counter()
    for record in records:
        per_job[record["job"]] += record["seconds"]
        runs[record["job"]] += 1
    timings = {"date": date.today().isoformat(), "machine": machine(), "total_seconds": round(seconds, 1),
               "jobs": [{"job": job, "runs": runs[job], "seconds": round(total, 1)} for job, total in per_job.items()]}
    storage.layout.write_json(storage.layout.report("demo_timings"), timings)
    if BENCHMARKS.exists():  # a checkout: keep the docs' timing the measured one
        lines = ["## make demo (written by the demo)", "",
                 f"{timings['machine']}, {timings['date']}: {seconds / 60:.1f} min after install, the whole graph on the "
                 "sample handbook with embedded defaults (pipeline_assets/runner.py DEMO_RUN: quota "
                 f"{DEMO_RUN['qa_candidates']['quota']} per chapter, {DEMO_RUN['judge_scores']['max_questions']} judged test questions, "
                 f"{DEMO_RUN['pt_adapter']['max_steps']} PT steps, {DEMO_RUN['lora_adapter']['epochs']:g} LoRA epochs, DPO pairs without the judge; the embedded model runs as Q8_0, "
                 "bench/llamacpp_quant.py).", "",
                 "| job | runs | seconds |", "|---|---|---|"]
        lines += [f"| {j['job']} | {j['runs']} | {j['seconds']:.1f} |" for j in timings["jobs"]]
        write_section(BENCHMARKS, lines[0], "\n".join(lines + [""]))


def main() -> None:
    storage = DataDirResource()
    start = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        print(f"ragtune demo: DAGSTER_HOME={instance.root_directory}  data={storage.root}")
        records = materialize_graph(instance, DEMO_RUN)
    seconds = time.monotonic() - start
    write_timings(storage, records, seconds)
    minutes = seconds / 60
    report = json.loads(storage.layout.report("judge_scores").read_text())
    models = report["summary"]["models"]
    print(f"\nDone in {minutes:.1f} min. Outputs:")
    print(f"  dataset : {storage.layout.dataset_dir}  (train/validation/test.jsonl: alpaca; rows/: full rows with evidence)")
    print(f"  exports : {storage.layout.exports_dir}  (alpaca, ShareGPT, OpenAI messages, counselling input/target, hf_dataset/, "
          "PT corpus pt_train.jsonl + hf_pt/, dataset_info.json, README.md dataset card)")
    print(f"  adapter : {storage.layout.adapter_dir}  (PEFT LoRA; loss curve in reports/); DPO step on top: {storage.layout.dpo_adapter_dir}")
    print(f"  scores  : {storage.layout.report('judge_scores')}  (+ heldout_loss.json, charts; medquad_scores.json "
          "when RAGTUNE_MEDQUAD_DIR points at MedQuAD; demo_timings.json)")
    agreement = report.get("judge_agreement")
    judge = f"{report['judge_model']}, judge-check agreement {agreement if agreement is not None else 'not measured'}" + (
        ", weak" if report["judge_weak"] else "")
    print(f"\nJudge scores over {report['summary']['questions']} frozen test questions ({judge}):")
    print(f"  {'model':<10}{'total':>7}{'max':>6}{'mean':>8}  95% CI")
    for name, values in models.items():
        mean = f"{values['mean']:.2f}" if values["mean"] is not None else "n/a"
        ci = f"[{values['ci95'][0]:.2f}, {values['ci95'][1]:.2f}]" if values["ci95"] else "n/a"
        print(f"  {name:<10}{values['total']:>7}{values['max_total']:>6}{mean:>8}  {ci}")
    pair = report["summary"]["tuned_vs_base"]
    print(f"  tuned vs base, both orders: {verdict_text(pair, report)}")
    judged = report["summary"]["judged"]
    print(f"  judged: {judged['answers_graded']} of {judged['answers_asked']} answers graded, {judged['comparisons_judged']} of "
          f"{judged['comparisons_asked']} comparisons; failures in {storage.layout.evaluation_failures('judge_scores')}")
    loss = json.loads(storage.layout.report("heldout_loss").read_text())
    print("  test answer loss: " + ", ".join(f"{name} {loss[name]['loss']:.3f} (ppl {loss[name]['perplexity']:.1f})"
                                             for name in ("base", "tuned", "tuned_dpo") if name in loss))
    print(f"  (a first look: {report['summary']['questions']} questions and {report['judge_note']}; see README 'About the numbers')")
    print(NEXT_STEPS)


if __name__ == "__main__":
    main()
