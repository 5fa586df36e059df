"""Drop a file, get a dataset: `dagster dev` (what `make ui` runs) on a fresh instance, nothing toggled.
Two documents dropped into inbox/<category>/ flow through the daemon's sensors and automation to QA for
their categories and a dataset with its exports. Settings for these runs come from the project file."""

from __future__ import annotations

import shutil
import time

import dagster as dg

from pipeline_assets.sensors import project_sensors
from tests.servers import ROOT, dagster_ui

PROJECT = """\
assets:
  chapter_evidence: {rounds: 12}
  qa_candidates: {quota: 4, max_waves: 2, max_tokens: 160}
"""
CATEGORIES = {"anxiety": "02-anxiety-disorders.md", "bipolar": "03-bipolar-and-related-disorders.md"}


def test_sensors_start_running_unless_the_project_says_stopped(monkeypatch, tmp_path):
    assert {s.name: s.default_status for s in project_sensors()} == {
        "inbox_sensor": dg.DefaultSensorStatus.RUNNING, "chapter_fanout_sensor": dg.DefaultSensorStatus.RUNNING,
        "automation_sensor": dg.DefaultSensorStatus.RUNNING, "review_sensor": dg.DefaultSensorStatus.RUNNING}
    (tmp_path / "ragtune.yaml").write_text("sensors: stopped\n")
    monkeypatch.setenv("RAGTUNE_CONFIG", str(tmp_path / "ragtune.yaml"))
    assert {s.default_status for s in project_sensors()} == {dg.DefaultSensorStatus.STOPPED}
    monkeypatch.setenv("RAGTUNE_SENSORS", "running")  # the variable wins over the file
    assert {s.default_status for s in project_sensors()} == {dg.DefaultSensorStatus.RUNNING}


def _latest(instance: dg.DagsterInstance, asset: str, partition: str | None = None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None), limit=1).records
    return records[0] if records else None


def test_a_document_dropped_into_the_inbox_becomes_qa_and_a_dataset_with_no_toggle(tmp_path):
    home, data, inbox, logs = (tmp_path / name for name in ("home", "data", "inbox", "dagster-dev.log"))
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    (tmp_path / "ragtune.yaml").write_text(PROJECT)
    env = {"RAGTUNE_DATA_DIR": str(data), "RAGTUNE_INBOX": str(inbox), "RAGTUNE_CONFIG": str(tmp_path / "ragtune.yaml"),
           "RAGTUNE_SENSOR_INTERVAL_S": "5", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.monotonic()
    with dagster_ui(home, env, command="dev", log=logs):
        for category, source in CATEGORIES.items():
            (inbox / category).mkdir(parents=True)
            shutil.copy(ROOT / "sample_handbook" / "source" / source, inbox / category / source)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 1500
            while _latest(instance, "dataset_exports") is None:
                failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
                retried = {r.tags.get("dagster/parent_run_id") for r in instance.get_runs()}
                hopeless = [r for r in failed if r.run_id not in retried and int(r.tags.get("dagster/retry_number", "0")) >= 2]
                assert not hopeless and time.monotonic() < deadline, logs.read_text()[-4000:]
                time.sleep(5)
            keys = sorted(instance.get_dynamic_partitions("chapters"))
            assert keys == sorted(CATEGORIES)
            for key in keys:  # every step of each category ran, started by the daemon
                for asset in ("chapters", "chapter_chunks", "chapter_evidence", "qa_candidates", "seed_candidates", "qa_filtered", "qa_judged"):
                    assert _latest(instance, asset, key) is not None, (asset, key)
                generated = _latest(instance, "qa_candidates", key).asset_materialization.metadata
                assert generated["quota"].value == 4  # the project file's setting reached the daemon's run
            runs = instance.get_runs()
            assert {r.tags.get("dagster/sensor_name") for r in runs} >= {"inbox_sensor", "chapter_fanout_sensor", "automation_sensor"}
    rows = [line for split in ("train", "validation", "test") for line in (data / "dataset" / f"{split}.jsonl").read_text().splitlines()]
    assert rows and (data / "exports" / "dataset_info.json").exists()
    print(f"inbox to dataset through the daemon: {time.monotonic() - started:.0f} s")
