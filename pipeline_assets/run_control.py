"""Runs this process makes, as the instance sees them: tagged with the process that executes them, so
a later `ragtune run` can tell a run left STARTED by a killed process (its process is gone) from one
still going, mark it failed and free the pool slots it held; and a stop that cancels this process's
runs and frees theirs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg
import psutil

HOST, PID, PID_STARTED = "ragtune/host", "ragtune/pid", "ragtune/pid_started"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
POOLS = ("llm", "gpu")
PROJECT_INSTANCE = Path(__file__).resolve().parent.parent / "dagster.yaml"


def instance_home() -> Path:
    """The project's DAGSTER_HOME (as `make ui` uses it): .dagster_home here unless the variable says
    otherwise; a new one gets the project's dagster.yaml (an empty one where the package has none)."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(PROJECT_INSTANCE.read_text() if PROJECT_INSTANCE.is_file() else "")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _started(pid: int) -> str:
    """The process's start time: with the pid, it names one process (pids are reused)."""
    return f"{psutil.Process(pid).create_time():.2f}"


def process_tags() -> dict[str, str]:
    """The tags every run this process executes carries."""
    return {HOST: socket.gethostname(), PID: str(os.getpid()), PID_STARTED: _started(os.getpid())}


def _alive(tags: dict[str, str]) -> bool:
    try:
        return _started(int(tags[PID])) == tags.get(PID_STARTED)
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
        return False


def _unfinished(instance: dg.DagsterInstance, tags: dict[str, str] | None = None) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED, tags=tags or {})))


def reap_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Runs of this host whose process is gone (kill -9, a closed terminal) are marked failed and their
    pool slots freed; one line each. A run with no process tags that holds a pool slot is named, not
    touched (the UI's or a daemon's: run monitoring frees those)."""
    lines = []
    for run in _unfinished(instance, {HOST: socket.gethostname()}):
        if _alive(run.tags):
            continue
        message = f"its process {run.tags.get(PID)} is gone (killed, or its terminal closed)"
        instance.report_run_failed(run, message=message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        lines.append(f"run {run.run_id[:8]} ({run.job_name} {run.tags.get('dagster/partition', '')}) was left STARTED: "
                     f"{message}; marked failed and its pool slots freed".replace("  ", " "))
    for pool in POOLS:
        for run_id in sorted(instance.event_log_storage.get_concurrency_info(pool).active_run_ids):
            run = instance.get_run_by_id(run_id)
            if run is not None and PID not in run.tags and run.status in UNFINISHED:
                lines.append(f"run {run_id[:8]} ({run.job_name}, not started by ragtune run) holds a slot of pool {pool}; "
                             "steps of this run that need it wait until it ends")
    return lines


def cancel_runs_of_this_process(instance: dg.DagsterInstance, reason: str, since: float) -> list[str]:
    """Mark this process's runs that a stop ended canceled (unfinished ones, and those Dagster marked
    failed after `since`, the time of the stop, as the stop's exception left their step) and free
    their pool slots; their run ids."""
    mine = dg.RunsFilter(tags=process_tags(), statuses=[*UNFINISHED, dg.DagsterRunStatus.FAILURE])
    ids = []
    for record in instance.get_run_records(filters=mine):
        if record.dagster_run.status == dg.DagsterRunStatus.FAILURE and record.update_timestamp.timestamp() < since:
            continue
        instance.report_run_canceled(record.dagster_run, message=reason)
        instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
        ids.append(record.dagster_run.run_id)
    return ids


def pool_waits(instance: dg.DagsterInstance) -> list[str]:
    """What a step of this process's runs is waiting for: a pool slot, and which runs hold it."""
    mine = {run.run_id: run for run in _unfinished(instance, process_tags())}
    waits = []
    for pool in POOLS:
        info = instance.event_log_storage.get_concurrency_info(pool)
        for run_id in sorted(info.pending_run_ids & set(mine)):
            ahead = info.active_run_ids - {run_id} or {step.run_id for step in info.pending_steps if step.run_id != run_id}
            holders = ", ".join(sorted(r[:8] for r in ahead)) or "none"
            waits.append(f"{mine[run_id].job_name} {mine[run_id].tags.get('dagster/partition', '')} waits for a slot of pool "
                         f"{pool} (limit {info.limit}), held by run(s) {holders}; `dagster instance concurrency set {pool} N` "
                         "raises the limit")
    return waits
