"""`ragtune run` stopped by a real Ctrl-C (SIGINT to its whole process group, as a terminal sends it),
a real SIGTERM and a real kill -9 mid-generation, each followed by a rerun: the stop ends the run
within 10 s with exit 130, its Dagster run canceled and its pool slot free, no traceback from any
helper process; a killed run left STARTED is found and failed by the next run; and every rerun
finishes with 0 repeated LLM calls and the same rows as a run never stopped. Also: a step waiting
for a pool slot says what it waits for."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import dagster as dg
import psutil
import pytest

from tests.servers import ROOT
from tests.test_cli import RAGTUNE, SOURCE

pytestmark = pytest.mark.slow  # the embedded LLM, several runs

ARGS = ["run", str(SOURCE / "02-anxiety-disorders.md"), "--quota", "3", "--rounds", "12", "--no-train",
        "--set", "qa_candidates.max_waves=1", "--set", "qa_candidates.retries=0"]


def _project(root):
    home = root / "home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "RAGTUNE_DATA_DIR": str(root / "data"), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RAGTUNE_CONFIG", None)
    return {"root": root, "home": home, "data": root / "data", "env": env}


def _start(project) -> subprocess.Popen:
    return subprocess.Popen([RAGTUNE, *ARGS], cwd=project["root"], env=project["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _run(project) -> subprocess.CompletedProcess:
    done = subprocess.run([RAGTUNE, *ARGS], cwd=project["root"], env=project["env"], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _cached(project) -> set[str]:
    return {p.stem for p in (project["data"] / "cache" / "llm").glob("*/*.json")}


def _paid(stderr: str) -> int:
    """Calls paid in a run, from the usage table's total line."""
    total = [line for line in stderr.splitlines() if line.startswith("total")]
    return int(total[-1].split()[1]) if total else 0


def _rows(project) -> list[tuple[str, str, str, str]]:
    rows = []
    for split in ("train", "validation", "test"):
        path = project["data"] / "dataset" / f"{split}.jsonl"
        rows += [(split, r["id"], r["instruction"], r["output"]) for r in map(json.loads, path.read_text().splitlines())]
    return rows


def _instance(project) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(project["home"]))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run never stopped; on the way, a step that waits for a pool slot held by another live run says so."""
    project = _project(tmp_path_factory.mktemp("whole"))
    with _instance(project) as instance:  # another live process's run holds the llm pool's one slot
        holder = str(uuid.uuid4())
        instance.add_run(dg.DagsterRun(job_name="held_elsewhere", run_id=holder, status=dg.DagsterRunStatus.STARTED,
                                       tags={"ragtune/host": os.uname().nodename, "ragtune/pid": str(os.getpid()),
                                             "ragtune/pid_started": f"{psutil.Process().create_time():.2f}"}))
        instance.event_log_storage.initialize_concurrency_limit_to_default("llm")
        claim = instance.event_log_storage.claim_concurrency_slot("llm", holder, "qa_candidates")
        assert claim.slot_status.value == "CLAIMED"
        process = _start(project)
        try:
            waited = ""
            deadline = time.monotonic() + 300
            while "waits for a slot of pool llm" not in waited:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-3000:]
                waited += process.stderr.readline()
            assert f"held by run(s) {holder[:8]}" in waited
            instance.event_log_storage.free_concurrency_slots_for_run(holder)
            stdout, stderr = process.communicate(timeout=1200)
        finally:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    return {"paid": _paid(stderr), "cached": _cached(project), "rows": _rows(project)}


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stopped_run_resumes_with_nothing_repaid_and_the_same_rows(how, uninterrupted, tmp_path):
    project = _project(tmp_path)
    process = _start(project)
    deadline = time.monotonic() + 600
    assert len(uninterrupted["rows"]) >= 2
    while len(_cached(project)) < 2:  # mid-generation: some calls finished, more to make
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-3000:]
        time.sleep(0.1)
    sent = time.monotonic()
    if how == "SIGINT":
        os.killpg(process.pid, signal.SIGINT)  # a Ctrl-C reaches the whole foreground process group
    else:
        process.send_signal(getattr(signal, how))
    stdout, stderr = process.communicate(timeout=60)
    took = time.monotonic() - sent
    before = _cached(project)
    with _instance(project) as instance:
        run = instance.get_runs(limit=1)[0]
        holders = instance.event_log_storage.get_concurrency_info("llm").active_run_ids
    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
        assert run.status == dg.DagsterRunStatus.STARTED and run.run_id in holders  # what used to hang the next run
    else:
        assert process.returncode == 130 and took < 10, (took, stderr[-2000:])
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
        assert re.search(r"stopped: \d+ run\(s\) finished .*1 run\(s\) under way marked canceled", stderr), stderr[-2000:]
        assert "to resume, run the same command again" in stderr
        assert run.job_name == "generate_chapter_qa" and run.status == dg.DagsterRunStatus.CANCELED and not holders

    rerun = _run(project)
    if how == "SIGKILL":
        assert re.search(rf"note: run {run.run_id[:8]} \(generate_chapter_qa anxiety-disorders\) was left STARTED: its process "
                         rf"{process.pid} is gone", rerun.stderr), rerun.stderr[-2000:]
        with _instance(project) as instance:
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert 2 <= len(before) < uninterrupted["paid"]  # stopped mid-run ...
    assert len(before) + _paid(rerun.stderr) == uninterrupted["paid"]  # ... and no call paid twice
    assert _cached(project) == uninterrupted["cached"]
    assert _rows(project) == uninterrupted["rows"]
