"""The inbox sensor (new/changed by content hash, deletions reported, cursor survives restarts) and the
chapter fan-out sensor (runs only for chapters whose text changed), on real files and materializations."""

from __future__ import annotations

import os
import shutil

import dagster as dg

from pipeline_assets.sensors import build_inbox_sensor, chapter_fanout_sensor
from tests.conftest import ROOT, SAMPLE_HANDBOOK

SOURCES = ROOT / "sample_handbook" / "source"


def _tick(sensor, instance, cursor):
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_inbox_sensor_reacts_to_content_not_mtime(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "anxiety").mkdir(parents=True)
    (inbox / "bipolar").mkdir()
    shutil.copy(SOURCES / "02-anxiety-disorders.md", inbox / "anxiety" / "anxiety.md")
    shutil.copy(SOURCES / "03-bipolar-and-related-disorders.md", inbox / "bipolar" / "bipolar.md")
    sensor = build_inbox_sensor(inbox)
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, None)
        (run,) = first.run_requests
        assert run.run_config["ops"]["parsed_documents"]["config"] == {"paths": [str(inbox)], "categories_from": "folder"}
        assert run.tags["ragtune/affected_categories"] == "anxiety,bipolar"
        assert first.dynamic_partitions_requests[0].partition_keys == ["anxiety", "bipolar"]

        # a restart: a new context with only the stored cursor sees nothing new
        assert not _tick(build_inbox_sensor(inbox), instance, first.cursor).run_requests

        # touched (mtime moved), same bytes: no run
        path = inbox / "anxiety" / "anxiety.md"
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
        touched = _tick(sensor, instance, first.cursor)
        assert not touched.run_requests and touched.cursor != first.cursor

        # changed bytes in one category: one run, only that category affected, no new partition
        path.write_text(path.read_text() + "\nA new closing paragraph about follow-up.\n")
        changed = _tick(sensor, instance, touched.cursor)
        (run2,) = changed.run_requests
        assert run2.tags["ragtune/affected_categories"] == "anxiety" and run2.run_key != run.run_key
        instance.add_dynamic_partitions("chapters", ["anxiety", "bipolar"])
        assert not _tick(sensor, instance, touched.cursor).dynamic_partitions_requests

        # deleted: reported and re-ingested, not silently dropped
        (inbox / "bipolar" / "bipolar.md").unlink()
        deleted = _tick(sensor, instance, changed.cursor)
        (run3,) = deleted.run_requests
        assert run3.tags["ragtune/deleted_files"] == "bipolar/bipolar.md"
        assert run3.tags["ragtune/affected_categories"] == "bipolar"


def test_inbox_sensor_ignores_links_out_of_the_inbox(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "anxiety").mkdir(parents=True)
    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nnot for the pipeline\n")
    (inbox / "anxiety" / "escape.md").symlink_to(outside)
    with dg.instance_for_test() as instance:
        result = _tick(build_inbox_sensor(inbox), instance, None)
    assert not result.run_requests


def test_fanout_requests_runs_only_for_changed_chapters(tmp_path):
    from build_pdf import build_pdf, source_chapters

    from pipeline_assets.definitions import build_defs
    from resources import DataDirResource

    book = tmp_path / "book.pdf"
    shutil.copy(SAMPLE_HANDBOOK, book)
    defs = build_defs({"storage": DataDirResource(data_dir=str(tmp_path / "data"))})
    job = defs.resolve_job_def("ingest_documents")
    config = {"ops": {"parsed_documents": {"config": {"paths": [str(book)]}}}}
    with dg.instance_for_test() as instance:
        job.execute_in_process(instance=instance, run_config=config)
        first = _tick(chapter_fanout_sensor, instance, None)
        assert len(first.run_requests) == 6  # first ingestion: every chapter is new

        job.execute_in_process(instance=instance, run_config=config)  # same book again
        assert not _tick(chapter_fanout_sensor, instance, first.cursor).run_requests

        chapters = source_chapters()
        chapters[1].sections[0].blocks[0].text += " Anxiety is also common in older adults."
        build_pdf(chapters, book)  # the same book with one chapter edited
        job.execute_in_process(instance=instance, run_config=config)
        edited = _tick(chapter_fanout_sensor, instance, first.cursor)
    assert [r.partition_key for r in edited.run_requests] == ["anxiety-disorders"]
    assert edited.cursor != first.cursor


def test_two_ticks_racing_launch_one_run(tmp_path, monkeypatch):
    """Two ticks of inbox_sensor evaluated at the same moment by Dagster's own daemon code, against
    the real code location: without the run-key claim both would launch the same run."""
    import logging
    import threading

    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.sensor import execute_sensor_iteration

    inbox = tmp_path / "inbox"
    (inbox / "anxiety").mkdir(parents=True)
    (inbox / "anxiety" / "gad.md").write_text("# Anxiety\n\n## Worry\n\nWorry on most days for six months.\n")
    monkeypatch.setenv("RAGTUNE_INBOX", str(inbox))  # read by the code server the daemon starts
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_SENSORS", "stopped")  # only the inbox sensor, started below, ticks
    # No minimum interval: with one, the tick that marks the sensor first makes the other return before it
    # evaluates whenever the threads are a moment apart (a loaded CI machine), and nothing races at all.
    monkeypatch.setenv("RAGTUNE_SENSOR_INTERVAL_S", "0")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    target = ModuleTarget(module_name="pipeline_assets.definitions", attribute=None, working_directory=str(ROOT),
                          location_name="pipeline_assets.definitions")
    with dg.DagsterInstance.from_config(str(home)) as instance, create_test_daemon_workspace_context(target, instance) as workspace:
        location = next(iter(workspace.create_request_context().get_code_location_entries().values())).code_location
        sensor = next(iter(location.get_repositories().values())).get_sensor("inbox_sensor")
        instance.start_sensor(sensor)
        start = threading.Barrier(2)

        def tick():
            start.wait()
            list(execute_sensor_iteration(workspace, logging.getLogger("test"), None, None))

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        runs = instance.get_runs()
        ticks = instance.get_ticks(sensor.get_remote_origin_id(), sensor.selector_id)
    assert len(runs) == 1 and runs[0].job_name == "ingest_documents"
    assert sorted(t.status.value for t in ticks) == ["SKIPPED", "SUCCESS"]
    assert any("requested by a concurrent tick" in (t.skip_reason or "") for t in ticks)


def test_a_claim_is_won_once_and_reclaimed_only_when_stale_and_never_launched(tmp_path):
    from ragtune.ingest.run_key_locks import lock_run_key

    never = lambda key: False  # noqa: E731
    assert lock_run_key(tmp_path, "inbox:abc", 600, never) and not lock_run_key(tmp_path, "inbox:abc", 600, never)
    assert lock_run_key(tmp_path, "inbox:other", 600, never)
    assert not lock_run_key(tmp_path, "inbox:abc", 0, lambda key: True)  # stale but its run exists: no second run
    assert lock_run_key(tmp_path, "inbox:abc", 0, never)  # stale and never launched (its tick died): claimable again
    assert not lock_run_key(tmp_path, "inbox:abc", 600, never)  # and fresh again for everyone else
