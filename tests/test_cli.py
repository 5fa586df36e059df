"""The `ragtune` command through its installed entry point, on the sample handbook's chapter files with
the embedded model: run, status, estimate (checked against what the run then pays), preview, export,
a budget stop, and one-line errors with exit codes for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.servers import ROOT, free_port

SOURCE = ROOT / "sample_handbook" / "source"
FILES = [str(SOURCE / name) for name in ("01-depressive-disorders.md", "02-anxiety-disorders.md", "03-bipolar-and-related-disorders.md",
                                         "04-trauma-and-stressor-related-disorders.md")]
FIRST, BACKFILL = ["depressive-disorders", "anxiety-disorders", "bipolar-and-related-disorders"], "trauma-and-stressor-related-disorders"
SMALL = ["--quota", "2", "--rounds", "10", "--set", "qa_candidates.max_waves=1", "--set", "qa_candidates.retries=0"]
RAGTUNE = str(Path(sys.executable).parent / "ragtune")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    env = {**os.environ, "DAGSTER_HOME": str(root / "home"), "RAGTUNE_DATA_DIR": str(root / "data"), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RAGTUNE_CONFIG", None)

    def ragtune(*args: str, check: int | None = 0, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([RAGTUNE, *args], cwd=root, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=1200)
        if check is not None:
            assert done.returncode == check, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    return {"root": root, "data": root / "data", "home": root / "home", "env": env, "ragtune": ragtune}


def test_bad_input_is_one_line_and_exit_code_2(project):
    ragtune = project["ragtune"]
    missing = ragtune("run", "no-such-book.pdf", check=2)
    assert missing.stderr.strip() == "error: no-such-book.pdf: no such file or folder"
    assert ragtune("run", FILES[0], "--set", "quota", check=2).stderr.startswith("error: --set 'quota': expected asset.field=value")
    assert "no dataset" in ragtune("export", "--format", "alpaca", check=2).stderr
    assert "has no evidence plan" in ragtune("preview", "anxiety-disorders", check=2).stderr
    assert ragtune("run", check=2).stderr.startswith("error: give the documents to run on")
    assert ragtune("estimate", FILES[0], "--backend", "openai", "--base-url", "http://127.0.0.1:8000/v1", "--api-key-env",
                   "RAGTUNE_TEST_UNSET_KEY", check=2).stderr.startswith("error: api_key_env names RAGTUNE_TEST_UNSET_KEY")


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    """A failure's whole output: its error line, last, and no traceback."""
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in done.stderr, done.stderr[-3000:]
    return lines[-1]


def test_typos_bad_numbers_bad_settings_and_a_down_endpoint_are_refused_before_any_work(project, tmp_path):
    """Each of these used to be dropped, accepted, found after ingest, or a traceback (issue 30); now one line, exit 2, nothing run."""
    ragtune = project["ragtune"]
    cases = {
        ("run", FILES[0], "--set", "qa_candidate.quota=1"): "no asset 'qa_candidate' takes settings",
        ("run", FILES[0], "--set", "qa_candidates.quot=1"): "qa_candidates has no setting quot; its settings are: quota,",
        ("run", FILES[0], "--set", "qa_candidates.quota=-3"): "qa_candidates quota must be at least 1, not -3",
        ("run", FILES[0], "--set", "chapter_evidence.rounds=0"): "chapter_evidence rounds must be at least 1, not 0",
        ("run", FILES[0], "--set", "qa_candidates.budget_usd=-1"): "qa_candidates budget_usd cannot be negative",
        ("run", FILES[0], "--quota", "-1"): "--quota must be greater than 0, not -1",
        ("run", FILES[0], "--rounds", "0"): "--rounds must be greater than 0, not 0",
        ("run", FILES[0], "--seeds", "no-such-seeds"): "--seeds no-such-seeds: no such folder; it holds one <chapter_key>.jsonl",
        ("run", FILES[0], "--set", "seed_candidates.calls=0"): "seed_candidates calls must be at least 1, not 0",
        ("run", FILES[0], "--budget-usd", "-1"): "--budget-usd must be greater than 0, not -1",
        ("preview", "anxiety-disorders", "--n", "0"): "--n must be greater than 0, not 0",
    }
    for args, expected in cases.items():
        assert expected in _one_error_line(ragtune(*args, check=2)), args
    assert "no asset 'qa_candidate' takes settings" in _one_error_line(ragtune("estimate", FILES[0], "--set", "qa_candidate.quota=1",
                                                                                check=2))

    empty, junk = tmp_path / "empty", tmp_path / "junk"
    empty.mkdir(), junk.mkdir()
    (junk / "notes.xyz").write_text("not a document"), (junk / "scan.bin").write_bytes(b"\x00\x01")
    assert "nothing to read in" in _one_error_line(ragtune("estimate", str(empty), check=2))
    line = _one_error_line(ragtune("run", str(junk), check=2))
    assert "notes.xyz" in line and "scan.bin" in line and ".pdf" in line and ".docx" in line  # what it skipped, what it reads

    port = free_port()
    start = time.monotonic()
    line = _one_error_line(ragtune("run", FILES[0], "--backend", "openai", "--base-url", f"http://user:secret@127.0.0.1:{port}/v1",
                                   check=2))
    assert f"the LLM endpoint http://127.0.0.1:{port}/v1 does not answer" in line and "secret" not in line
    assert time.monotonic() - start < 60 and not list((project["data"] / "parsed").glob("*.json"))  # before ingest, no step retries
    line = _one_error_line(ragtune("run", FILES[0], check=2, extra_env={"RAGTUNE_LLM_BACKEND": "openai"}))
    assert "RAGTUNE_LLM_BACKEND=openai needs RAGTUNE_LLM_BASE_URL" in line  # not a silent 127.0.0.1:8000
    bogus = {"RAGTUNE_LLM_BACKEND": "bogus"}
    assert "is not a backend" in _one_error_line(ragtune("estimate", FILES[0], check=2, extra_env=bogus))
    assert "no chapters yet" in ragtune("status", extra_env=bogus).stdout  # status and export need no LLM: they work
    assert "no dataset" in _one_error_line(ragtune("export", "--format", "alpaca", check=2, extra_env=bogus))
    broken = tmp_path / "ragtune.yaml"
    broken.write_text("llm: [\n")
    for command in (("estimate", FILES[0]), ("run", FILES[0])):
        line = _one_error_line(ragtune(*command, check=2, extra_env={"RAGTUNE_CONFIG": str(broken)}))
        assert f"{broken}: not valid YAML (line 2" in line, command
    assert "no chapters yet" in ragtune("status", extra_env={"RAGTUNE_CONFIG": str(broken)}).stdout  # reads no project file
    assert "not UTF-8" in _one_error_line(ragtune("parse", str(_write(tmp_path / "bad.md", b"\xff\xfe\x00\xc3")), check=2))
    garbage = _write(tmp_path / "bad.pdf", b"%PDF-1.4\n garbage")  # a step fails (ingest): its warning, then its cause, last
    done = ragtune("run", str(garbage), check=2)
    assert "warning: " in done.stderr and _one_error_line(done) == (
        f"error: the run failed: parsed_documents: no document could be parsed from {garbage} ({garbage}: not a readable PDF "
        "(PdfStreamError: Stream has ended unexpectedly))")


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _usage_total(stderr: str) -> list[int]:
    line = next(line for line in stderr.splitlines() if line.startswith("total"))
    return [int(x) for x in line.split()[1:5]]  # calls, prompt, cached, completion


def test_run_status_estimate_backfill_preview_export_and_budget(project):
    ragtune, data = project["ragtune"], project["data"]
    first = ragtune("run", *FILES[:3], *SMALL, "--no-train")
    assert "qa_candidates[anxiety-disorders] wave 1: " in first.stderr and "kept" in first.stderr
    calls, prompt, _, completion = _usage_total(first.stderr)
    assert calls > 0 and prompt > 100 * calls and completion > 0
    assert (data / "dataset" / "train.jsonl").exists() and not (data / "adapter").exists()  # --no-train: dataset, no LoRA

    status = json.loads(ragtune("status", "--json").stdout)
    chapters = {row["chapter"]: row for row in status["chapters"]}
    assert sorted(chapters) == sorted(FIRST)
    assert all(row["state"] == "fresh" and row["quota"] == 2 and row["kept"] is not None for row in chapters.values())
    assert sum(row["prompt_tokens"] for row in chapters.values()) == prompt  # the run's table and the instance agree
    assert sum(row["calls"] for row in chapters.values()) == calls
    with dg.DagsterInstance.from_config(str(project["home"])) as instance:  # the runs are the UI's
        assert {r.job_name for r in instance.get_runs()} >= {"ingest_documents", "prepare_chapter", "generate_chapter_qa", "train_and_judge"}

    estimate = json.loads(ragtune("estimate", *FILES, "--only", BACKFILL, *SMALL, "--json").stdout)
    (planned,) = estimate["chapters"]
    assert planned["chapter_key"] == BACKFILL and planned["cached_calls"] == 0 and "observed" in planned["completion_basis"]
    backfill = ragtune("run", *FILES, "--only", BACKFILL, *SMALL, "--no-train")
    assert "prepare_chapter        trauma" in backfill.stderr and "build_index" in backfill.stderr
    assert "qa_candidates[anxiety-disorders]" not in backfill.stderr  # only the backfilled chapter generates
    paid = next(line.split() for line in backfill.stderr.splitlines() if line.startswith(f"qa_candidates   {BACKFILL}"))
    paid_prompt, paid_completion = int(paid[3]), int(paid[5])
    assert planned["calls"] == int(paid[2])
    estimated, actual = planned["prompt_tokens"] + planned["completion_tokens"], paid_prompt + paid_completion
    assert abs(estimated - actual) <= 0.15 * actual, (planned, paid)
    assert abs(planned["prompt_tokens"] - paid_prompt) <= 0.05 * paid_prompt  # the model's own tokenizer and chat template
    again = json.loads(ragtune("estimate", *FILES, "--only", BACKFILL, *SMALL, "--json").stdout)["chapters"][0]
    assert again["cached_calls"] == again["calls"] and again["prompt_tokens"] == 0  # a rerun would pay nothing

    from pipeline_assets.definitions import build_defs
    from resources import DataDirResource

    with dg.DagsterInstance.from_config(str(project["home"])) as instance:  # the dry run in the graph agrees with the CLI
        job = build_defs({"storage": DataDirResource(data_dir=str(data))}).resolve_implicit_global_asset_job_def()
        run_config = {"ops": {"generation_estimate": {"config": {"quota": 2, "max_waves": 1, "retries": 0}}}}
        dry = job.execute_in_process(instance=instance, partition_key=BACKFILL, asset_selection=[dg.AssetKey("generation_estimate")],
                                     run_config=run_config)
        meta = dry.get_asset_materialization_events()[0].materialization.metadata
        assert meta["calls"].value == again["calls"] and meta["cached_calls"].value == again["cached_calls"]

    candidates = (data / "qa" / "candidates" / "anxiety-disorders.jsonl").read_bytes()
    preview = ragtune("preview", "anxiety-disorders", "--n", "3")
    assert "preview of 'anxiety-disorders': 3 rounds" in preview.stdout
    assert preview.stdout.count("\nKEPT [") + preview.stdout.count("\nREJECTED [") + preview.stdout.count("\nFAILED round") >= 3
    assert (data / "qa" / "candidates" / "anxiety-disorders.jsonl").read_bytes() == candidates  # the dataset is untouched

    out = project["root"] / "train.sharegpt.jsonl"
    ragtune("export", "--format", "sharegpt", "--split", "train", "--out", str(out))
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    rows = (data / "dataset" / "rows" / "train.jsonl").read_text().splitlines()
    assert len(exported) == len(rows) > 0 and all(e["conversations"][0]["from"] == "human" for e in exported)
    # Every format of the one table: what its step wrote, or a one-line error naming that step (no training ran: no DPO pairs).
    import datasets

    from ragtune.curate.exports import EXPORT_FORMATS

    assert set(EXPORT_FORMATS) >= {"alpaca", "sharegpt", "messages", "counselling", "raft", "pt", "hf", "dpo"}
    for name, fmt in EXPORT_FORMATS.items():
        if name == "hf":
            ragtune("export", "--format", "hf", "--split", "all", "--out", str(project["root"] / "hf"))
            assert set(datasets.load_from_disk(str(project["root"] / "hf"))) == {"train", "validation", "test"}
            continue
        written = data / ("reports/dpo/train_dpo.jsonl" if name == "dpo" else f"exports/{fmt.file_name('train')}")
        if not written.exists() and fmt.empty_file:
            assert f"{fmt.written_by} writes it" in _one_error_line(ragtune("export", "--format", name, check=2)), name
            continue
        printed = ragtune("export", "--format", name).stdout
        assert printed == (written.read_text() if written.exists() else ""), name
    assert "pt has only the train split" in _one_error_line(ragtune("export", "--format", "pt", "--split", "test", check=2))

    stopped = ragtune("run", *FILES, "--only", BACKFILL, "--quota", "6", "--rounds", "10", "--budget-tokens", "1", "--no-train",
                      "--set", "qa_candidates.free_questions=true", check=3)  # every round asks: the budget, not the plan, stops it
    assert f"budget reached: generation stopped in {BACKFILL}" in stopped.stderr
    after = {row["chapter"]: row for row in json.loads(ragtune("status", "--json").stdout)["chapters"]}
    assert after[BACKFILL]["budget_reached"] and after[BACKFILL]["quota"] == 6


def _run_on_a_terminal(project, *args: str) -> tuple[int, str]:
    """The entry point with stdout and stderr on a pseudo-terminal, as a user at a shell runs it."""
    import pty
    import threading

    master, slave = pty.openpty()
    env = {**project["env"], "COLUMNS": "160", "TERM": "xterm-256color"}
    child = subprocess.Popen([RAGTUNE, *args], cwd=project["root"], env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    code = child.wait(timeout=1200)
    reader.join(timeout=30)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def test_on_a_terminal_the_progress_is_a_bar(project):
    """The rich path: a bar per step and chapter with kept/quota and the calls' detail, not the plain lines."""
    code, screen = _run_on_a_terminal(project, "run", *FILES, "--only", BACKFILL, *SMALL, "--no-train")
    assert code == 0, screen[-3000:]
    assert f"qa_candidates {BACKFILL}" in screen  # the bar's label
    assert "━" in screen  # rich's bar
    assert "cached" in screen and " paid," in screen  # the bar's detail column
    assert f"qa_candidates[{BACKFILL}] wave" not in screen  # not the line-per-report form
