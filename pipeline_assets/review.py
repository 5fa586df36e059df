"""Expert review in Label Studio: push a chapter's judged pairs for review, pull the decisions back
(a sensor notices new annotations), and the decisions asset that curation applies."""

import hashlib
import json
from collections import Counter
from dataclasses import asdict

import dagster as dg

from pipeline_assets.config import config_from_settings
from pipeline_assets.curate import qa_judged
from pipeline_assets.metadata import table
from pipeline_assets.partitions import CHAPTERS, chapter_partitions
from ragtune.curate.curation import CurationSettings
from ragtune.jsonl import append_jsonl, read_jsonl, write_jsonl
from ragtune.review.decisions import ReviewSettings, is_stale, merge_decisions, select_for_review, to_push
from ragtune.review.label_studio import annotated_tasks, annotation_marks, pull_decisions, push_tasks
from resources.label_studio import LabelStudioResource
from resources.storage import DataDirResource

ReviewConfig = config_from_settings("ReviewConfig", ReviewSettings, "Which of the chapter's judged pairs go to reviewers.", asset="review_tasks")
PUSH_JOB = "push_for_review"
PULL_JOB = "pull_review_decisions"


@dg.asset(group_name="review", partitions_def=chapter_partitions, deps=[qa_judged], kinds={"labelstudio"})
def review_tasks(context: dg.AssetExecutionContext, config: ReviewConfig, storage: DataDirResource,
                 label_studio: LabelStudioResource) -> dg.MaterializeResult:
    """Pushes the chapter's judged pairs to Label Studio (all, a fixed sample, or those near the
    thresholds), each with its evidence and provenance. A pair already sent with the same evidence is
    not sent again; a pair whose decision went stale (its evidence changed) is sent for re-review."""
    key = context.partition_key
    layout = storage.layout
    rows = read_jsonl(layout.judged(key))
    settings = ReviewSettings(**config.model_dump())
    thresholds = (layout.read_json(layout.curation_report, {}) or {}).get("settings") or asdict(CurationSettings())
    pushed = {entry["qa_id"]: entry for entry in read_jsonl(layout.review_pushed(key))}  # the latest push of each pair
    decisions = layout.read_decisions(key)
    selected = select_for_review(rows, settings, thresholds)
    items = to_push(rows, selected, pushed, decisions)
    client, project_id = label_studio.project()
    entries = push_tasks(client, project_id, items)
    append_jsonl(layout.review_pushed(key), entries)
    return dg.MaterializeResult(metadata={
        "selected": len(selected),
        "pushed": len(entries),
        "rereview": sum(e["rereview"] for e in entries),
        "selected_pushed_before": sum(r["qa_id"] in pushed for r in selected),
        "select": settings.select,
        "project": dg.MetadataValue.url(label_studio.task_url(project_id)),
        "ledger": dg.MetadataValue.path(str(layout.review_pushed(key))),
    })


@dg.asset(group_name="review", partitions_def=chapter_partitions, deps=[review_tasks], kinds={"labelstudio"})
def review_decisions(context: dg.AssetExecutionContext, storage: DataDirResource, label_studio: LabelStudioResource) -> dg.MaterializeResult:
    """The chapter's expert decisions, keyed by the pair's content id, pulled from Label Studio and
    merged into what was pulled before (the newest decision per pair wins, earlier ones stay in its
    history, decisions of pairs since regenerated away are kept). Its data version is the
    decisions' content, so the dataset is re-curated only when a decision changed."""
    key = context.partition_key
    layout = storage.layout
    client, project_id = label_studio.project()
    pulled, problems = pull_decisions(annotated_tasks(client, project_id, key))
    for problem in problems:
        context.log.warning(problem)
    merged = merge_decisions(layout.read_decisions(key), pulled)
    ordered = [merged[qa_id] for qa_id in sorted(merged)]
    write_jsonl(layout.review_decisions(key), ordered)
    rows = {r["qa_id"]: r for r in read_jsonl(layout.judged(key))}
    stale = [d["qa_id"] for d in ordered if d["qa_id"] in rows and is_stale(d, rows[d["qa_id"]])]
    digest = hashlib.sha256(json.dumps([{k: v for k, v in d.items() if k != "history"} for d in ordered], sort_keys=True).encode()).hexdigest()
    by_decision = Counter(d["decision"] for d in ordered)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(digest),
        metadata={
            "decisions": len(ordered),
            **{decision: by_decision[decision] for decision in ("accept", "edit", "reject")},
            "stale": len(stale),
            "of_pairs_no_longer_generated": sum(d["qa_id"] not in rows for d in ordered),
            "annotation_problems": len(problems),
            "problems": dg.MetadataValue.json(problems[:20]),
            "sample": table([{"qa_id": d["qa_id"], "decision": d["decision"], "reason": d["reason"][:80]} for d in ordered[:10]]),
            "path": dg.MetadataValue.path(str(layout.review_decisions(key))),
        },
    )


def review_poll(context: dg.SensorEvaluationContext, label_studio: LabelStudioResource) -> dg.SensorResult | dg.SkipReason:
    """A pull run for each chapter whose annotations changed since the last tick (cursor: a digest of
    each chapter's annotation ids and update times)."""
    if not label_studio.configured():
        return dg.SkipReason(f"no Label Studio configured (set LABEL_STUDIO_URL and ${label_studio.api_key_env})")
    try:
        client, project_id = label_studio.project()
        marks = annotation_marks(annotated_tasks(client, project_id))
    except Exception as error:  # a server that is down is a skipped tick, not a failed sensor
        return dg.SkipReason(f"Label Studio at {label_studio.server()} did not answer: {type(error).__name__}: {str(error)[:200]}")
    previous = json.loads(context.cursor) if context.cursor else {}
    digests = {key: hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16] for key, value in marks.items()}
    known = set(context.instance.get_dynamic_partitions(CHAPTERS))
    changed = sorted(key for key, digest in digests.items() if digest != previous.get(key) and key in known)
    requests = [dg.RunRequest(partition_key=key, run_key=f"review:{key}:{digests[key]}") for key in changed]
    return dg.SensorResult(run_requests=requests, skip_reason=None if requests else "no new or changed annotations",
                           cursor=json.dumps(digests, sort_keys=True))


def build_review_sensor(status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED, interval_s: int = 30) -> dg.SensorDefinition:
    return dg.sensor(name="review_sensor", job_name=PULL_JOB, minimum_interval_seconds=interval_s, default_status=status,
                     description="Pulls expert decisions from Label Studio when annotations change")(review_poll)


REVIEW_JOBS = [
    dg.define_asset_job(PUSH_JOB, selection=[review_tasks], partitions_def=chapter_partitions),
    dg.define_asset_job(PULL_JOB, selection=[review_decisions], partitions_def=chapter_partitions),
]
