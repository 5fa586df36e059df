"""Label Studio as the review tool, through its SDK: one project per dataset, one task per pair
(question, answer, the evidence beside them and the row's provenance), a labelling config with
accept / edit / reject, editable question and answer, and a reason; annotations come back as
decisions (ragtune.review.decisions)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ragtune.review.decisions import AnnotationProblem, decision_from_annotation, evidence_sha256, review_text

# The reviewer reads the evidence on the left and the pair on the right; question and answer are
# pre-filled and editable; a decision is required, a reason asked for.
LABEL_CONFIG = """<View style="display: flex; gap: 1em">
  <View style="flex: 1">
    <Header value="Evidence ($chapter_title)"/>
    <Text name="evidence" value="$evidence"/>
    <Header value="Provenance" size="6"/>
    <Text name="provenance" value="$provenance"/>
  </View>
  <View style="flex: 1">
    <Text name="rereview_note" value="$rereview_note"/>
    <Header value="Question"/>
    <TextArea name="question" toName="evidence" value="$question" editable="true" maxSubmissions="1" rows="3"/>
    <Header value="Answer"/>
    <TextArea name="answer" toName="evidence" value="$answer" editable="true" maxSubmissions="1" rows="8"/>
    <Header value="Decision"/>
    <Choices name="decision" toName="evidence" choice="single" required="true">
      <Choice value="accept" hint="true to the evidence and worth training on"/>
      <Choice value="edit" hint="keep it with the corrected question or answer above"/>
      <Choice value="reject" hint="not true to the evidence, or not worth training on"/>
    </Choices>
    <Header value="Reason"/>
    <TextArea name="reason" toName="evidence" maxSubmissions="1" rows="2" placeholder="why (for an edit or a rejection)"/>
  </View>
</View>"""


def task_data(row: dict[str, Any], earlier: dict[str, Any] | None) -> dict[str, Any]:
    """What one task shows; evidence_sha256 travels with it so the decision knows what was seen."""
    question, answer = review_text(row)
    evidence = "\n\n".join(f"[{e['chunk_id']}] {' > '.join(e['section_path'])} (p. {', '.join(map(str, e['pages']))})\n{e['text']}"
                           for e in row.get("evidence") or [])
    provenance = (f"pair {row['qa_id']} · task {row.get('task', '')} · documents {', '.join(sorted({e['doc_id'] for e in row.get('evidence') or []}))}"
                  f" · generator {row.get('generation', {}).get('model', '?')} · judge {row.get('judge_score')} · groundedness {row.get('groundedness')}")
    note = (f"RE-REVIEW: the evidence changed since this pair was {earlier['decision']}ed"
            f"{' (' + earlier['reason'] + ')' if earlier.get('reason') else ''}.") if earlier else ""
    return {"qa_id": row["qa_id"], "chapter_key": row["chapter_key"], "chapter_title": row.get("chapter_title", row["chapter_key"]),
            "language": row.get("language", "en"), "question": question, "answer": answer, "evidence": evidence,
            "provenance": provenance, "evidence_sha256": evidence_sha256(row), "rereview": earlier is not None, "rereview_note": note}


def connect(url: str, api_key: str):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=url, api_key=api_key)


def ensure_project(client, title: str) -> int:
    """The id of the project with this title, created with the labelling config if there is none."""
    for project in client.projects.list():
        if project.title == title:
            return project.id
    return client.projects.create(title=title, label_config=LABEL_CONFIG,
                                  description="ragtune expert review: accept, edit or reject each generated pair against its evidence").id


def push_tasks(client, project_id: int, items: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """Import one task per (row, earlier decision); returns the ledger entries of what was pushed."""
    if not items:
        return []
    data = [task_data(row, earlier) for row, earlier in items]
    response = client.projects.import_tasks(id=project_id, request=[{"data": d} for d in data], return_task_ids=True)
    task_ids = list(response.task_ids or [])
    if len(task_ids) != len(data):
        raise RuntimeError(f"Label Studio project {project_id} imported {len(task_ids)} of {len(data)} tasks")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return [{"qa_id": d["qa_id"], "task_id": task_id, "evidence_sha256": d["evidence_sha256"], "rereview": d["rereview"], "pushed_at": now}
            for d, task_id in zip(data, task_ids)]


def annotated_tasks(client, project_id: int, chapter_key: str | None = None) -> list[dict[str, Any]]:
    """Tasks (id, data, annotations) of the project that carry at least one submitted annotation,
    of one chapter or of all."""
    found = []
    for task in client.tasks.list(project=project_id, fields="all"):
        data = task.data or {}
        if chapter_key is not None and data.get("chapter_key") != chapter_key:
            continue
        annotations = [a for a in (task.annotations or []) if not a.get("was_cancelled")]
        if annotations:
            found.append({"id": task.id, "data": data, "annotations": annotations})
    return found


def pull_decisions(tasks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(decisions, problems): the newest annotation of each task as a decision; annotations with
    no usable decision are reported, not guessed at."""
    decisions, problems = [], []
    for task in tasks:
        newest = max(task["annotations"], key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a["id"]))
        try:
            decisions.append(decision_from_annotation(task, newest))
        except AnnotationProblem as problem:
            problems.append(str(problem))
    return decisions, problems


def annotation_marks(tasks: list[dict[str, Any]]) -> dict[str, list[list]]:
    """chapter key -> sorted (task, annotation, updated) triples: a change means new decisions to pull."""
    marks: dict[str, list[list]] = {}
    for task in tasks:
        for a in task["annotations"]:
            marks.setdefault(task["data"].get("chapter_key", ""), []).append([task["id"], a["id"], a.get("updated_at") or ""])
    return {key: sorted(value) for key, value in marks.items()}
