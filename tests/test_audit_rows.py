"""Tests of bench/audit_rows.py, the independent row audit: each rule catches its defect, clean rows pass."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "audit_rows.py"
_spec = importlib.util.spec_from_file_location("audit_rows_under_test", SCRIPT)
audit_rows = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit_rows)

GAD = (
    "Generalised anxiety disorder is characterised by excessive worry about everyday matters that is difficult "
    "to control and persists for at least six months. Associated features include restlessness, muscle tension, "
    "poor concentration and disturbed sleep. Cognitive behavioural therapy is recommended as a first-line "
    "psychological treatment, and sertraline is the first-choice medication when drug treatment is needed."
)
LITHIUM = (
    "Lithium remains the first-line long-term treatment for bipolar disorder. Serum levels should be checked "
    "12 hours after the last dose and kept between 0.6 and 0.8 mmol/L for maintenance. Thyroid and kidney "
    "function are monitored every 6 months."
)
GAD_ZH = "广泛性焦虑障碍的核心特征是难以控制的过度担心，持续至少六个月，常伴有坐立不安、肌肉紧张和睡眠障碍。认知行为治疗是一线心理治疗。"


def span(chunk_id: str, text: str, piece: str) -> dict:
    start = text.index(piece)
    return {"chunk_id": chunk_id, "start": start, "end": start + len(piece), "text": piece}


def factual_row() -> dict:
    return {
        "qa_id": "gad-fact-1",
        "task": "factual_recall",
        "language": "en",
        "question": "How long must excessive worry persist before generalised anxiety disorder can be diagnosed?",
        "answer": "Excessive worry that is difficult to control must persist for at least six months.",
        "evidence": [{"chunk_id": "gad-01", "section_path": ["Anxiety Disorders", "Generalised Anxiety Disorder"], "text": GAD}],
        "supporting_spans": [span("gad-01", GAD, "difficult to control and persists for at least six months")],
    }


def lithium_row() -> dict:
    return {
        "qa_id": "bd-treat-1",
        "task": "treatment_management",
        "language": "en",
        "question": "When should a blood sample for serum lithium be taken, and what range is targeted?",
        "answer": "Take it 12 hours after the last dose; keep levels between 0.6 and 0.8 mmol/L for maintenance.",
        "evidence": [{"chunk_id": "bd-07", "text": LITHIUM}],
        "supporting_spans": [span("bd-07", LITHIUM, "12 hours after the last dose")],
    }


def vignette_row() -> dict:
    return {
        "qa_id": "gad-vig-1",
        "task": "clinical_vignette",
        "language": "en",
        "question": (
            "A 34-year-old teacher presents to her GP with eight months of excessive worry about her work and her "
            "children's safety. She describes restlessness, muscle tension and poor concentration. Her sleep has "
            "become disturbed and she finds the worry difficult to control. What is the most likely diagnosis?"
        ),
        "answer": (
            "Generalised anxiety disorder: excessive, difficult-to-control worry with restlessness and muscle "
            "tension that persists for more than six months."
        ),
        "evidence": [{"chunk_id": "gad-01", "section_path": ["Anxiety Disorders", "Generalised Anxiety Disorder"], "text": GAD}],
        "supporting_spans": [],
    }


def dialogue_row() -> dict:
    patient = "I have been worrying about everything for months and I cannot switch off at night. Is something wrong with me?"
    clinician = ("Worry that is difficult to control, with disturbed sleep and muscle tension, can be part of "
                 "generalised anxiety disorder.")
    return {
        "qa_id": "gad-dlg-1",
        "task": "counselling_dialogue",
        "language": "en",
        "question": patient,
        "answer": clinician,
        "turns": [
            {"role": "patient", "content": patient},
            {"role": "clinician", "content": clinician},
            {"role": "patient", "content": "What can help me?"},
            {"role": "clinician", "content": "Cognitive behavioural therapy is a recommended first-line treatment."},
        ],
        "evidence": [{"chunk_id": "gad-01", "section_path": ["Anxiety Disorders", "Generalised Anxiety Disorder"], "text": GAD}],
        "supporting_spans": [],
    }


def zh_row() -> dict:
    return {
        "qa_id": "gad-zh-1",
        "task": "factual_recall",
        "language": "zh",
        "question": "广泛性焦虑障碍的担心需要持续多久？",
        "answer": "难以控制的过度担心，持续至少六个月。",
        "evidence": [{"chunk_id": "gad-zh-01", "text": GAD_ZH}],
        "supporting_spans": [span("gad-zh-01", GAD_ZH, "持续至少六个月")],
    }


def unanswerable_row() -> dict:
    return {
        "qa_id": "gad-na-1",
        "task": "unanswerable",
        "language": "en",
        "question": "What dose of pregabalin is recommended for generalised anxiety disorder in older adults?",
        "answer": "The evidence names sertraline as the first-choice drug but gives no pregabalin dose for older adults.",
        "evidence": [{"chunk_id": "gad-01", "section_path": ["Anxiety Disorders", "Generalised Anxiety Disorder"], "text": GAD}],
        "supporting_spans": [],
    }


CLEAN = [factual_row, lithium_row, vignette_row, dialogue_row, zh_row, unanswerable_row]


def rules(row: dict) -> set[str]:
    return {rule for rule, _ in audit_rows.audit_row(row)}


def detail(row: dict, rule: str) -> str:
    return " ".join(d for r, d in audit_rows.audit_row(row) if r == rule)


def edited(make, **fields) -> dict:
    row = copy.deepcopy(make())
    row.update(fields)
    return row


@pytest.mark.parametrize("make", CLEAN, ids=lambda m: m.__name__)
def test_clean_rows_pass(make):
    assert audit_rows.audit_row(make()) == []


def test_markup_html_tag_in_answer():
    row = edited(factual_row, answer="<p>Excessive worry that is difficult to control must persist for at least six months.</p>")
    assert "markup" in rules(row)
    assert "answer" in detail(row, "markup")


def test_markup_json_debris():
    row = edited(factual_row, answer='"answer": "Excessive worry that is difficult to control must persist for at least six months."')
    assert "markup" in rules(row)
    row = edited(factual_row, answer="Excessive worry must persist for at least six months.\\n")
    assert "markup" in rules(row)
    row = edited(factual_row, answer="Excessive worry must persist for at least six months.\"}")
    assert "markup" in rules(row)


@pytest.mark.parametrize("text", [
    "Excessive worry &amp; poor concentration persist for at least six months.",
    "**Excessive worry** must persist for at least six months.",
    "## Answer\nExcessive worry must persist for at least six months.",
    "Excessive worry must persist for [six months](http://example.org).",
    "| worry | six months |",
    "```Excessive worry must persist for at least six months.```",
])
def test_markup_entities_and_markdown(text):
    assert "markup" in rules(edited(factual_row, answer=text))


def test_markup_in_dialogue_turn():
    row = dialogue_row()
    row["turns"][3]["content"] = "Cognitive behavioural therapy is a <strong>recommended</strong> first-line treatment."
    assert "markup" in rules(row)
    assert "turn 3" in detail(row, "markup")


@pytest.mark.parametrize("question", [
    "What does the chapter say about how long excessive worry must persist?",
    "According to the passage, how long must excessive worry persist?",
    "Which of the following is a first-line psychological treatment?",
    "As mentioned, how long must the worry persist?",
])
def test_self_contained_english(question):
    assert "self_contained" in rules(edited(factual_row, question=question))


def test_self_contained_chinese():
    assert "self_contained" in rules(edited(zh_row, question="根据本章，广泛性焦虑障碍的担心需要持续多久？"))
    assert "self_contained" in rules(edited(zh_row, question="以上材料中，担心需要持续多久？"))


def test_self_contained_leaves_ordinary_clinical_wording_alone():
    ok = [
        "Her temperature is above 38 degrees; should she be seen the following day or now?",
        "For how long must worry persist in adults aged 18 or above?",
        "She mentioned a text message from her sister; how long must worry persist for the diagnosis?",
    ]
    for question in ok:
        assert "self_contained" not in rules(edited(factual_row, question=question)), question
    assert "self_contained" not in rules(edited(zh_row, question="65岁以上的患者担心需要持续多久？"))


def test_self_contained_checks_later_patient_turns():
    row = dialogue_row()
    row["turns"][2]["content"] = "What does the handbook say can help me?"
    assert "self_contained" in rules(row)


def test_is_question():
    row = edited(factual_row, question="Describe how long excessive worry must persist in generalised anxiety disorder.")
    assert "is_question" in rules(row)
    assert "is_question" not in rules(edited(zh_row, question="广泛性焦虑障碍的担心需要持续多久？"))
    # a dialogue's opening patient turn need not be a question
    row = dialogue_row()
    row["question"] = row["turns"][0]["content"] = "I have been worrying about everything for months."
    assert "is_question" not in rules(row)


def test_caseless_vignette():
    row = edited(vignette_row, question="What is the most likely diagnosis?")
    found = rules(row)
    assert "vignette_has_case" in found
    text = detail(row, "vignette_has_case")
    assert "sentence" in text and "no age and no setting" in text


def test_vignette_with_case_words_absent_from_evidence():
    row = edited(vignette_row, question=(
        "A 52-year-old man attends the emergency department after a fall. He is tired. He has a cough. "
        "What is the most likely diagnosis?"
    ))
    assert "vignette_has_case" in rules(row)
    assert "presenting feature" in detail(row, "vignette_has_case")


def test_invented_term_is_unsupported():
    row = edited(factual_row, answer="Excessive worry must persist for at least six months and responds to Dystrape.")
    assert "supported_terms" in rules(row)
    assert "dystrape" in detail(row, "supported_terms")


def test_changed_number_word_and_digits():
    row = edited(factual_row, answer="Excessive worry that is difficult to control must persist for at least three months.")
    assert "supported_terms" in rules(row)
    assert "three" in detail(row, "supported_terms")
    row = edited(lithium_row, answer="Take it 24 hours after the last dose; keep levels between 0.6 and 0.8 mmol/L.")
    assert "24" in detail(row, "supported_terms")
    row = edited(lithium_row, answer="Take it 12 hours after the last dose; keep levels between 0.6 and 1.0 mmol/L.")
    assert "1.0" in detail(row, "supported_terms")
    # a digit answer matches a number word in the evidence
    row = edited(factual_row, answer="Excessive worry must persist for at least 6 months.")
    assert "supported_terms" not in rules(row)


def test_stemmer_matches_inflections():
    evidence = audit_rows.Evidence("She was depressed and the diagnosis was confirmed after treating her insomnia.")
    for word in ("depression", "depressive", "diagnose", "diagnosed", "treatment", "confirms"):
        assert evidence.has_key(audit_rows.stem(word)), word
    assert not evidence.has_key(audit_rows.stem("dystrape"))


def test_unsupported_clinician_turn():
    row = dialogue_row()
    row["turns"][3]["content"] = "Hypnotherapy with Dystrape is the recommended first-line treatment."
    assert "supported_terms" in rules(row)
    assert "turn 3" in detail(row, "supported_terms")


def test_chinese_bigram_support():
    row = edited(zh_row, answer="过度担心通常需要持续至少两年，并伴有心悸和头痛。")
    assert "supported_terms" in rules(row)
    assert "CJK bigram coverage" in detail(row, "supported_terms")


def test_unanswerable_is_exempt_from_support():
    assert "supported_terms" not in rules(unanswerable_row())
    assert "supported_terms" in rules(edited(unanswerable_row, task="factual_recall"))


def test_chinese_answer_on_english_row():
    row = edited(factual_row, answer="难以控制的过度担心，持续至少六个月。")
    assert "language" in rules(row)
    assert "answer" in detail(row, "language")
    # and an English answer on a Chinese row
    assert "language" in rules(edited(zh_row, answer="Excessive worry persists for at least six months."))


def test_answer_repeating_the_question():
    question = factual_row()["question"]
    row = edited(factual_row, answer=question.rstrip("?") + ".")
    assert "not_restating" in rules(row)
    row = edited(factual_row, answer="generalised anxiety disorder can be diagnosed")
    assert "not_restating" in rules(row)
    assert "contained" in detail(row, "not_restating")


def test_wrong_span_offset():
    row = factual_row()
    row["supporting_spans"][0]["start"] += 3
    assert "spans_exact" in rules(row)
    row = factual_row()
    row["supporting_spans"][0]["chunk_id"] = "gad-99"
    assert "spans_exact" in rules(row)
    assert "gad-99" in detail(row, "spans_exact")


def test_audit_counts():
    bad = edited(factual_row, qa_id="bad-1", answer="<p>Dystrape</p>")
    result = audit_rows.audit([factual_row(), zh_row(), bad])
    assert result["rows"] == 3 and result["passing"] == 2
    assert result["share"] == pytest.approx(2 / 3)
    assert result["by_rule"]["markup"] == 1 and result["by_rule"]["supported_terms"] == 1
    assert result["by_rule"]["spans_exact"] == 0
    assert [f["qa_id"] for f in result["failures"]] == ["bad-1"]
    assert {r["rule"] for r in result["failures"][0]["rules"]} >= {"markup", "supported_terms"}


def test_cli_on_folder(tmp_path):
    folder = tmp_path / "qa"
    folder.mkdir()
    rows = [factual_row(), edited(vignette_row, qa_id="caseless", question="What is the most likely diagnosis?")]
    (folder / "ch1.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (folder / "ch1.failures.jsonl").write_text('{"qa_id": "ignored"}\n', encoding="utf-8")
    (folder / "ch1.counts.json").write_text('{"generated": 2}', encoding="utf-8")
    out = tmp_path / "audit.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(folder), "--json", str(out), "--show", "5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "rows: 2" in proc.stdout and "caseless" in proc.stdout and "vignette_has_case" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["rows"] == 2 and data["passing"] == 1 and data["share"] == 0.5
    assert data["by_rule"]["vignette_has_case"] == 1
    assert data["failures"][0]["qa_id"] == "caseless"
    assert {r["rule"] for r in data["failures"][0]["rules"]} >= {"vignette_has_case"}


def test_script_is_independent_of_ragtune():
    source = SCRIPT.read_text(encoding="utf-8")
    assert "import ragtune" not in source and "from ragtune" not in source


def test_a_differential_lines_other_side_may_be_named_by_its_lists_lead_in():
    """'What distinguishes generalized anxiety disorder from OCD?' of the line 'Generalized anxiety disorder: ...'
    under 'The clinician distinguishes OCD from:' compares what its passage compares (the demo, 2026-12-06);
    without that lead-in the answer says nothing of OCD. Our own wording."""
    lines = ["The clinician distinguishes OCD from:", "1. Generalized anxiety disorder: worries are about real-life matters and lead to no rituals.",
             "2. Tic disorders: tics are brief movements with no obsession behind them."]
    answer = lines[1].split(". ", 1)[1]
    path = ["Obsessive-Compulsive and Related Disorders", "Differential Diagnosis"]
    row = {"task": "differential_diagnosis", "question": "What distinguishes generalized anxiety disorder from OCD?", "answer": answer,
           "chapter_title": path[0], "focus": path[1], "evidence": [{"text": "\n".join(lines), "section_path": path}]}
    assert audit_rows.check_fits(row) == []
    alone = {**row, "evidence": [{"text": answer, "section_path": path}]}
    assert audit_rows.check_fits(alone) == ["the answer says nothing of OCD"]


def test_a_reply_that_spells_out_the_acronym_the_patient_asked_about_answers_it():
    """'I keep wondering, what is OCD?' answered 'Obsessive-compulsive disorder (OCD) is ...' shares no word of
    four letters with its question, yet answers it (NIMH, 2026-12-06). Our own wording."""
    def dialogue(opening: str) -> dict:
        turns = [{"role": "patient", "content": opening},
                 {"role": "clinician", "content": "Obsessive-compulsive disorder is a lasting condition of unwanted thoughts and repeated rituals."},
                 {"role": "patient", "content": "How is it diagnosed?"},
                 {"role": "clinician", "content": "It is diagnosed by a clinician who asks about the thoughts, the rituals and the time they take."}]
        return {"task": "counselling_dialogue", "question": opening, "answer": turns[1]["content"], "turns": turns}

    assert audit_rows.check_fits(dialogue("I keep wondering, what is OCD?")) == []
    assert audit_rows.check_fits(dialogue("I keep wondering, what is ADHD?")) == ["clinician reply 1 does not answer the patient turn before it"]


def test_a_chinese_reply_answers_the_patient_turn_it_shares_words_with():
    """Chinese turns have no Latin words to share: two-character words count (the Chinese handbook's built dialogue,
    2026-12-06). Our own wording."""
    turns = [{"role": "patient", "content": "我想请教一个问题，惊恐发作是什么？"},
             {"role": "clinician", "content": "惊恐发作是突然出现的强烈恐惧，几分钟内达到高峰。"},
             {"role": "patient", "content": "惊恐障碍的特点是什么？"},
             {"role": "clinician", "content": "惊恐障碍的特点是反复出现意料之外的发作。"}]
    row = {"task": "counselling_dialogue", "language": "zh", "question": turns[0]["content"], "answer": turns[1]["content"], "turns": turns}
    assert audit_rows.check_fits(row) == []
    unrelated = {**row, "turns": [turns[0], {"role": "clinician", "content": "多数人经过治疗可以恢复正常生活。"}, *turns[2:]]}
    assert audit_rows.check_fits(unrelated) == ["clinician reply 1 does not answer the patient turn before it"]


def test_a_course_question_told_a_second_part_of_the_course_does_not_fit():
    """'How common are bipolar disorders?' answered 'Bipolar disorders affect roughly one to two percent of people and usually
    begin in the late teens or twenties.' (a kept row, read 2026-12-07): asked one part of the course, told two."""
    answer = "Bipolar disorders affect roughly one to two percent of people and usually begin in the late teens or twenties."
    row = {"task": "factual_recall", "language": "en", "chapter_title": "Bipolar and Related Disorders", "evidence": [], "answer": answer}
    assert audit_rows.check_fits({**row, "question": "How common are bipolar disorders?"})[-1] == \
        "the question asks how common it is; the answer also says when it begins"
    assert audit_rows.check_fits({**row, "question": "When do bipolar disorders usually begin?"}) == [
        "the question asks when it begins; the answer also says how common it is"]
    assert audit_rows.check_fits({**row, "question": "How common are bipolar disorders, and when do they usually begin?"}) == []
