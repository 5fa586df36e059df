"""Multi-hop rows on the bundled handbook (its real PDF, chunks and FAISS index): a differential line of one
chapter joined to what the chapter its condition belongs to says of it, each hop answered by a span of its
own chapter, checked hop by hop (row rules, gate, the audit written apart), counted per chapter pair, and
planned again when the other chapter changes. The slow test runs the real 135M model."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

from ragtune.curate.curation import rows_per_chapter_pair
from ragtune.curate.dataset_card import chapter_pair_section
from ragtune.generate import answer_first
from ragtune.generate.built_questions import questions_of, structured_question
from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence
from ragtune.generate.grounding import grounding_verdict
from ragtune.generate.hops import hops_problem, joined_answer
from ragtune.generate.multi_hop import bridge_evidence, hop_units
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.qa_generation import GenerationSettings, _qa_row, generate_chapter_qa
from ragtune.generate.row_rules import first_broken_rule
from ragtune.index.vector_index import ChunkIndex
from ragtune.llm.client import Completion
from ragtune.llm.prompts import format_passages, render_messages, task_template
from tests.conftest import chapter_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from audit_rows import audit  # noqa: E402  (the audit written apart from the filter)

ONLY_MULTI_HOP = {"multi_hop": 1}
# Read off the bundled handbook's differential sections (sample_handbook/source/*.md) by hand: each line whose
# condition another chapter is about, as (its chapter, that chapter). 'Obsessive-compulsive personality disorder',
# 'Borderline personality disorder', 'Tic disorders' and the like belong to no chapter; 'Acute stress disorder' is
# the trauma chapter's own; 'Body dysmorphic disorder' is named only inside a section's text, under no heading.
BRIDGED = {
    ("depressive-disorders", "bipolar-and-related-disorders"), ("depressive-disorders", "trauma-and-stressor-related-disorders"),
    ("anxiety-disorders", "depressive-disorders"), ("anxiety-disorders", "obsessive-compulsive-and-related-disorders"),
    ("anxiety-disorders", "trauma-and-stressor-related-disorders"), ("bipolar-and-related-disorders", "depressive-disorders"),
    ("trauma-and-stressor-related-disorders", "anxiety-disorders"), ("trauma-and-stressor-related-disorders", "obsessive-compulsive-and-related-disorders"),
    ("trauma-and-stressor-related-disorders", "depressive-disorders"), ("obsessive-compulsive-and-related-disorders", "anxiety-disorders"),
    ("obsessive-compulsive-and-related-disorders", "feeding-and-eating-disorders"), ("feeding-and-eating-disorders", "depressive-disorders"),
    ("feeding-and-eating-disorders", "obsessive-compulsive-and-related-disorders"),
}


def test_each_differential_line_bridges_to_the_chapter_its_condition_belongs_to(handbook_document, handbook_index, embedder):
    found = {}
    for chapter in handbook_document.chapters:
        for first, second in bridge_evidence(chapter.chapter_key, handbook_index, embedder):
            joined = hop_units([first, second])
            assert joined, (first["text"][:80], second["section_path"])  # generation finds the bridge the planner found
            assert first["chapter_key"] == chapter.chapter_key and second["chapter_key"] != chapter.chapter_key
            assert "Differential" in first["section_path"][-1] and "Differential" not in second["section_path"][-1]
            assert joined.bridge.text in first["text"] and all(u.chunk_id == second["chunk_id"] for u, _ in joined.answers)
            found.setdefault((first["chapter_key"], second["chapter_key"]), []).append(joined)
    assert set(found) == BRIDGED
    named = {(a, b): {j.named for j in js} for (a, b), js in found.items()}
    assert named[("depressive-disorders", "bipolar-and-related-disorders")] == {"Bipolar disorder"}
    assert named[("depressive-disorders", "trauma-and-stressor-related-disorders")] == {"Adjustment disorder"}  # '... with depressed mood'
    best = found[("depressive-disorders", "bipolar-and-related-disorders")][0].answers[0][0]
    assert best.text.startswith("Bipolar disorders are defined by")  # what the condition is, before what else its chapter says


@pytest.fixture(scope="module")
def handbook_zh():
    """The Chinese sample handbook: its document, a FAISS index over its chunks, and the embedder."""
    from ragtune.index.chunking import chunk_chapter
    from ragtune.index.embedding import Embedder
    from ragtune.ingest.pdf_parser import parse_pdf

    document = parse_pdf(Path(__file__).resolve().parent.parent / "sample_handbook" / "handbook_zh.pdf")
    embedder = Embedder()
    chunks = [c for ch in document.chapters for c in chunk_chapter(ch, document.doc_id, embedder.tokenize)]
    return document, ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks])), embedder


def test_a_chinese_differential_line_bridges_to_the_chapter_of_its_title(handbook_zh):
    document, index, embedder = handbook_zh
    first, second = bridge_evidence("jiao-lv-zhang-ai", index, embedder)[0]
    joined = hop_units([first, second])
    assert second["chapter_key"] == "yi-yu-zhang-ai" and joined.named == "抑郁障碍" and joined.bridge.text.startswith("抑郁障碍：")
    assert "躯体疾病" not in {j.named for e in bridge_evidence("jiao-lv-zhang-ai", index, embedder) if (j := hop_units(e))}  # no chapter's
    assert joined.answers[0][0].text.startswith("抑郁障碍的共同核心")
    plan = plan_chapter_evidence(chapter_of(document, "jiao-lv-zhang-ai"), index, embedder, EvidenceSettings(rounds=2, task_mix=ONLY_MULTI_HOP))
    (row,) = _rows(plan)[:1]
    assert row["question"] == "抑郁障碍的共同核心是什么，如何鉴别抑郁障碍与焦虑障碍？"
    assert row["answer"] == joined_answer([h["answer"] for h in row["hops"]], "zh") and [h["chapter_key"] for h in row["hops"]] == ["yi-yu-zhang-ai", "jiao-lv-zhang-ai"]
    assert first_broken_rule(row) is None and grounding_verdict(row).grounded and audit([row])["multi_hop_rows_meeting"] == 1
    # Its answer-first and abstractive prompts are Chinese and carry both passages' facts.
    units = [joined.answers[0][0], joined.bridge]
    for mode in ("extractive", "abstractive"):
        messages = answer_first.render(plan, 0, units, mode, format_passages(plan.rounds[0].evidence)) if mode != "abstractive" else \
            render_messages(task_template("multi_hop", "zh"), passages=format_passages(plan.rounds[0].evidence), chapter_title="焦虑障碍", n_pairs=1, focus="鉴别诊断")
        text = messages[-1]["content"]
        assert "抑郁障碍的共同核心" in text and "抑郁障碍同样常见担忧" in text and "两" in text


def _rows(plan) -> list[dict]:
    """Every multi-hop round's row, as generation stores it, the model having written the built question the
    grammar allows (its only choice)."""
    rows = []
    for n, planned in enumerate(plan.rounds):
        units = answer_first.round_units(plan, n, free_questions=False)
        if not units:
            continue
        (question,) = questions_of(structured_question(plan, planned, units))
        output = json.dumps({"question": question})
        found = answer_first.parse(plan, planned, units, "extractive", output)
        rows.append(_qa_row(plan, planned, n, found, Completion(output, "key", False, "test"), "extractive", units))
    return rows


@pytest.fixture(scope="module")
def depressive_rows(handbook_document, handbook_index, embedder):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "depressive-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=6, task_mix=ONLY_MULTI_HOP))
    return _rows(plan)


def test_a_multi_hop_row_asks_both_hops_and_answers_each_from_its_own_chapter(depressive_rows):
    assert [r["question"] for r in depressive_rows] == [
        "How are bipolar disorders defined, and how is bipolar disorder told apart from major depression?",
        "What are adjustment disorders, and how is adjustment disorder with depressed mood told apart from major depression?"]
    for row in depressive_rows:
        hops = row["hops"]
        assert [h["chapter_key"] for h in hops][1] == "depressive-disorders" and hops[0]["chapter_key"] != "depressive-disorders"
        evidence = {e["chunk_id"]: e["text"] for e in row["evidence"]}
        for hop in hops:
            assert hop["answer"] == "".join(c["text"] for c in hop["cites"])
            assert all(c["chunk_id"] == hop["chunk_id"] and evidence[hop["chunk_id"]][c["start"]:c["end"]] == c["text"] for c in hop["cites"])
        assert row["answer"] == joined_answer([h["answer"] for h in hops], "en")
        assert row["joins"]["condition"] in ("Bipolar disorder", "Adjustment disorder")
        assert hops_problem(row) is None and first_broken_rule(row) is None and grounding_verdict(row).grounded
    report = audit(depressive_rows)
    assert report["multi_hop_rows"] == report["multi_hop_rows_meeting"] == 2, report["failures"]


def test_an_unsupported_hop_fails_the_gate_and_the_audit(depressive_rows):
    """Hop 1 told with the bridge chapter's sentence: every word is in the row's evidence, none in its own chunk."""
    row = copy.deepcopy(depressive_rows[0])
    hops = row["hops"]
    hops[0]["answer"] = hops[1]["answer"]
    row["answer"] = joined_answer([h["answer"] for h in hops], "en")
    verdict = grounding_verdict(row)
    assert not verdict.grounded and verdict.reason.startswith("hop 1 (bipolar-and-related-disorders)"), verdict
    assert audit([row])["by_rule"]["hops_supported"] == 1
    assert filter_qa([row], FilterSettings()).rejected[0]["rule"] != "kept"


@pytest.mark.parametrize("break_it, said", [
    (lambda r: r["hops"][0].update(chapter_key=r["hops"][1]["chapter_key"]), "nothing is joined"),
    (lambda r: r.update(question=r["question"].split(", and ")[0] + "?"), "does not ask hop 2"),
    (lambda r: r.update(answer=r["hops"][1]["answer"]), "not its hops' answers joined"),
    (lambda r: r["hops"][0].update(cites=[]), "cites no span"),
    (lambda r: r.update(hops=r["hops"][:1]), "needs two hops"),
])
def test_a_row_that_is_not_one_question_over_two_chapters_breaks_the_hops_rule(depressive_rows, break_it, said):
    row = copy.deepcopy(depressive_rows[0])
    break_it(row)
    assert said in hops_problem(row) and first_broken_rule(row)[0] == "hops"


def test_a_hop_whose_other_chapter_says_nothing_of_the_condition_breaks_the_rule(depressive_rows):
    row = copy.deepcopy(depressive_rows[0])
    row["joins"]["condition"] = "Adjustment disorder"  # the bipolar hop does not speak of it
    assert "does not speak of 'Adjustment disorder'" in hops_problem(row)


def test_an_edit_of_the_other_chapter_plans_the_round_again(handbook_document, handbook_chunks, embedder):
    """The depressive chapter's multi-hop rounds read the bipolar chapter's overview: its edit changes the
    depressive plan's hash (its data version), so the depressive chapter regenerates."""
    from ragtune.index.chunking import Chunk

    def plan(chunks):
        index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
        return plan_chapter_evidence(chapter_of(handbook_document, "depressive-disorders"), index, embedder,
                                     EvidenceSettings(rounds=4, task_mix=ONLY_MULTI_HOP))

    before = plan(handbook_chunks)
    assert before.chapters_joined() == ["bipolar-and-related-disorders", "trauma-and-stressor-related-disorders"]
    partner = before.rounds[0].evidence[1]
    assert partner["chapter_key"] == "bipolar-and-related-disorders"
    edited = [Chunk(**{**c.to_dict(), "text": c.text.replace("increased energy", "raised energy")}) if c.chunk_id == partner["chunk_id"] else c
              for c in handbook_chunks]
    after = plan(edited)
    assert "raised energy" in after.rounds[0].evidence[1]["text"] and after.content_sha256() != before.content_sha256()


def test_the_card_and_status_count_multi_hop_rows_per_chapter_pair(depressive_rows):
    pairs = rows_per_chapter_pair({"train": depressive_rows[:1], "validation": [], "test": depressive_rows[1:]})
    assert pairs == [
        {"chapters": "bipolar-and-related-disorders + depressive-disorders", "train": 1, "validation": 0, "test": 0, "total": 1},
        {"chapters": "depressive-disorders + trauma-and-stressor-related-disorders", "train": 0, "validation": 0, "test": 1, "total": 1}]
    section = "\n".join(chapter_pair_section(pairs, chapters=6))
    assert "they join 2 of the 15 pairs of this collection's 6 chapters" in section


def test_the_real_model_writes_multi_hop_rows_that_meet_every_rule_hop_by_hop(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    """The 135M model on every chapter of the bundled handbook: the kept multi-hop rows, each hop supported by its
    own chapter and fitting its question by the audit written apart, >= 90% of them (the issue's goal)."""
    llm = embedded_llm(tmp_path)
    kept = []
    for chapter in handbook_document.chapters:
        plan = plan_chapter_evidence(chapter, handbook_index, embedder, EvidenceSettings(rounds=6, task_mix=ONLY_MULTI_HOP))
        result = generate_chapter_qa(plan, llm, GenerationSettings(quota=3, max_waves=1, max_tokens=160))
        kept += filter_qa(result.qa_pairs, FilterSettings()).kept
    assert all(first_broken_rule(r) is None and grounding_verdict(r).grounded for r in kept)
    report = audit(kept)
    assert report["multi_hop_rows"] == len(kept) >= 6
    assert report["multi_hop_rows_meeting"] / report["multi_hop_rows"] >= 0.9, report["failures"]
    assert len(rows_per_chapter_pair({"train": kept})) >= 6


def test_the_real_model_writes_a_chinese_multi_hop_row(handbook_zh, tmp_path, embedded_llm):
    document, index, embedder = handbook_zh
    plan = plan_chapter_evidence(chapter_of(document, "jiao-lv-zhang-ai"), index, embedder, EvidenceSettings(rounds=4, task_mix=ONLY_MULTI_HOP))
    result = generate_chapter_qa(plan, embedded_llm(tmp_path), GenerationSettings(quota=2, max_waves=1, max_tokens=160))
    kept = filter_qa(result.qa_pairs, FilterSettings()).kept
    assert [r["question"] for r in kept] == ["抑郁障碍的共同核心是什么，如何鉴别抑郁障碍与焦虑障碍？"], result.failures
    assert audit(kept)["multi_hop_rows_meeting"] == 1 and kept[0]["language"] == "zh"


def test_an_abstractive_multi_hop_row_cites_each_hop_from_the_passage_its_answer_overlaps(handbook_document, handbook_index, embedder):
    """A strong writer's output (abstractive mode) as the template asks for it: each hop's answer, copied from
    its passage, cites that passage's spans and takes its chapter from it; an invented hop fails the gate."""
    from ragtune.generate.qa_generation import parse_items

    plan = plan_chapter_evidence(chapter_of(handbook_document, "depressive-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=2, task_mix=ONLY_MULTI_HOP))
    planned = plan.rounds[0]
    joined = hop_units(planned.evidence)
    other, bridge = joined.answers[0][0].text, joined.bridge.text
    written = {"pairs": [{"question": "What defines bipolar disorders, and what history points to them in a depressed patient?",
                          "hops": [{"question": "What defines bipolar disorders?", "answer": other},
                                   {"question": "What history points to bipolar disorder in a depressed patient?", "answer": bridge}]}]}
    output = json.dumps(written)
    (found,) = parse_items("multi_hop", output)
    row = _qa_row(plan, planned, 0, found, Completion(output, "key", False, "test"), "abstractive", [])
    assert [(h["chapter_key"], h["chapter_title"]) for h in row["hops"]] == [
        ("bipolar-and-related-disorders", "Bipolar and Related Disorders"), ("depressive-disorders", "Depressive Disorders")]
    assert all(h["cites"] and all(c["chunk_id"] == h["chunk_id"] for c in h["cites"]) for h in row["hops"])
    assert row["answer"] == joined_answer([other, bridge], "en") and hops_problem(row) is None and grounding_verdict(row).grounded
    written["pairs"][0]["hops"][0]["answer"] = "Bipolar disorders are cured by a single course of lithium within two weeks."
    output = json.dumps(written)
    (found,) = parse_items("multi_hop", output)
    invented = _qa_row(plan, planned, 0, found, Completion(output, "key", False, "test"), "abstractive", [])
    assert not grounding_verdict(invented).grounded
