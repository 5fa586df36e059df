"""Rerun cost after editing one chapter, as a ratio of a full run, measured in one process.

Full run: every job of the graph from an empty data folder (real SmolLM2 calls): ingest -> chapters
-> chunks -> index -> evidence -> QA generation, filtering and judging for all N chapters of the
sample handbook, then train_and_judge at its defaults, as make demo runs it (dataset, exports, LoRA, judge_scores, heldout_loss;
medquad_scores skips without MedQuAD). Rerun: one chapter's text edited, the book re-ingested, then
what the daemon would do, in this process: one tick of the fan-out sensor (prepare_chapter for
changed chapters) and automation ticks until nothing more is requested; then train_and_judge again,
since the dataset, adapter and scores are not automated. Both are timed to refreshed QA and to
refreshed scores. Paid LLM calls are counted as new entries of the content-addressed cache, one per
answered call of any stage (generation, the grounded judge, evaluation); a transport failure pays
nothing and writes none. Goal from issue 3: rerun time <= 1.3 / N of the full run.
Writes its section of BENCHMARKS.md.

Usage: .venv/bin/python bench/rerun.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sample_handbook"))

import dagster as dg  # noqa: E402
from build_pdf import build_pdf, source_chapters  # noqa: E402

from pipeline_assets.definitions import PARTITIONED_JOBS, build_defs  # noqa: E402
from pipeline_assets.runner import SMALL_RUN, run_config_for, settle_automation, tick_sensor  # noqa: E402
from ragtune.benchmarks import machine, write_section  # noqa: E402
from resources import DataDirResource  # noqa: E402

STAGES = ["ingest_documents", "prepare_chapter", "build_index", "generate_chapter_qa"]
TRAIN = "train_and_judge"


def paid_calls(data: Path) -> int:
    """Answered LLM calls so far, every stage: the cache holds one entry per answered call."""
    return sum(1 for _ in (data / "cache" / "llm").rglob("*.json"))


class Leg:
    """Seconds, Dagster runs and paid calls of one leg, to refreshed QA and to refreshed scores."""

    def __init__(self, data: Path):
        self.data, self.start, self.calls_before = data, time.perf_counter(), paid_calls(data)
        self.runs, self.qa_s, self.qa_calls = 0, 0.0, 0

    def qa_done(self, runs: int) -> None:
        self.runs, self.qa_s, self.qa_calls = runs, time.perf_counter() - self.start, paid_calls(self.data) - self.calls_before

    def train(self, defs, instance, config) -> None:
        job = defs.resolve_job_def(TRAIN)
        job.execute_in_process(instance=instance, run_config=run_config_for(job, config))
        self.runs += 1
        self.all_s, self.all_calls = time.perf_counter() - self.start, paid_calls(self.data) - self.calls_before


def full_run(defs, instance, config, data: Path) -> Leg:
    leg = Leg(data)
    runs = 0
    for name in STAGES:
        job = defs.resolve_job_def(name)
        keys = sorted(instance.get_dynamic_partitions("chapters")) if name in PARTITIONED_JOBS else [None]
        for key in keys:
            job.execute_in_process(instance=instance, partition_key=key, run_config=run_config_for(job, config))
            runs += 1
    leg.qa_done(runs)
    leg.train(defs, instance, config)
    return leg


def automated_rerun(defs, instance, config, automation_cursor, data: Path) -> Leg:
    """Re-ingest, one fan-out sensor tick, automation until settled, then train_and_judge."""
    leg = Leg(data)
    sensor_cursor = str(instance.fetch_materializations(dg.AssetKey("parsed_documents"), limit=1).records[0].storage_id)
    ingest = defs.resolve_job_def("ingest_documents")
    ingest.execute_in_process(instance=instance, run_config=run_config_for(ingest, config))
    runs = 1 + len(tick_sensor(defs, instance, "chapter_fanout_sensor", sensor_cursor, config)[1])
    runs += len(settle_automation(defs, instance, automation_cursor, config)[1])
    leg.qa_done(runs)
    leg.train(defs, instance, config)
    return leg


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        book, data = Path(tmp) / "book.pdf", Path(tmp) / "data"
        chapters = source_chapters()
        build_pdf(chapters, book)
        defs = build_defs({"storage": DataDirResource(data_dir=str(data))})
        config = {**SMALL_RUN, "parsed_documents": {"paths": [str(book)]}}
        with dg.instance_for_test() as instance:
            full = full_run(defs, instance, config, data)
            cursor, _ = settle_automation(defs, instance, None, config)  # the daemon's state after the full run
            chapters[1].sections[0].blocks[0].text += " Anxiety disorders are also common in older adults."
            build_pdf(chapters, book)
            rerun = automated_rerun(defs, instance, config, cursor, data)
            n = len(instance.get_dynamic_partitions("chapters"))
    lines = [
        "## Rerun after editing one chapter (bench/rerun.py)",
        "",
        f"Sample handbook, N = {n} chapters, embedded SmolLM2 via llama.cpp, {date.today().isoformat()}, {machine()}.",
        "Full run: every job of the graph, from an empty data folder. Rerun: re-ingest, the fan-out sensor and the",
        "automation conditions, run in process until settled (only chapters whose retrieved evidence changed",
        "regenerate QA), then train_and_judge. Paid calls: new LLM cache entries, every stage (generation,",
        "grounded judge, evaluation judge). Seconds and calls to refreshed QA, and to refreshed adapter and scores.",
        "",
        "| run | seconds to QA | paid calls to QA | seconds to scores | paid calls to scores | Dagster runs |",
        "|---|---|---|---|---|---|",
        f"| full run (empty data folder) | {full.qa_s:.1f} | {full.qa_calls} | {full.all_s:.1f} | {full.all_calls} | {full.runs} |",
        f"| rerun, 1 of {n} chapters edited | {rerun.qa_s:.1f} | {rerun.qa_calls} | {rerun.all_s:.1f} | {rerun.all_calls} | {rerun.runs} |",
        "",
        f"rerun/full to QA: {rerun.qa_s / full.qa_s:.2f}× time, {rerun.qa_calls / max(1, full.qa_calls):.2f}× paid calls "
        f"(goal ≤ 1.3/N = {1.3 / n:.2f}×). To scores: {rerun.all_s / full.all_s:.2f}× time "
        f"({rerun.all_calls / max(1, full.all_calls):.2f}× calls): training and evaluation rerun whole on the changed dataset.",
        "",
    ]
    section = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", lines[0], section)
    print(section)
    print(json.dumps({"full": vars(full) | {"data": None}, "rerun": vars(rerun) | {"data": None}}, default=str))


if __name__ == "__main__":
    main()
