"""Counselling dialogues that counsel (issue 33 item 3): the patient speaks as a patient, the clinician asks
before informing, asking turns claim nothing, informing turns cite their spans and alone face the gate.
Dialogues in our own words."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ragtune.curate.exports import to_counselling
from ragtune.generate.dialogue import ASK, INFORM, ask_problem, counselling_problem, reflection
from ragtune.generate.grounding import grounding_verdict
from ragtune.generate.qa_fit import dialogue_fit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import audit_rows  # noqa: E402

EVIDENCE = ("Low mood or loss of interest on most days for at least two weeks marks a major depressive episode.\n"
            "Talking therapy and antidepressant medicine both help, and many people recover within months.")


def cite(text: str) -> list[dict]:
    start = EVIDENCE.find(text)
    if start < 0:  # not the evidence's: it cites the passage's opening words
        return [{"chunk_id": "c1", "start": 0, "end": 10, "text": EVIDENCE[:10], "overlap": 0.1}]
    return [{"chunk_id": "c1", "start": start, "end": start + len(text), "text": text, "overlap": 1.0}]


def row(*patient: str, asking: str | None = None, first: str = EVIDENCE.splitlines()[0], second: str = EVIDENCE.splitlines()[1]) -> dict:
    opening = patient[0] if patient else "I have felt low and lost interest in everything for weeks."
    asked = patient[1] if len(patient) > 1 else "How long does low mood have to last to be depression?"
    follow = patient[2] if len(patient) > 2 else "What can help me recover?"
    turns = [{"role": "patient", "content": opening},
             {"role": "clinician", "content": asking or reflection(opening, "en"), "act": ASK},
             {"role": "patient", "content": asked},
             {"role": "clinician", "content": first, "act": INFORM, "cites": cite(first)},
             {"role": "patient", "content": follow},
             {"role": "clinician", "content": second, "act": INFORM, "cites": cite(second)}]
    return {"qa_id": "dlg-1", "task": "counselling_dialogue", "language": "en", "chapter_key": "depressive", "chapter_title": "Depressive Disorders", "question": asked,
            "answer": first, "turns": turns,
            "evidence": [{"chunk_id": "c1", "doc_id": "handbook", "pages": [3], "text": EVIDENCE, "section_path": ["Depressive Disorders"]}]}


def test_a_dialogue_that_counsels_passes_and_its_asking_turn_says_back_the_patients_words():
    good = row()
    assert good["turns"][1]["content"].startswith("It sounds like you have felt low and lost interest in everything for weeks. ")
    assert dialogue_fit(good) is None and grounding_verdict(good).grounded
    assert audit_rows.audit_row(good) == [] and audit_rows.patient_voice([good]) == (3, 0)


@pytest.mark.parametrize("said", [
    "It sounds like you have been struggling, and I recommend you see a doctor soon.",
    "I understand how you feel; your symptoms are common and treatable.",
    "As an AI assistant, I can tell you that low mood is common.",
])
def test_a_patient_turn_in_an_assistants_voice_fails_the_fit_check_and_the_audit_counts_it(said):
    for at in range(3):
        patient = ["I have felt low and lost interest in everything for weeks.", "How long does low mood have to last to be depression?",
                   "What can help me recover?"]
        patient[at] = said
        planted = row(*patient)
        assert "speaks as a clinician, an assistant or a document" in (dialogue_fit(planted) or ""), (at, dialogue_fit(planted))
        assert audit_rows.patient_voice([planted]) == (3, 1)


def test_a_patient_opening_must_say_what_they_go_through_in_their_own_voice():
    assert "says nothing they feel" in dialogue_fit(row("I am here to talk about depressive disorders."))
    assert "neither speaks in the first person" in dialogue_fit(row("Depression is a common illness of mood."))
    assert "a patient" in dialogue_fit(row("I am worried about a patient with low mood."))


def test_a_patient_statement_that_repeats_the_clinicians_words_speaks_as_the_document():
    """The 1.5B writing its own patient turns copied a reply as the patient's line ('They more often describe poor
    sleep, tiredness, ...', the depressive chapter, 2026-12-07). A question may reuse its answer's subject."""
    copied = row("I have felt low and lost interest in everything for weeks.", "How long does low mood have to last to be depression?",
                 "I read that talking therapy and antidepressant medicine both help, and many people recover.")
    assert "repeats the clinician's words" in dialogue_fit(copied)
    asked = row("I have felt low and lost interest in everything for weeks.", "How long does low mood have to last to be depression?",
                "Do talking therapy and antidepressant medicine both help?")
    assert dialogue_fit(asked) is None


def test_an_asking_turn_that_states_a_fact_is_a_claim_without_a_citation():
    cited = "It sounds like you feel low. A major depressive episode needs two weeks of symptoms. How long has it been?"
    invented = "It sounds like you feel low. Ketamine lifts that within hours. Would you like to try it?"
    assert "states what the patient did not say" in dialogue_fit(row(asking=cited))
    assert "'ketamine, lifts, hours'" in dialogue_fit(row(asking=invented))  # in no evidence either: the gate never reads this turn
    assert ask_problem("It sounds like you feel low, and that must be hard. How long has it been?", "I feel low.") is None
    assert "asks nothing" in ask_problem("It sounds like you feel low.", "I feel low.")
    # The audit, written apart, holds an asking turn's statements to the evidence and the patient's words ...
    assert any(rule == "supported_terms" for rule, _ in audit_rows.audit_row(row(asking=invented)))
    # ... and leaves its question free.
    assert audit_rows.audit_row(row(asking="It sounds like you have lost interest in everything. What would you most like to understand?")) == []


def test_the_gate_reads_informing_turns_only_and_each_must_cite_its_span():
    good = row()
    assert grounding_verdict(good).grounded  # the reflection's words ('sounds', 'understand') are in no evidence
    invented = row(second="Electroconvulsive therapy cures every patient within a week.")
    assert not grounding_verdict(invented).grounded
    uncited = row()
    uncited["turns"][3]["cites"] = []
    assert counselling_problem(uncited) == "an informing clinician turn cites no span of the evidence"


def test_a_dialogue_is_three_to_eight_alternating_turns_with_a_clinician_that_asks():
    good = row()
    assert counselling_problem({**good, "turns": good["turns"][:2]}) == "the dialogue has 2 turns, not 3-8"
    assert counselling_problem({**good, "turns": good["turns"] + good["turns"][:3]}) == "the dialogue has 9 turns, not 3-8"
    swapped = [good["turns"][1], good["turns"][0], *good["turns"][2:]]
    assert "do not alternate" in counselling_problem({**good, "turns": swapped})
    reciting = [good["turns"][2], good["turns"][3], good["turns"][4], good["turns"][5]]  # the old four turns: the clinician only recites
    assert counselling_problem({**good, "turns": reciting}) == "no clinician turn asks: the clinician only recites the evidence"
    assert counselling_problem({**good, "turns": good["turns"][:4]}) is None  # opening, asking, question, answer: four turns are a dialogue


def test_a_reflection_turns_first_person_into_second_in_english_and_chinese():
    assert reflection("I'm scared because I was fine and my mind now races.", "en").startswith(
        "It sounds like you're scared because you were fine and your mind now races. ")
    assert reflection("Someone in my family may have bipolar disorder, and I feel lost.", "en").startswith(
        "It sounds like someone in your family may have bipolar disorder, and you feel lost. ")
    said = "我最近总是睡不好，觉得自己什么都做不好。"
    asked = reflection(said, "zh")
    assert asked.startswith("听起来你最近总是睡不好，觉得自己什么都做不好。") and asked.endswith("？")
    assert ask_problem(asked, said) is None
    assert "两" in ask_problem("听起来你最近总是睡不好。抑郁发作要持续两周。你想了解什么？", said)


def test_the_counselling_export_gives_one_record_per_clinician_turn_asking_and_informing():
    records = to_counselling(row())
    assert [r["target"] for r in records] == [t["content"] for t in row()["turns"] if t["role"] == "clinician"]
    assert records[0]["input"] == f"Patient: {row()['turns'][0]['content']}\nClinician: "
    assert records[2]["input"].count("\n") == 5 and records[2]["input"].endswith("\nClinician: ")  # the dialogue so far, a turn per line


@pytest.mark.slow
@pytest.mark.parametrize("book, chapter_key, patient_label", [
    ("handbook.pdf", "feeding-and-eating-disorders", "Patient: "), ("handbook_zh.pdf", "jiao-lv-zhang-ai", "病人："),
])
def test_the_embedded_model_makes_dialogues_that_counsel_in_english_and_chinese(book, chapter_key, patient_label, embedder, tmp_path, embedded_llm):
    """The 135M model on the bundled handbooks: each dialogue opens with the patient's trouble, the clinician says
    it back and asks, then informs twice with spans of its passages; the filter keeps at least one, and the audit
    finds no patient turn out of the patient's voice."""
    from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence
    from ragtune.generate.qa_filter import FilterSettings, filter_qa
    from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
    from ragtune.index.chunking import chunk_chapter
    from ragtune.index.vector_index import ChunkIndex
    from ragtune.ingest.pdf_parser import parse_pdf

    document = parse_pdf(Path(__file__).resolve().parents[1] / "sample_handbook" / book)
    chunks = [c for ch in document.chapters for c in chunk_chapter(ch, document.doc_id, embedder.tokenize)]
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    chapter = next(c for c in document.chapters if c.chapter_key == chapter_key)
    plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=8, task_mix={"counselling_dialogue": 1}))
    result = generate_chapter_qa(plan, embedded_llm(tmp_path), GenerationSettings(quota=2, max_waves=1, max_tokens=160, retries=0))
    assert result.qa_pairs and not result.failures, result.failures
    kept = filter_qa(result.qa_pairs, FilterSettings()).kept
    assert kept
    for row in kept:
        turns = row["turns"]
        assert [t.get("act") for t in turns] == [None, ASK, None, INFORM, None, INFORM]
        texts = {e["chunk_id"]: e["text"] for e in row["evidence"]}
        assert all(t["content"] == "".join(texts[s["chunk_id"]][s["start"]:s["end"]] for s in t["cites"]) for t in turns[3::2])
        assert turns[1]["content"].startswith(("It sounds like", "听起来")) and ask_problem(turns[1]["content"], turns[0]["content"]) is None
        assert to_counselling(row)[0]["input"].startswith(patient_label + turns[0]["content"])
        assert (row["question"], row["answer"]) == (turns[2]["content"], turns[3]["content"])  # the first exchange that informs
    assert audit_rows.patient_voice(kept) == (3 * len(kept), 0)


def test_a_held_out_dialogue_counts_its_patient_questions_not_its_opening_as_what_it_asks():
    """A built opening ('I have been worried about an eating disorder lately.') recurs in dialogues of every
    split; a statement is no question a model could be tested on, so only the patient's questions are sealed."""
    from ragtune.curate.leakage import held_out_question_texts

    held = row()
    assert held_out_question_texts(held) == [held["question"], *(t["content"] for t in held["turns"][2::2])]
    assert held["turns"][0]["content"] not in held_out_question_texts(held)


def test_the_audit_reads_a_chinese_reflection_as_the_patients_words_said_back():
    said = "我怀疑自己可能有焦虑障碍，心里很不安。"
    turns = [{"role": "patient", "content": said}, {"role": "clinician", "content": reflection(said, "zh"), "act": ASK},
             {"role": "patient", "content": "惊恐发作是什么？"}, {"role": "clinician", "content": "惊恐发作是突然出现的强烈恐惧。", "act": INFORM}]
    zh = {"qa_id": "zh-dlg", "task": "counselling_dialogue", "language": "zh", "question": turns[2]["content"], "answer": turns[3]["content"],
          "turns": turns, "evidence": [{"chunk_id": "c1", "text": "惊恐发作是突然出现的强烈恐惧。", "section_path": ["焦虑障碍"]}]}
    assert audit_rows.check_supported(zh, audit_rows.Evidence(audit_rows.evidence_text(zh))) == []
    claimed = {**zh, "turns": [turns[0], {**turns[1], "content": "听起来你可能有焦虑障碍，需要服用苯二氮䓬类药物。你怎么看？"}, *turns[2:]]}
    assert audit_rows.check_supported(claimed, audit_rows.Evidence(audit_rows.evidence_text(claimed)))


def test_a_dialogue_is_deduplicated_against_dialogues_only():
    """The e2e run's only dialogue went as a 'minhash_pair' repeat of a factual row: its first exchange was that
    row's built question and answer (one unit). A dialogue repeats only a dialogue."""
    from ragtune.curate.dedup import DedupSettings, deduplicate

    dialogue = row()
    pair = {"qa_id": "pair-1", "task": "factual_recall", "chapter_key": "depressive", "question": dialogue["question"], "answer": dialogue["answer"]}
    settings = DedupSettings(stages=("exact", "minhash_question", "minhash_pair"))
    assert [r["qa_id"] for r in deduplicate([pair, dialogue], None, settings).kept] == ["pair-1", "dlg-1"]
    again = {**dialogue, "qa_id": "dlg-2"}
    result = deduplicate([pair, dialogue, again], None, settings)
    assert [r["qa_id"] for r in result.kept] == ["pair-1", "dlg-1"] and result.removed[0]["duplicate_of"] == "dlg-1"
    # ... and so in a chapter's filter: the pair and the dialogue asking its question both stay, a second copy goes.
    from ragtune.generate.qa_filter import FilterSettings, filter_qa

    dialogue = row("I have felt low and lost interest in everything for weeks.", "What marks a major depressive episode?")
    pair = {**pair, "question": dialogue["question"], "language": "en", "chapter_title": "Depressive Disorders", "evidence": dialogue["evidence"]}
    filtered = filter_qa([pair, dialogue, {**dialogue, "qa_id": "dlg-2"}], FilterSettings())
    assert [r["qa_id"] for r in filtered.kept] == ["pair-1", "dlg-1"] and filtered.removed["exact_duplicate"] == 1
