"""Sensors: new or changed documents in the inbox trigger ingestion; changed chapters trigger their runs."""

import hashlib
import json
import os
import tempfile
from pathlib import Path

import dagster as dg

from pipeline_assets.partitions import CHAPTERS, chapter_partitions
from ragtune.ingest.collection import category_of
from ragtune.ingest.inbox import scan_inbox
from ragtune.ingest.run_key_locks import lock_run_key
from ragtune.project import sensors_running

INGEST_JOB = "ingest_documents"
PREPARE_JOB = "prepare_chapter"
CLAIM_STALE_S = 600  # a claimed run key whose run never appeared may be claimed again after this


def claimed_once(instance: dg.DagsterInstance, run_key: str) -> bool:
    """True for the one tick that may request this run key (see ragtune.ingest.run_key_locks). Claims live under
    the instance's DAGSTER_HOME, where the code server that evaluates every tick finds them."""

    def launched(key: str) -> bool:
        return bool(instance.get_run_ids(filters=dg.RunsFilter(tags={"dagster/run_key": key}), limit=1))

    home = Path(instance.root_directory) if instance.root_directory else Path(tempfile.gettempdir()) / "ragtune"
    return lock_run_key(home / "sensor_claims", run_key, CLAIM_STALE_S, launched)


def sensor_interval_s() -> int:
    """Seconds between ticks of every sensor (RAGTUNE_SENSOR_INTERVAL_S; 30 by default)."""
    return int(os.environ.get("RAGTUNE_SENSOR_INTERVAL_S", "30"))


def default_status() -> dg.DefaultSensorStatus:
    """Running unless the project file or RAGTUNE_SENSORS says stopped (ragtune.project)."""
    return dg.DefaultSensorStatus.RUNNING if sensors_running() else dg.DefaultSensorStatus.STOPPED


def build_inbox_sensor(inbox: str | Path, name: str = "inbox_sensor", status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED
                       ) -> dg.SensorDefinition:
    """One ingest run per set of new/changed/deleted files (run key = their hashes); new category
    partitions registered in the same tick. The cursor holds size, mtime and sha256 per file."""
    inbox = Path(inbox)

    @dg.sensor(name=name, job_name=INGEST_JOB, minimum_interval_seconds=sensor_interval_s(), description=f"Watches {inbox}/<category>/",
               default_status=status)
    def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        previous = json.loads(context.cursor)["files"] if context.cursor else {}
        scan = scan_inbox(inbox, previous)
        cursor = json.dumps({"files": scan.cursor_state()}, sort_keys=True)
        for path in scan.deleted:
            context.log.warning(f"document deleted from the inbox: {path}; its category is re-ingested without it")
        for path in scan.outside:
            context.log.warning(f"ignored {path}: it points outside the inbox {inbox}")
        if not scan.has_changes:
            return dg.SensorResult(skip_reason="no new, changed or deleted documents", cursor=cursor)
        fingerprint = hashlib.sha256(
            json.dumps(sorted((p, s.sha256) for p, s in scan.state.items())).encode()
        ).hexdigest()[:16]
        known = set(context.instance.get_dynamic_partitions(CHAPTERS))
        new_keys = sorted({k for p in scan.new + scan.changed if (k := category_of(p))} - known)
        run = dg.RunRequest(
            run_key=f"inbox:{fingerprint}",
            run_config={"ops": {"parsed_documents": {"config": {"paths": [str(inbox)], "categories_from": "folder"}}}},
            tags={
                "ragtune/affected_categories": ",".join(scan.affected_categories),
                "ragtune/new_files": str(len(scan.new)),
                "ragtune/changed_files": str(len(scan.changed)),
                "ragtune/deleted_files": ",".join(scan.deleted)[:250],
            },
        )
        if not claimed_once(context.instance, run.run_key):
            return dg.SensorResult(skip_reason=f"{run.run_key} was requested by a concurrent tick", cursor=cursor)
        return dg.SensorResult(
            run_requests=[run],
            dynamic_partitions_requests=[chapter_partitions.build_add_request(new_keys)] if new_keys else [],
            cursor=cursor,
        )

    return inbox_sensor


def chapter_fanout(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """For every new parsed_documents materialization, a prepare_chapter run for each chapter whose
    content hash changed; unchanged chapters get no run. Cursor: the last storage id seen."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("parsed_documents"), after_storage_id=int(context.cursor) if context.cursor else None
        ),
        limit=100,
        ascending=True,
    ).records
    if not records:
        return dg.SensorResult(skip_reason="no new parsed_documents materialization", cursor=context.cursor)
    requests = []
    for record in records:
        changed = record.asset_materialization.metadata.get("changed_chapters")
        for key in changed.value if changed else []:
            run_key = f"{key}:{record.storage_id}"
            if claimed_once(context.instance, run_key):  # a concurrent tick may have requested it already
                requests.append(dg.RunRequest(partition_key=key, run_key=run_key))
    return dg.SensorResult(run_requests=requests, cursor=str(records[-1].storage_id))


def build_fanout_sensor(status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED) -> dg.SensorDefinition:
    return dg.sensor(name="chapter_fanout_sensor", job_name=PREPARE_JOB, minimum_interval_seconds=sensor_interval_s(),
                     default_status=status)(chapter_fanout)


def build_automation_sensor(status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED) -> dg.AutomationConditionSensorDefinition:
    """Evaluates every asset's automation condition (pipeline_assets/automation.py) on each tick and
    launches plain runs, one per partition: as backfills (the default), Dagster 1.13's backfill daemon
    failed a request spanning chapter_evidence and qa_candidates partitions ("Unable to determine root
    partitions for backfill") and nothing ran."""
    return dg.AutomationConditionSensorDefinition(
        "automation_sensor", target=dg.AssetSelection.all(), default_status=status, minimum_interval_seconds=sensor_interval_s(),
        emit_backfills=False,
        description="Regenerates what new content reaches: chunks, index, evidence, QA, the dataset",
    )


def project_sensors() -> list[dg.SensorDefinition]:
    """The inbox, fan-out, automation and review sensors, running from the start unless the project
    says stopped (the review sensor skips its ticks until a Label Studio server is configured)."""
    from pipeline_assets.review import build_review_sensor

    status = default_status()
    return [build_inbox_sensor(os.environ.get("RAGTUNE_INBOX", "inbox"), status=status), build_fanout_sensor(status),
            build_automation_sensor(status), build_review_sensor(status, sensor_interval_s())]


chapter_fanout_sensor = build_fanout_sensor()
