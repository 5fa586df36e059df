"""Rerun cost after editing one chapter, as a ratio of a full run, measured in one process.

Full run: ingest -> chapters -> chunks -> index -> evidence -> QA generation for all N chapters of
the sample handbook, from an empty data folder (real SmolLM2 calls), by the stage jobs. Rerun: one
chapter's text edited, the book re-ingested, then what the daemon would do, in this process: one
tick of the fan-out sensor (prepare_chapter for changed chapters) and automation ticks until
nothing more is requested. Goal from issue 3: rerun time <= 1.3 / N of the full run.
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

from bench.parse import machine, write_section  # noqa: E402
from pipeline_assets.definitions import PARTITIONED_JOBS, build_defs  # noqa: E402
from pipeline_assets.runner import SMALL_RUN, run_config_for, settle_automation, tick_sensor  # noqa: E402
from resources import DataDirResource  # noqa: E402

STAGES = ["ingest_documents", "prepare_chapter", "build_index", "generate_chapter_qa"]


def llm_calls(results) -> int:
    return sum(
        int(event.materialization.metadata["llm_calls"].value)
        for result in results
        for event in result.get_asset_materialization_events()
        if "llm_calls" in event.materialization.metadata
    )


def full_run(defs, instance, config) -> tuple[float, int, int]:
    """Seconds for all stage jobs over all chapter partitions, LLM calls paid, runs."""
    start = time.perf_counter()
    results = []
    for name in STAGES:
        job = defs.resolve_job_def(name)
        keys = sorted(instance.get_dynamic_partitions("chapters")) if name in PARTITIONED_JOBS else [None]
        for key in keys:
            results.append(job.execute_in_process(instance=instance, partition_key=key, run_config=run_config_for(job, config)))
    return time.perf_counter() - start, llm_calls(results), len(results)


def automated_rerun(defs, instance, config, automation_cursor) -> tuple[float, int, int]:
    """Re-ingest, one fan-out sensor tick, automation until settled: seconds, LLM calls, runs."""
    start = time.perf_counter()
    sensor_cursor = str(instance.fetch_materializations(dg.AssetKey("parsed_documents"), limit=1).records[0].storage_id)
    ingest = defs.resolve_job_def("ingest_documents")
    results = [ingest.execute_in_process(instance=instance, run_config=run_config_for(ingest, config))]
    results += tick_sensor(defs, instance, "chapter_fanout_sensor", sensor_cursor, config)[1]
    results += settle_automation(defs, instance, automation_cursor, config)[1]
    return time.perf_counter() - start, llm_calls(results), len(results)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp) / "book.pdf"
        chapters = source_chapters()
        build_pdf(chapters, book)
        defs = build_defs({"storage": DataDirResource(data_dir=str(Path(tmp) / "data"))})
        config = {**SMALL_RUN, "parsed_documents": {"paths": [str(book)]}}
        with dg.instance_for_test() as instance:
            full_s, full_calls, full_runs = full_run(defs, instance, config)
            cursor, _ = settle_automation(defs, instance, None, config)  # the daemon's state after the full run
            chapters[1].sections[0].blocks[0].text += " Anxiety disorders are also common in older adults."
            build_pdf(chapters, book)
            rerun_s, rerun_calls, rerun_runs = automated_rerun(defs, instance, config, cursor)
            n = len(instance.get_dynamic_partitions("chapters"))
    ratio = rerun_s / full_s
    lines = [
        "## Rerun after editing one chapter (bench/rerun.py)",
        "",
        f"Sample handbook, N = {n} chapters, embedded SmolLM2 via llama.cpp, {date.today().isoformat()}, {machine()}.",
        "Full run: every stage job for every chapter. Rerun: re-ingest, the fan-out sensor and the automation",
        "conditions, run in process until settled; only chapters whose retrieved evidence changed regenerate QA.",
        "",
        "| run | seconds | Dagster runs | LLM calls paid |",
        "|---|---|---|---|",
        f"| full run (empty data folder) | {full_s:.1f} | {full_runs} | {full_calls} |",
        f"| rerun, 1 of {n} chapters edited | {rerun_s:.1f} | {rerun_runs} | {rerun_calls} |",
        "",
        f"rerun/full: {ratio:.2f}× (goal ≤ 1.3/N = {1.3 / n:.2f}×)",
        "",
    ]
    section = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", lines[0], section)
    print(section)
    print(json.dumps({"full_s": full_s, "rerun_s": rerun_s, "full_calls": full_calls, "rerun_calls": rerun_calls}))


if __name__ == "__main__":
    main()
