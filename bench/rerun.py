"""Rerun cost after editing one chapter, as a ratio of a full run, measured in one process.

Full run: ingest -> chapters -> chunks -> index -> QA generation for all N chapters of the sample
handbook, from an empty data folder (real SmolLM2 calls). Rerun: one chapter's text edited, the
book re-ingested, and every stage run again for every chapter: unchanged work is skipped by the
content-addressed LLM cache, so the ratio shows what the cache saves. Goal from issue 3: rerun
time <= 1.3 / N of the full run. Writes its section of BENCHMARKS.md.

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
from pipeline_assets.runner import run_config_for  # noqa: E402
from resources import DataDirResource  # noqa: E402

STAGES = ["ingest_documents", "prepare_chapter", "build_index", "generate_chapter_qa"]


def run_stages(defs, instance, config) -> tuple[float, int]:
    """Seconds for all stages over all chapter partitions, and the LLM calls that were paid."""
    start = time.perf_counter()
    calls = 0
    for name in STAGES:
        job = defs.resolve_job_def(name)
        keys = sorted(instance.get_dynamic_partitions("chapters")) if name in PARTITIONED_JOBS else [None]
        for key in keys:
            result = job.execute_in_process(instance=instance, partition_key=key, run_config=run_config_for(job, config))
            for event in result.get_asset_materialization_events():
                meta = event.materialization.metadata
                calls += int(meta["llm_calls"].value) if "llm_calls" in meta else 0
    return time.perf_counter() - start, calls


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp) / "book.pdf"
        chapters = source_chapters()
        build_pdf(chapters, book)
        defs = build_defs({"storage": DataDirResource(data_dir=str(Path(tmp) / "data"))})
        config = {"parsed_documents": {"paths": [str(book)]}}
        with dg.instance_for_test() as instance:
            full_s, full_calls = run_stages(defs, instance, config)
            chapters[1].sections[0].blocks[0].text += " Anxiety disorders are also common in older adults."
            build_pdf(chapters, book)
            rerun_s, rerun_calls = run_stages(defs, instance, config)
            n = len(instance.get_dynamic_partitions("chapters"))
    ratio = rerun_s / full_s
    lines = [
        "## Rerun after editing one chapter (bench/rerun.py)",
        "",
        f"Sample handbook, N = {n} chapters, embedded SmolLM2 via llama.cpp, {date.today().isoformat()}, {machine()}.",
        "Both runs execute every stage for every chapter; the edited chapter's new text changes its chunks, and",
        "calls whose prompt (retrieved evidence included) is unchanged come from the cache.",
        "",
        "| run | seconds | LLM calls paid |",
        "|---|---|---|",
        f"| full run (empty data folder) | {full_s:.1f} | {full_calls} |",
        f"| rerun, 1 of {n} chapters edited | {rerun_s:.1f} | {rerun_calls} |",
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
