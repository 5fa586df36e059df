"""Answer-first generation on the real handbook: answers cut from the parsed structure with exact
offsets, and the embedded SmolLM2 writing only questions, cases and patient turns."""

from __future__ import annotations

import json

import pytest

from ragtune.generate import answer_first
from ragtune.generate.answer_units import answer_units, units_for_task
from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence
from ragtune.generate.grounding import grounding_verdict
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
from ragtune.generate.row_rules import MARKUP, SOURCE_REFERENCE, first_broken_rule
from ragtune.text import unsupported_terms
from tests.conftest import chapter_of


def test_units_come_from_the_parsed_structure_with_exact_offsets(handbook_chunks):
    units = [u for c in handbook_chunks for u in answer_units(c.to_dict())]
    texts = {c.chunk_id: c.text for c in handbook_chunks}
    kinds = {u.kind for u in units}
    assert kinds == {"sentence", "definition", "criteria_list", "table_row"}
    for unit in units:
        chunk_text = texts[unit.chunk_id]
        if unit.kind == "table_row":  # rendered "Header: cell; ..." from the header and row spans
            assert unsupported_terms(unit.text, chunk_text) == [] and len(unit.spans) == 2
            assert all(" | " in chunk_text[s:e] for s, e in unit.spans)
        else:
            ((start, end),) = unit.spans
            assert chunk_text[start:end] == unit.text
        assert not MARKUP.search(unit.text) and not SOURCE_REFERENCE.search(unit.text.split("\n")[-1])
    criteria = [u for u in units if u.kind == "criteria_list" and "intrusion symptom" in u.text]
    assert criteria and criteria[0].text.split("\n")[1].startswith("1. Recurrent, involuntary")  # lead-in and labels stay
    cut = next(c for c in handbook_chunks if "nine symptoms" in c.text and c.text.endswith("9."))
    assert not [u for u in answer_units(cut.to_dict()) if u.kind == "criteria_list"]  # a list the chunk cuts is no answer


def test_tasks_prefer_answers_that_suit_them(handbook_chunks):
    treatment = next(c for c in handbook_chunks if c.section_path[-1] == "Treatment and Management" and " | " in c.text)
    first = units_for_task(treatment.to_dict(), "treatment_management")[0]
    assert first.kind == "table_row"
    differential = next(c for c in handbook_chunks if c.section_path[-1] == "Differential Diagnosis")
    assert units_for_task(differential.to_dict(), "differential_diagnosis")[0].kind == "sentence"


def test_a_clinicians_reply_is_never_a_criterion_cut_from_a_list(handbook_chunks):
    """The demo kept a dialogue whose clinician 'said' anorexia nervosa's criteria A and B; a dialogue's
    replies are sentences said aloud, while factual recall still takes the criteria."""
    criteria = next(c for c in handbook_chunks if "\nA. Restriction of energy intake" in c.text)
    recall = [u.text for u in units_for_task(criteria.to_dict(), "factual_recall")]
    replies = [u.text for u in units_for_task(criteria.to_dict(), "counselling_dialogue")]
    assert any(t.startswith("Restriction of energy intake") for t in recall)
    assert not any(t.startswith(("Restriction of energy intake", "Intense fear of gaining weight")) for t in replies)
    diagnosed = units_for_task(criteria.to_dict(), "clinical_vignette")
    assert not any(u.text.startswith(("Restriction of energy intake", "Intense fear of gaining weight")) for u in diagnosed)
    gad = next(c for c in handbook_chunks if c.section_path[-1] == "Diagnostic Criteria for Generalized Anxiety Disorder")
    assert [u.kind for u in units_for_task(gad.to_dict(), "clinical_vignette")] == ["criteria_list"]


def test_rounds_on_one_chunk_take_its_answers_in_turn(handbook_document, handbook_index, embedder):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "depressive-disorders"), handbook_index, embedder, EvidenceSettings(rounds=40))
    answers = [tuple(u.unit_id for u in answer_first.round_units(plan, n)) for n in range(40) if plan.rounds[n].task == "factual_recall"]
    assert len(set(answers)) == len(answers)  # no two factual rounds share an answer while a chunk has more
    dialogue = next(n for n in range(40) if plan.rounds[n].task == "counselling_dialogue")
    first, second = answer_first.round_units(plan, dialogue)
    assert first.unit_id != second.unit_id


def test_answer_modes_are_checked():
    with pytest.raises(ValueError, match="answer_mode"):
        generate_chapter_qa(None, None, GenerationSettings(answer_mode={"factual_recall": "creative"}))


def test_extractive_generation_on_the_real_model(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "anxiety-disorders"), handbook_index, embedder, EvidenceSettings(rounds=12))
    llm = embedded_llm(tmp_path)
    settings = GenerationSettings(quota=3, max_waves=2, max_tokens=160)
    result = generate_chapter_qa(plan, llm, settings)
    assert result.qa_pairs, result.failures
    for row in result.qa_pairs:
        assert row["answer_mode"] == "extractive"
        texts = {e["chunk_id"]: e["text"] for e in row["evidence"]}
        for span in row["supporting_spans"]:
            assert texts[span["chunk_id"]][span["start"] : span["end"]] == span["text"]
        if row["task"] == "counselling_dialogue":
            clinician = [t["content"] for t in row["turns"] if t["role"] == "clinician"]
            assert [t["role"] for t in row["turns"]] == ["patient", "clinician", "patient", "clinician"]
            assert all(any(turn == texts[s["chunk_id"]][s["start"] : s["end"]] for s in row["supporting_spans"]) for turn in clinician)
        elif row["task"] not in ("unanswerable", "clinical_vignette") and row["answer_units"][0]["kind"] != "table_row":
            assert row["answer"] == row["supporting_spans"][0]["text"]  # the answer is the evidence itself
    kept = filter_qa(result.qa_pairs, FilterSettings()).kept
    assert len(kept) == result.kept
    for row in kept:
        assert first_broken_rule(row) is None and grounding_verdict(row).grounded
    rerun = generate_chapter_qa(plan, embedded_llm(tmp_path), settings)
    assert rerun.llm_calls == 0 and rerun.qa_pairs == result.qa_pairs


def test_the_question_grammar_keeps_markup_out_and_ends_with_a_question_mark(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "bipolar-and-related-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=4, task_mix={"factual_recall": 1}))
    llm = embedded_llm(tmp_path)
    result = generate_chapter_qa(plan, llm, GenerationSettings(quota=4, max_waves=1, max_tokens=80, retries=0))
    assert len(result.qa_pairs) == 4, result.failures
    for row in result.qa_pairs:
        assert row["question"].endswith(("?", "？")) and not any(ch in row["question"] for ch in "<>{}[]|*#")


def test_vignettes_come_with_a_case_or_are_rejected(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "depressive-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=3, task_mix={"clinical_vignette": 1}))
    llm = embedded_llm(tmp_path)
    result = generate_chapter_qa(plan, llm, GenerationSettings(quota=3, max_waves=1, max_tokens=200, retries=0))
    assert result.qa_pairs, result.failures
    for row in result.qa_pairs:
        assert row["question"].startswith(row["case"]) and row["answer"].endswith(row["supporting_spans"][0]["text"])
    filtered = filter_qa(result.qa_pairs, FilterSettings())
    for row in filtered.kept:
        assert first_broken_rule(row) is None
    caseless = {**result.qa_pairs[0], "question": "What is the most likely diagnosis?", "qa_id": "caseless"}
    assert filter_qa([caseless], FilterSettings()).rejected[0]["rule"] == "caseless_vignette"


def test_hybrid_answers_are_held_to_the_evidence(handbook_document, handbook_index, embedder):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "anxiety-disorders"), handbook_index, embedder, EvidenceSettings(rounds=1))
    planned, units = plan.rounds[0], answer_first.round_units(plan, 0)
    faithful = answer_first.parse(plan, planned, units, "hybrid", json.dumps({"question": "Which?", "answer": units[0].text}))
    invented = answer_first.parse(plan, planned, units, "hybrid", json.dumps({"question": "Which?", "answer": units[0].text + " Dystrape helps."}))
    row = {"task": planned.task, "evidence": planned.evidence}
    assert grounding_verdict({**row, **faithful}).grounded
    verdict = grounding_verdict({**row, **invented})
    assert not verdict.grounded and "dystrape" in verdict.unsupported


def test_a_chinese_question_is_made_of_its_answers_words_and_opens_in_chinese():
    import re

    answer = "抑郁障碍的共同核心是持续的情绪低落，或者明显失去兴趣和愉快感。"
    pattern = answer_first.schema("factual_recall", "extractive", answer, "抑郁障碍 概述", "zh")["properties"]["question"]["pattern"]
    assert re.fullmatch(pattern, "抑郁障碍的共同核心是什么？")
    assert re.fullmatch(pattern, "情绪低落持续多久？")
    assert not re.fullmatch(pattern, "What is the core of depressive disorders?")  # another language
    assert not re.fullmatch(pattern, "抑郁障碍的家族病史是什么？")  # 家族病史: not a word of the answer
    assert not re.fullmatch(pattern, "概述的共同核心是什么？")  # a section-title word asks about nothing
    opened = answer_first.schema("clinical_vignette", "extractive", answer, "", "zh")["properties"]["case"]["pattern"]
    assert not re.fullmatch(opened, "A 34-year-old man is seen in the clinic with low mood for two months, poor sleep and guilt.")


def test_an_unanswerable_rows_answer_says_what_the_passages_are_about_in_a_sentence():
    from types import SimpleNamespace

    plan = SimpleNamespace(language="en", chapter_title="Bipolar and Related Disorders")
    assert answer_first.passage_topic(plan, SimpleNamespace(focus="Course and Prognosis")) == "the course and prognosis of Bipolar and Related Disorders"
    assert answer_first.passage_topic(plan, SimpleNamespace(focus="Diagnostic Criteria for a Manic Episode")) == "Diagnostic Criteria for a Manic Episode"
    assert "what they cover is" not in answer_first.UNANSWERABLE_ANSWER["en"]


def test_a_sentence_that_opens_with_a_pronoun_is_an_answer_only_with_the_sentence_before_it():
    chunk = {"chunk_id": "x", "text": "Selective serotonin reuptake inhibitors are the first-line medicines for anxiety disorders. They take two "
             "to four weeks to help and can briefly increase jitteriness at the start, so low starting doses are used."}
    texts = [u.text for u in answer_units(chunk)]
    assert not any(t.startswith("They take") for t in texts)  # the reader met 'They take two to four weeks' with no 'they'
    assert any(t.startswith("Selective serotonin") and "They take" in t for t in texts)


def test_a_link_an_address_a_heading_or_a_dangling_however_is_no_answer():
    """Web pages (the NIMH collection, read 2026-12-05) gave answers such as a publication's address, a link
    title with no sentence and a 'However, ...' whose contrast is with a sentence left out. Our own wording here."""
    chunk = {"chunk_id": "x", "text": (
        "Panic disorder is treated with cognitive behavioural therapy, an antidepressant or both together.\n"
        "•. Treatment options for panic (Our Clinic Library)\n"
        "However, panic attacks in panic disorder come without warning and lead to months of worry about the next one.\n"
        "Our clinic answers questions about panic at https://clinic.example.org/panic or by telephone 555-123-4567.\n"
        "•. Slow breathing exercises can shorten a panic attack and make the next one less frightening.")}
    texts = [u.text for u in answer_units(chunk)]
    assert texts[0].startswith("Panic disorder is treated") and any(t.startswith("Slow breathing") for t in texts)  # '•. ' is a bullet
    assert not any(t.startswith(("Treatment options", "However", "Our clinic", "•")) for t in texts), texts
