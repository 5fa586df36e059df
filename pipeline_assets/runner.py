"""Materialize the whole graph in order, each chapter partition in its own run.

Used by `make demo` (against the project's DAGSTER_HOME, so the UI shows the runs afterwards)
and by the end-to-end test (against a temporary instance).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import dagster as dg

from pipeline_assets.definitions import PARTITIONED_JOBS, STAGE_JOBS, build_defs
from pipeline_assets.partitions import CHAPTERS


def run_config_for(job_def: dg.JobDefinition, config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Only the config of assets inside this job (Dagster rejects config for ops it does not run)."""
    names = {node.name for node in job_def.graph.nodes}
    return {
        "ops": {name: {"config": values} for name, values in config.items() if name in names},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }


def materialize_graph(
    instance: dg.DagsterInstance,
    config: dict[str, dict[str, Any]] | None = None,
    resources: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run every stage job; returns one record per run (job, partition, seconds). Raises on a failed run."""
    config = config or {}
    defs_to_use = build_defs(resources)
    records = []
    for job in STAGE_JOBS:
        job_def = defs_to_use.resolve_job_def(job.name)
        keys = sorted(instance.get_dynamic_partitions(CHAPTERS)) if job.name in PARTITIONED_JOBS else [None]
        for key in keys:
            start = time.monotonic()
            result = job_def.execute_in_process(
                instance=instance, partition_key=key, run_config=run_config_for(job_def, config), raise_on_error=True
            )
            seconds = round(time.monotonic() - start, 1)
            records.append({"job": job.name, "partition": key or "-", "seconds": seconds, "run_id": result.run_id})
            log(f"  {job.name:<22} {key or '':<45} {seconds:>7.1f} s")
    return records

