"""Materialize the whole graph in order, each chapter partition in its own run; and, for tests and
benchmarks, the daemon's sensor and automation ticks executed in this process.

Used by `make demo` (against the project's DAGSTER_HOME, so the UI shows the runs afterwards)
and by the end-to-end test and bench/rerun.py (against a temporary instance).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import dagster as dg

from pipeline_assets.definitions import PARTITIONED_JOBS, STAGE_JOBS, build_defs
from pipeline_assets.partitions import CHAPTERS
from pipeline_assets.run_control import process_tags
from resources.storage import DataDirResource

# The embedded 135M model on a CPU keeps about a quarter of what it writes: the demo, the end-to-end
# test and the rerun bench ask for a few kept pairs per chapter instead of the paper's 80.
# The PT rung takes two optimizer steps there (a full epoch of the handbook's text is minutes on 2 cores).
SMALL_RUN = {"chapter_evidence": {"rounds": 16}, "qa_candidates": {"quota": 2, "max_waves": 3}, "pt_adapter": {"max_steps": 2}}
# `make demo` is a first look, not an evaluation: it also grades 3 test questions instead of 8 (each one
# costs four judge calls of the 135M model, ~6 s each on 2 cores), trains 2 epochs instead of 3, and
# makes its DPO pairs without the judge (the embedded judge ties every comparison; each costs four calls).
# MedQuAD runs only when RAGTUNE_MEDQUAD_DIR points at it.
DEMO_RUN = {**SMALL_RUN, "judge_scores": {"max_questions": 3}, "lora_adapter": {"epochs": 2.0},
            "preference_pairs": {"judged_questions": 0, "reference_questions": 8}}


def run_config_for(job_def: dg.JobDefinition, config: dict[str, dict[str, Any]], console_level: str = "WARNING") -> dict[str, Any]:
    """Only the config of assets inside this job (Dagster rejects config for ops it does not run)."""
    names = {node.name for node in job_def.graph.nodes}
    return {
        "ops": {name: {"config": values} for name, values in config.items() if name in names},
        "loggers": {"console": {"config": {"log_level": console_level}}},
    }


Before = Callable[[str, "str | None", dict[str, dict[str, Any]]], "dict[str, dict[str, Any]] | None"]
After = Callable[[str, "str | None", dg.ExecuteInProcessResult], None]


def parsed_chapter_keys(storage: DataDirResource) -> list[str]:
    """The chapters of the documents parsed last (partitions of documents no longer given are left alone)."""
    return storage.layout.parsed_chapter_keys() or []


def materialize_graph(
    instance: dg.DagsterInstance,
    config: dict[str, dict[str, Any]] | None = None,
    resources: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    jobs: list[str] | None = None,
    only: list[str] | None = None,
    before: Before | None = None,
    after: After | None = None,
    without: set[str] | None = None,
    console_level: str = "WARNING",
) -> list[dict[str, Any]]:
    """Run the stage jobs (all, or those named in `jobs`, in graph order), partitioned ones for the
    chapters of the documents parsed last, or only those in `only`; returns one record per run (job,
    partition, seconds). before(job, partition, config) may change a run's config or skip it (None);
    after(job, partition, result) sees each run; assets named in `without` are left out of their job.
    console_level: what the steps' log prints here (the CLI prints warnings itself, after the step).
    Every run carries this process's tags (run_control), so a run it leaves behind is known.
    Raises on a failed run."""
    config = config or {}
    defs_to_use = build_defs(resources)
    storage = (resources or {}).get("storage") or DataDirResource()
    records = []
    for job in STAGE_JOBS:
        if jobs is not None and job.name not in jobs:
            continue
        job_def = defs_to_use.resolve_job_def(job.name)
        selection = None
        if without:
            kept = [key for key in job_def.asset_layer.executable_asset_keys if key.to_user_string() not in without]
            if not kept:
                continue
            selection = kept if len(kept) < len(job_def.asset_layer.executable_asset_keys) else None
        if job.name in PARTITIONED_JOBS:
            known = set(instance.get_dynamic_partitions(CHAPTERS))
            keys = [k for k in parsed_chapter_keys(storage) if k in known and (only is None or k in only)]
        else:
            keys = [None]
        for key in keys:
            run_config = before(job.name, key, config) if before else config
            if run_config is None:
                log(f"  {job.name:<22} {key or '':<45} skipped")
                continue
            start = time.monotonic()
            result = _execute(job_def, instance, key, run_config, selection, console_level)
            seconds = round(time.monotonic() - start, 1)
            records.append({"job": job.name, "partition": key or "-", "seconds": seconds, "run_id": result.run_id})
            log(f"  {job.name:<22} {key or '':<45} {seconds:>7.1f} s")
            if after:
                after(job.name, key, result)
    return records


def _execute(job_def: dg.JobDefinition, instance, partition: str | None, config, selection=None,
             console_level: str = "WARNING") -> dg.ExecuteInProcessResult:
    run_config = run_config_for(job_def, config, console_level)
    if selection is not None:
        names = {key.to_user_string() for key in selection}
        run_config["ops"] = {name: value for name, value in run_config["ops"].items() if name in names}
    return job_def.execute_in_process(
        instance=instance, partition_key=partition, asset_selection=selection, run_config=run_config, raise_on_error=True,
        tags=process_tags(),
    )


def tick_sensor(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursor: str | None, config: dict[str, dict[str, Any]]
) -> tuple[str | None, list[dg.ExecuteInProcessResult]]:
    """One sensor tick as the daemon would run it: evaluate, then execute every run it requests."""
    sensor = defs.resolve_sensor_def(name)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources)
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    job_def = defs.resolve_job_def(sensor.job_name)
    runs = [_execute(job_def, instance, r.partition_key, config) for r in result.run_requests or []]
    return result.cursor, runs


def settle_automation(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    cursor: Any,
    config: dict[str, dict[str, Any]],
    max_ticks: int = 20,
) -> tuple[Any, list[dg.ExecuteInProcessResult]]:
    """Evaluate the automation conditions and execute what they request, one run per partition,
    tick after tick until nothing more is requested: the daemon's work, in this process.
    The cursor is the automation state from the previous call (None: a first evaluation)."""
    job_def = defs.resolve_implicit_global_asset_job_def()
    runs = []
    for _ in range(max_ticks):
        evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = evaluation.cursor
        by_partition: dict[str | None, list[dg.AssetKey]] = {}
        for asset_key in defs.resolve_all_asset_keys():
            for partition in evaluation.get_requested_partitions(asset_key):
                by_partition.setdefault(partition, []).append(asset_key)
        if not by_partition:
            return cursor, runs
        for partition, keys in sorted(by_partition.items(), key=lambda item: item[0] or ""):
            runs.append(_execute(job_def, instance, partition, config, keys))
    raise RuntimeError(f"automation still requesting runs after {max_ticks} ticks")
