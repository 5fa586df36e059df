"""Expert review against a real Label Studio server (its own venv, started here): pairs pushed with
their evidence, annotations submitted through its API as a reviewer would, the sensor noticing them,
the decisions asset, and curation applying them through real Dagster materializations; then a
regeneration that changes one pair's evidence, which sends it back for re-review."""

from __future__ import annotations

import json
import secrets

import dagster as dg
import numpy as np
import pytest

from pipeline_assets.definitions import build_defs
from pipeline_assets.partitions import CHAPTERS
from pipeline_assets.review import PUSH_JOB
from pipeline_assets.runner import tick_sensor
from ragtune.curate.curation import shown_chunks
from ragtune.generate.grounding import sentence_texts
from ragtune.ingest.sources import collect_chapter
from ragtune.jsonl import read_jsonl, write_jsonl
from ragtune.review.decisions import ReviewSettings, agreement, evidence_sha256, merge_decisions, select_for_review, to_push
from resources import DataDirResource, EmbedderResource, LabelStudioResource
from tests.servers import LABEL_STUDIO_BIN, label_studio
from tests.test_curation import key_sentences, qa_row

REFERENCE = "A reference answer rewritten by the reviewing clinician."
THRESHOLDS = {"min_groundedness": 0.6, "min_judge_score": 7, "trust_weak_judge": False}


def test_agreement_counts_the_gate_against_the_reviewers():
    # gate pass: 3 accepted, 1 rejected; gate fail: 1 accepted, 2 rejected, 1 edited
    verdicts = [(True, "accept")] * 3 + [(True, "reject"), (False, "accept"), (False, "reject"), (False, "reject"), (False, "edit")]
    found = agreement(verdicts)
    assert found["reviewed"] == 8 and found["gate_pass_accept"] == 3 and found["gate_fail_edit"] == 1
    # observed 6/8; expected 0.5*0.5 + 0.5*0.5 = 0.5; kappa (0.75 - 0.5) / 0.5
    assert found["agreement"] == 0.75 and found["kappa"] == 0.5
    assert agreement([])["agreement"] is None


def test_selection_modes_and_what_is_pushed_again():
    rows = [{"qa_id": f"q{i}", "groundedness": g, "judge_score": s, "judge_weak": False, "evidence": [{"chunk_id": "c", "text": f"t{i}"}]}
            for i, (g, s) in enumerate([(0.95, 9), (0.62, 9), (0.5, 9), (0.95, 7), (0.2, 2)])]
    near = select_for_review(rows, ReviewSettings(select="near_threshold"), THRESHOLDS)
    assert [r["qa_id"] for r in near] == ["q1", "q2", "q3"]  # 0.62 and 0.5 near 0.6; score 7 on the judge's threshold
    sample = select_for_review(rows, ReviewSettings(select="sample", sample_per_chapter=2), THRESHOLDS)
    assert len(sample) == 2 and sample == select_for_review(list(reversed(rows)), ReviewSettings(select="sample", sample_per_chapter=2), THRESHOLDS)
    assert len(select_for_review(rows, ReviewSettings(select="all"), THRESHOLDS)) == 5

    pushed = {"q0": {"evidence_sha256": evidence_sha256(rows[0])}, "q1": {"evidence_sha256": "older"}}
    decided = {"q4": {"decision": "reject", "evidence_sha256": "older"}}  # stale: sent again though not selected
    sent = to_push(rows, rows[:2], pushed, decided)
    assert [(row["qa_id"], earlier) for row, earlier in sent] == [("q1", None), ("q4", decided["q4"])]


def test_the_newest_decision_wins_and_the_earlier_one_stays_in_its_history():
    first = {"qa_id": "q", "annotation_id": 1, "reviewed_at": "2026-12-01T10:00:00Z", "decision": "accept"}
    second = {"qa_id": "q", "annotation_id": 2, "reviewed_at": "2026-12-02T10:00:00Z", "decision": "reject"}
    store = merge_decisions({}, [first])
    store = merge_decisions(store, [second, first])
    assert store["q"]["decision"] == "reject" and [h["annotation_id"] for h in store["q"]["history"]] == [1]
    assert merge_decisions(store, [second]) == store  # pulling the same annotation again changes nothing


def second_row(chunk: dict) -> dict | None:
    """A second pair about the passage: its first sentence, when that is not the one qa_row asks about."""
    first = sentence_texts(chunk["text"])[0]
    if len(first.split()) < 6 or first in key_sentences(chunk):
        return None
    return qa_row(chunk, question=f"According to the handbook, is it the case that {first.rstrip('.')}?", answer=first)


def submit(client, task_id: int, decision: str, answer: str | None = None, reason: str = "") -> None:
    """What a reviewer's click on Submit sends: the decision, an edited answer, a reason."""
    result = [{"from_name": "decision", "to_name": "evidence", "type": "choices", "value": {"choices": [decision]}}]
    if answer is not None:
        result.append({"from_name": "answer", "to_name": "evidence", "type": "textarea", "value": {"text": [answer]}})
    if reason:
        result.append({"from_name": "reason", "to_name": "evidence", "type": "textarea", "value": {"text": [reason]}})
    client.annotations.create(id=task_id, result=result)


@pytest.fixture(scope="module")
def review_server(tmp_path_factory):
    if not LABEL_STUDIO_BIN.exists():
        pytest.skip(f"needs Label Studio at {LABEL_STUDIO_BIN} (make test installs it into .venv-labelstudio)")
    token = secrets.token_hex(20)
    with label_studio(tmp_path_factory.mktemp("label-studio"), token) as url:
        yield url, token


@pytest.mark.slow
def test_decisions_from_label_studio_stick_through_curation_and_regeneration(review_server, handbook_document, handbook_chunks,
                                                                           handbook_index, embedder, tmp_path, monkeypatch):
    url, token = review_server
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    storage = DataDirResource(data_dir=str(tmp_path / "data"))
    layout = storage.layout
    review = LabelStudioResource(url=url, project_title="handbook review")
    defs = build_defs({"storage": storage, "embedder": EmbedderResource(), "label_studio": review})
    keys = ["anxiety-disorders", "depressive-disorders"]
    handbook_index.save(layout.index_dir)
    judged = {}
    for key in keys:
        collect_chapter([handbook_document], key).save(layout.chapter(key))
        chunks = [c.to_dict() for c in handbook_chunks if c.chapter_key == key]
        rows = [qa_row(c) for c in chunks] + [second_row(c) for c in chunks]
        judged[key] = [{**r, "groundedness": 0.4 if i % 3 == 2 else 0.9, "judge_model": "llamacpp:embedded", "judge_weak": True}
                       for i, r in enumerate(rows) if r]
    client = review.client()

    def write_judged():
        for key, rows in judged.items():
            write_jsonl(layout.judged(key), rows)
            np.save(layout.judged_questions(key), embedder.encode([r["question"] for r in rows]))

    def run(job: str, partition: str | None = None, config: dict | None = None, assets: list[str] | None = None):
        selection = [dg.AssetKey(a) for a in assets] if assets else None
        return defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=partition, asset_selection=selection,
                                                             run_config=config or {})

    def curate_and_export():
        # Small held-out shares: the two chapters have 16 passages, and review needs train rows to act on.
        run("train_and_judge", config={"ops": {"instruction_dataset": {"config": {"test_fraction": 0.05, "validation_fraction": 0.05}}}},
            assets=["instruction_dataset", "dataset_exports"])
        return {split: read_jsonl(layout.dataset_rows(split)) for split in ("train", "validation", "test")}

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CHAPTERS, keys)
        write_judged()
        before = curate_and_export()  # the dataset as the gate alone made it
        sealed = set(json.loads(layout.curation_report.read_text())["sealed_chunks"]["train"])
        removed = {r["qa_id"]: r["removed_by"] for r in read_jsonl(layout.removed)}
        anxiety = judged["anxiety-disorders"]
        free = [r for r in anxiety if not shown_chunks(r) & sealed]
        train_ids = {r["qa_id"] for r in before["train"]}
        accept = next(r for r in free if removed.get(r["qa_id"]) == "groundedness")  # the gate dropped it; a clinician keeps it
        reject_failed = next(r for r in free if removed.get(r["qa_id"]) == "groundedness" and r is not accept)
        reject, edit = [r for r in free if r["qa_id"] in train_ids][:2]
        test_row = next((r for r in before["test"] if r["chapter_key"] == "anxiety-disorders"), None)

        # Push every anxiety pair; a second push sends nothing again.
        pushed = run(PUSH_JOB, "anxiety-disorders", {"ops": {"review_tasks": {"config": {"select": "all"}}}})
        assert pushed.asset_materializations_for_node("review_tasks")[0].metadata["pushed"].value == len(anxiety)
        project = next(p for p in client.projects.list() if p.title == "handbook review")
        tasks = {t.data["qa_id"]: t for t in client.tasks.list(project=project.id, fields="all")}
        assert set(tasks) == {r["qa_id"] for r in anxiety}
        shown = tasks[edit["qa_id"]].data
        assert shown["answer"] == edit["answer"] and edit["evidence"][0]["text"] in shown["evidence"] and edit["qa_id"] in shown["provenance"]
        again = run(PUSH_JOB, "anxiety-disorders", {"ops": {"review_tasks": {"config": {"select": "all"}}}})
        assert again.asset_materializations_for_node("review_tasks")[0].metadata["pushed"].value == 0

        # A clinician reviews five pairs in Label Studio; one annotation forgets the decision.
        corrected = "Generalized anxiety disorder needs excessive worry on most days for at least six months."
        submit(client, tasks[accept["qa_id"]].id, "accept")
        submit(client, tasks[reject["qa_id"]].id, "reject", reason="the answer does not answer the question")
        submit(client, tasks[reject_failed["qa_id"]].id, "reject", reason="not in the evidence")
        submit(client, tasks[edit["qa_id"]].id, "edit", answer=corrected, reason="answer cut short")
        if test_row:
            submit(client, tasks[test_row["qa_id"]].id, "edit", answer=REFERENCE)
        unclear = next(r for r in anxiety if r["qa_id"] not in {accept["qa_id"], reject["qa_id"], reject_failed["qa_id"], edit["qa_id"],
                                                                   (test_row or {}).get("qa_id")})
        client.annotations.create(id=tasks[unclear["qa_id"]].id, result=[
            {"from_name": "reason", "to_name": "evidence", "type": "textarea", "value": {"text": ["unsure"]}}])

        # The sensor asks for a pull of the anxiety chapter only, then, with nothing new, for nothing.
        cursor, runs = tick_sensor(defs, instance, "review_sensor", None, {})
        assert [r.dagster_run.tags["dagster/partition"] for r in runs] == ["anxiety-disorders"]
        pulled = runs[0].asset_materializations_for_node("review_decisions")[0].metadata
        assert (pulled["accept"].value, pulled["reject"].value, pulled["edit"].value) == (1, 2, 1 + bool(test_row))
        assert pulled["annotation_problems"].value == 1 and "choose one of accept, edit, reject" in pulled["problems"].value[0]
        assert tick_sensor(defs, instance, "review_sensor", cursor, {})[1] == []

        after = curate_and_export()
        kept = {r["qa_id"]: r for rows in after.values() for r in rows}
        removed = {r["qa_id"]: r["removed_by"] for r in read_jsonl(layout.removed)}
        assert removed[reject["qa_id"]] == "review:rejected" and removed[reject_failed["qa_id"]] == "review:rejected"
        assert accept["qa_id"] in kept and kept[accept["qa_id"]]["review"]["decision"] == "accept"  # protected from the threshold
        assert kept[edit["qa_id"]]["answer"] == corrected and kept[edit["qa_id"]]["expert_edited"]
        assert kept[edit["qa_id"]]["generated_answer"] == edit["answer"]
        if test_row:  # a frozen test row shows the edit; the frozen record and its hash stay as they were
            assert kept[test_row["qa_id"]]["answer"] == REFERENCE
            assert json.loads(layout.frozen_splits_manifest.read_text())["test"]["qa_ids"] == [r["qa_id"] for r in before["test"]]
        exported = [json.loads(line) for line in open(layout.exports_dir / "alpaca_train.jsonl")]
        assert next(r for r in exported if r["id"] == edit["qa_id"])["output"] == corrected
        assert next(r for r in exported if r["id"] == edit["qa_id"])["expert_edited"] is True
        card = layout.dataset_card.read_text()
        reviewed = 4 + bool(test_row)
        assert f"{reviewed} rows reviewed against their evidence (1 accepted, {1 + bool(test_row)} edited, 2 rejected)" in card
        # gate passed reject, edit(s); failed accept, reject_failed: only the last agrees
        report = json.loads(layout.curation_report.read_text())["review"]["gate_vs_reviewers"]
        assert (report["gate_fail_accept"], report["gate_pass_reject"], report["gate_fail_reject"]) == (1, 1, 1)
        assert report["agreement"] == round(1 / reviewed, 3)

        # Regeneration: the accepted pair's evidence changed; the edited pair came back word for word.
        accept["evidence"][0]["text"] += " Revised in the second edition."
        write_judged()
        after = curate_and_export()
        kept = {r["qa_id"]: r for rows in after.values() for r in rows}
        curation = json.loads(layout.curation_report.read_text())["review"]
        assert curation["stale_qa_ids"] == [accept["qa_id"]]
        assert accept["qa_id"] not in kept  # no longer protected: the gate's verdict stands until it is reviewed again
        assert kept[edit["qa_id"]]["answer"] == corrected  # the decision survives the regeneration
        assert "1 earlier decisions await re-review" in layout.dataset_card.read_text()
        pushed = run(PUSH_JOB, "anxiety-disorders", {"ops": {"review_tasks": {"config": {"select": "all"}}}})
        assert pushed.asset_materializations_for_node("review_tasks")[0].metadata["rereview"].value == 1
        rereview = [t.data for t in client.tasks.list(project=project.id, fields="all") if t.data.get("rereview")]
        assert [t["qa_id"] for t in rereview] == [accept["qa_id"]] and "evidence changed" in rereview[0]["rereview_note"]
        assert "Revised in the second edition." in rereview[0]["evidence"]
        stored = layout.read_decisions("anxiety-disorders")
        assert stored[accept["qa_id"]]["decision"] == "accept" and len(stored) == 4 + bool(test_row)  # nothing was overwritten
