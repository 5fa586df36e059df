"""The rules a kept row must meet and the groundedness gate, on the defects the demo's rows had
(markup debris, invented words, caseless vignettes, unsupported terms, source references)."""

from __future__ import annotations

import pytest

from ragtune.generate.grounding import GateSettings, assess_answer, grounding_verdict
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.row_rules import first_broken_rule, not_self_contained
from ragtune.text import unsupported_terms

OCD_TREATMENT = (
    "Selective serotonin reuptake inhibitors are the first-line medicines, usually at higher doses and for longer trials, "
    "typically eight to twelve weeks, than in depression. Clomipramine is an effective alternative but has more side effects."
)
EATING = (
    "Anorexia nervosa and bulimia nervosa most often begin in adolescence or young adulthood and are more common in women, "
    "although men and people of all ages, body sizes and backgrounds are affected and are often missed. Binge-eating "
    "disorder is the most common eating disorder in adults."
)
MDD_CRITERIA = (
    "A. At least five of the following nine symptoms have been present for most of the day, nearly every day, during the "
    "same two-week period, and at least one of them is depressed mood or loss of interest or pleasure:\n"
    "1. Depressed mood reported by the person or observed by others.\n2. Fatigue or loss of energy.\n"
    "3. Sleeping too little or too much."
)


def row(question, answer, evidence=OCD_TREATMENT, task="factual_recall", language="en", **extra):
    chunk = {"chunk_id": "c:1", "section_path": ["Obsessive-Compulsive and Related Disorders", "Treatment and Management"], "text": evidence}
    return {"qa_id": "x", "task": task, "language": language, "question": question, "answer": answer, "evidence": [chunk], **extra}


GOOD = row("Which medicines are first-line for obsessive-compulsive disorder?", OCD_TREATMENT.split(". ")[0] + ".")


def test_a_clean_extractive_row_meets_every_rule_and_the_gate():
    assert first_broken_rule(GOOD) is None
    assert grounding_verdict(GOOD).grounded


@pytest.mark.parametrize("answer", [
    "<p>An eating disorder that involves restriction of food intake.",
    "<h2>Trauma, Stressors & Trauma Related Disorders</strong></p>",
    "<br>The main distinguishing feature of OCD is the ritual.",
    'Clomipramine is an alternative.", "question": "What else?',
    "**Clomipramine** is an effective alternative.",
    "Severity | Typical picture | First step",
])
def test_markup_and_json_debris_in_any_field_are_rejected(answer):
    assert first_broken_rule(row("Which medicine is an alternative for OCD?", answer))[0] == "markup"
    turns = [{"role": "patient", "content": "I keep checking the door lock &amp; the stove."}, {"role": "clinician", "content": "Clomipramine helps."}]
    dialogue = row("I keep checking the door lock.", "Clomipramine helps.", task="counselling_dialogue", turns=turns)
    assert first_broken_rule(dialogue)[0] == "markup"


@pytest.mark.parametrize("question", [
    "How to tell a condition from the chapter 'Depressive Disorders' apart?",
    "What does the passage say about clomipramine?",
    "According to the text, which medicines come first?",
    "Which of the medicines mentioned above has more side effects?",
    "Which medicine did we give first for OCD?",  # the source's own voice (a research article's rows, 2026-12-06)
    "What did this study find about clomipramine?",
    "What does the fact about OCD say about clomipramine?",  # the prompt calls the answer "this fact" (qwen2.5-coder-1.5b, NIMH)
    "What is the first medicine for OCD, as described in the given fact?",
])
def test_questions_that_lean_on_their_source_are_rejected(question):
    assert first_broken_rule(row(question, OCD_TREATMENT))[0] == "not_self_contained"


def test_a_country_and_a_patients_own_words_are_not_the_sources_voice():
    assert not_self_contained(row("Which medicines do US guidelines give first for OCD?", OCD_TREATMENT)) is None
    assert not_self_contained(row("What explains the fact that clomipramine is not given first for OCD?", OCD_TREATMENT)) is None
    turns = [{"role": "patient", "content": "Our son washes his hands for hours; what helps with OCD?"},
             {"role": "clinician", "content": OCD_TREATMENT}]
    dialogue = {**row(turns[0]["content"], OCD_TREATMENT), "task": "counselling_dialogue", "turns": turns}
    assert not_self_contained(dialogue) is None


def test_a_statement_is_not_a_question():
    assert first_broken_rule(row("How to tell OCD from depression apart", OCD_TREATMENT))[0] == "not_a_question"


@pytest.mark.parametrize("question", [
    "What is the most likely diagnosis?",
    "What is the most likely diagnosis for a manic episode?",
    "A woman feels sad. What is the most likely diagnosis?",
    # age and setting, several sentences, but no presenting feature from the evidence
    "A 40-year-old man attends the clinic. He is an accountant. He likes football. What is the most likely diagnosis?",
])
def test_vignettes_without_a_case_are_rejected(question):
    vignette = row(question, "Major depressive episode: depressed mood, fatigue or loss of energy.", evidence=MDD_CRITERIA, task="clinical_vignette")
    assert first_broken_rule(vignette)[0] == "caseless_vignette"


def test_a_vignette_with_a_case_passes():
    case = ("A 34-year-old teacher is seen in primary care. For the past three weeks she has had depressed mood nearly every day, "
            "fatigue and loss of energy, and she is sleeping too little. What is the most likely diagnosis?")
    vignette = row(case, "Major depressive episode: depressed mood, fatigue or loss of energy.", evidence=MDD_CRITERIA, task="clinical_vignette")
    assert first_broken_rule(vignette) is None


def test_questions_their_answer_does_not_address_and_garbled_text_are_rejected():
    off = row("What is the treatment for bipolar depression?", "Clomipramine is an effective alternative but has more side effects.")
    assert first_broken_rule(off) == ("question_not_answered", "the question shares no word with its answer")
    off_topic = row("What is the treatment for bipolar depression?", "Clomipramine is an effective treatment alternative for OCD.")
    assert first_broken_rule(off_topic)[0] == "question_does_not_fit" and "bipolar" in first_broken_rule(off_topic)[1]
    assert first_broken_rule(row("What is the answer to this question?", OCD_TREATMENT))[0] == "not_self_contained"
    assert first_broken_rule(row("What is the condition or topic you are asked to answer?", OCD_TREATMENT))[0] == "not_self_contained"
    turns = [{"role": "patient", "content": "... (Bipolar and Related Disorders) 2018-39.7456/SANCIAZA, Dr."},
             {"role": "clinician", "content": "Clomipramine is an effective alternative."}]
    dialogue = row(turns[0]["content"], turns[1]["content"], task="counselling_dialogue", turns=turns)
    assert first_broken_rule(dialogue)[0] == "not_prose"
    assert first_broken_rule(row("..., description: 1234567890; question_text : 'What is OCD?", OCD_TREATMENT))[0] == "not_prose"


def test_wrong_language_and_restated_questions_are_rejected():
    assert first_broken_rule(row("Which medicines are first-line for OCD?", "选择性五羟色胺再摄取抑制剂是一线药物。"))[0] == "wrong_language"
    assert first_broken_rule(row("广泛性焦虑障碍的一线药物是什么？", "Selective serotonin reuptake inhibitors.", language="zh"))[0] == "wrong_language"
    echo = row("Is clomipramine an effective alternative with more side effects?", "Clomipramine is an effective alternative with more side effects.")
    assert first_broken_rule(echo)[0] == "answer_repeats_question"


@pytest.mark.parametrize("question, answer, invented", [
    ("When does anorexia nervosa begin?", "Anorexia Nervosa, Dystrape of Eating Disorders, begins in adolescence.", "dystrape"),
    ("How is OCD treated?", "OCD (Obsessively Compulsory Compulsions) is treated with clomipramine.", "compulsory"),
    ("How are selective serotonin reuptake inhibitors given for obsessive-compulsive disorder?",
     "Selective serotonin reuptake inhibitors are taken in full doses to prevent relapse with an immediate cure rate.", "immediate"),
])
def test_invented_and_unsupported_terms_are_rejected_and_listed(question, answer, invented):
    evidence = EATING if "Anorexia" in answer else OCD_TREATMENT
    verdict = grounding_verdict(row(question, answer, evidence=evidence))
    assert not verdict.grounded and invented in verdict.unsupported
    result = filter_qa([row(question, answer, evidence=evidence)], FilterSettings())
    assert not result.kept and result.rejected[0]["rule"] == "unsupported_terms" and invented in result.rejected[0]["unsupported_terms"]


def test_the_gate_catches_changed_numbers_flipped_negation_and_swapped_opposites():
    assert not assess_answer("Trials typically last four to six weeks.", [OCD_TREATMENT]).grounded
    assert not assess_answer("Clomipramine is not an effective alternative.", [OCD_TREATMENT]).grounded
    assert not assess_answer("Clomipramine is an effective alternative but has fewer side effects.", [OCD_TREATMENT]).grounded
    assert assess_answer("Clomipramine is an effective alternative, with more side effects.", [OCD_TREATMENT]).grounded


def test_terms_must_be_stated_together_not_collected_across_the_evidence():
    evidence = ["Lithium prevents manic relapse.", "Thyroid disease can produce depressive symptoms."]
    answer = "Lithium can produce thyroid disease."
    unaligned = GateSettings(aligned=False, check_order=False)
    assert assess_answer(answer, evidence, settings=unaligned).grounded  # every word is somewhere
    assert not assess_answer(answer, evidence).grounded


def test_stems_and_number_words_match():
    assert unsupported_terms("Longer trials than in depressive disorders: 8 to 12 weeks.", OCD_TREATMENT) == ["disorders"]
    assert unsupported_terms("Five patients.", OCD_TREATMENT) == ["five"]


BIPOLAR_OVERVIEW = ("Bipolar I disorder affects roughly one to two percent of adults over a lifetime, and the broader bipolar "
                    "spectrum more. Onset is usually in the late teens or twenties.")


@pytest.mark.parametrize("question", [
    "How common is bipolar disorder in adults?",  # every term in the passage
    "What is the prevalence of bipolar disorder?",  # only 'prevalence' missing: the passage says it as 'one to two percent'
])
def test_an_unanswerable_question_the_passage_answers_is_rejected(question):
    unanswerable = row(question, "The cited passages do not answer this question.", BIPOLAR_OVERVIEW, task="unanswerable")
    assert first_broken_rule(unanswerable)[0] == "answerable"


def test_an_unanswerable_question_about_what_the_passage_lacks_is_kept_by_the_rule():
    asked = row("Which dose of lithium is used in pregnancy?", "The cited passages do not answer this question.", BIPOLAR_OVERVIEW,
                task="unanswerable")
    assert first_broken_rule(asked) is None


def test_a_question_with_two_question_marks_is_rejected():
    assert first_broken_rule(row("Which medicines come first for OCD??", OCD_TREATMENT.split(". ")[0] + "."))[0] == "not_a_question"


def test_a_question_one_passage_answers_is_kept_as_that_pair_not_as_anothers_unanswerable():
    """NIMH, 2026-12-06: an unanswerable round borrowed 'How can I help a friend or relative with schizophrenia?'
    ahead of the round its section answered, and the duplicate rule dropped the answered row."""
    question = "Which medicines are first-line for obsessive-compulsive disorder?"
    unanswerable = {**row(question, "The cited passages do not answer this question; they are about eating disorders.", EATING),
                    "qa_id": "u", "task": "unanswerable"}
    answered = {**GOOD, "qa_id": "a"}
    result = filter_qa([unanswerable, answered], FilterSettings())
    assert [r["qa_id"] for r in result.kept] == ["a"]
    assert [(r["qa_id"], r["rule"]) for r in result.rejected] == [("u", "exact_duplicate")]
    assert [r["qa_id"] for r in filter_qa([answered, {**unanswerable, "question": "How is hoarding disorder treated?"}], FilterSettings()).kept] == ["a", "u"]
