"""Answer-first generation on the real handbook: answers cut from the parsed structure with exact
offsets, and the embedded SmolLM2 writing only questions, cases and patient turns."""

from __future__ import annotations

import json
import re

import pytest

from ragtune.generate import answer_first, built_questions
from ragtune.generate.answer_units import answer_units, section_unit, units_for_task
from ragtune.generate.evidence import EvidencePlan, EvidenceRound, EvidenceSettings, plan_chapter_evidence
from ragtune.generate.grounding import grounding_verdict
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa
from ragtune.generate.row_rules import MARKUP, SOURCE_REFERENCE, first_broken_rule
from ragtune.tasks import PAIR_TASKS
from ragtune.text import list_lead_in, unsupported_terms
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
    # A lead-in ends no answer, alone or as the second of two sentences: the 1.5B picked "... may not recall or
    # report hypomania. The clinician considers:" as an answer (self-instruct, 2026-12-07).
    assert not [u for u in units if u.kind != "criteria_list" and u.text.rstrip().endswith(":")]
    assert any(u.text.endswith("may not recall or report hypomania.") for u in units)


def test_a_list_items_lead_in_is_found_across_the_chunk_that_cut_the_list(handbook_chunks):
    """The depressive differential list is cut by chunking: items 5-6 open the second chunk, whose lines say
    nothing of what the list is about; its lead-in is read in the overlapping chunk that holds item 5."""
    section = [c.text for c in handbook_chunks if c.chapter_key == "depressive-disorders" and c.section_path[-1] == "Differential Diagnosis"]
    last = "Attention-deficit/hyperactivity disorder: distractibility"
    cut = next(t for t in section if last in t and "Several conditions" not in t)
    lead = "Several conditions can look like major depression and must be considered:"
    assert list_lead_in(last, [cut, *section]) == lead
    assert list_lead_in(last, [cut]) == ""  # without the chunk that holds it, no lead-in is made up
    assert list_lead_in("Bipolar disorder: a history", section) == lead
    overview = next(c.text for c in handbook_chunks if c.chapter_key == "depressive-disorders" and c.section_path[-1] == "Overview")
    assert list_lead_in(overview.split(". ")[0], [overview]) == ""  # a sentence of prose is in no list


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


def test_arrow_bullets_are_list_markers_not_part_of_the_answer():
    """NIMH's pages print some lists with '►' ('► Behavioral therapy helps a person change their behavior.'); the
    marker is no part of the answer, so the sentence's structure is read as it stands. Our own wording."""
    chunk = {"chunk_id": "c1", "section_path": ["ADHD", "Therapies"], "text": (
        "Several kinds of talk therapy are used:\n► Behavioral therapy helps people replace unhelpful habits with new routines.\n"
        "► Family therapy helps parents and children agree on rules and rewards at home.")}
    texts = [u.text for u in answer_units(chunk) if u.kind == "sentence"]
    assert "Behavioral therapy helps people replace unhelpful habits with new routines." in texts
    assert not any(t.startswith("►") for t in texts)
    assert built_questions.statement_question(texts[0]) == "^(How does behavioral therapy help people)[?]$"


def test_plan_wide_answers_are_worked_out_again_when_the_plans_rounds_change():
    """Built answers are cached per plan object; a plan whose rounds change is worked out again, never served stale."""
    from ragtune.generate.evidence import per_plan

    first = {"chunk_id": "c1", "chapter_key": "panic", "section_path": ["Panic Disorder", "Overview"], "whole_section": False,
             "text": "Panic disorder is diagnosed when attacks are recurrent and unexpected and followed by a month of worry about more attacks."}
    second = {**first, "chunk_id": "c2", "text": "Hoarding disorder is a lasting difficulty discarding possessions, whatever their actual value."}
    plan = EvidencePlan("panic", "Panic Disorder", "en", [EvidenceRound("factual_recall", "Overview", [first])])
    assert [u.text[:14] for u in answer_first.round_units(plan, 0, free_questions=False)] == ["Panic disorder"]
    plan.rounds[0] = EvidenceRound("factual_recall", "Overview", [second])
    assert [u.text[:14] for u in answer_first.round_units(plan, 0, free_questions=False)] == ["Hoarding disor"]
    calls = []
    assert per_plan("count", plan, lambda: calls.append(1) or len(calls)) == per_plan("count", plan, lambda: calls.append(1) or len(calls)) == 1


def test_a_clinicians_reply_is_never_a_glossary_line():
    """NIMH lists conditions and therapies as 'Name (ABBR): description'; a dialogue kept one as the clinician's
    reply ('Dialectical behavior therapy (DBT): This treatment was developed ...', 2026-12-06). Our own wording."""
    chunk = {"chunk_id": "c1", "section_path": ["Therapies"], "text": (
        "Interpersonal therapy (IPT): IPT looks at how events between people and mood act on each other.\n"
        "Interpersonal therapy usually runs for twelve to sixteen weekly sessions with one therapist.")}
    assert [u.text[:12] for u in units_for_task(chunk, "factual_recall")] == ["Interpersona", "Interpersona"]
    assert [u.text[:24] for u in units_for_task(chunk, "counselling_dialogue")] == ["Interpersonal therapy us"]


def test_no_two_pair_rounds_ask_one_answer_whatever_their_tasks(handbook_document, handbook_index, embedder):
    """A factual, a treatment and a differential round on one passage each asked its first answer when answers
    were taken in turn per task: one sentence asked three times (NIMH, 2026-12-06). Plan-wide, each answer is
    asked once, and the rounds after the last answer ask nothing."""
    plan = plan_chapter_evidence(chapter_of(handbook_document, "depressive-disorders"), handbook_index, embedder, EvidenceSettings(rounds=200))
    pair_rounds = [n for n in range(200) if plan.rounds[n].task in ("factual_recall", "treatment_management", "differential_diagnosis")]
    answers = [answer_first.round_units(plan, n) for n in pair_rounds]
    asked = [units[0].text for units in answers if units]
    assert len({plan.rounds[n].task for n, units in zip(pair_rounds, answers) if units}) == 3
    assert len(asked) == len(set(asked)) > 10
    assert len(asked) < len(pair_rounds)  # once its passages' answers are asked, a round asks nothing
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
            assert [(t["role"], t.get("act")) for t in row["turns"]] == [("patient", None), ("clinician", "ask"), ("patient", None), ("clinician", "inform"),
                                                                       ("patient", None), ("clinician", "inform")]
            assert all(any(turn == texts[s["chunk_id"]][s["start"] : s["end"]] for s in row["supporting_spans"]) for turn in clinician[1:])
            assert all(t["content"] == "".join(s["text"] for s in t["cites"]) for t in row["turns"][3::2])  # each informing turn cites itself
        elif row["task"] not in ("unanswerable", "clinical_vignette") and row["answer_units"][0]["kind"] != "table_row":
            assert row["answer"] == row["supporting_spans"][0]["text"]  # the answer is the evidence itself
        if row["task"] in PAIR_TASKS:  # without free_questions, the answer's structure wrote the question
            assert row["generation"]["question_from"] == "structure"
            fixed = built_questions.structured_question(plan, plan.rounds[row["generation"]["round"]], answer_first.round_units(plan, row["generation"]["round"], False))
            assert re.fullmatch(fixed.strip("^$"), row["question"]), (fixed, row["question"])
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
    result = generate_chapter_qa(plan, llm, GenerationSettings(quota=4, max_waves=1, max_tokens=80, retries=0, free_questions=True))
    assert len(result.qa_pairs) == 4, result.failures
    for row in result.qa_pairs:
        assert row["question"].endswith(("?", "？")) and not any(ch in row["question"] for ch in "<>{}[]|*#")


def test_the_closed_vocabulary_lets_a_question_say_some():
    """Without 'some', a writer that began "What are some" had to go on "someone" ("What are someone who has ADHD
    may use ...?", qwen2.5-coder-1.5b on the NIMH pages). Still no word the answer and ASKING lack."""
    pattern = answer_first.question_pattern("Stimulants and behavioral therapy are the usual treatments for ADHD.", "Medication")
    assert re.match(pattern, "What are some treatments for ADHD?") and re.match(pattern, "What are some ways to treat ADHD?")
    assert not re.match(pattern, "What are some cures for ADHD?")


def test_without_the_closed_vocabulary_a_written_question_may_use_any_word_but_built_ones_stay_fixed():
    """closed_vocabulary off frees the model's own question (the 1.5B's "as person in" came from the closed
    one); a structure-built question keeps its own pattern either way."""
    answer = "Stimulants and behavioral therapy are the usual treatments for ADHD."
    closed = answer_first.schema("factual_recall", "extractive", answer, "Medication")["properties"]["question"]["pattern"]
    opened = answer_first.schema("factual_recall", "extractive", answer, "Medication", closed_vocabulary=False)["properties"]["question"]["pattern"]
    assert not re.match(closed, "What is usually used in the assessment of ADHD?")
    assert re.match(opened, "What is usually used in the assessment of ADHD?") and not re.match(opened, "What is usually used")
    assert not re.match(opened, "What is ADHD? It is a disorder of attention?")  # one question: its question mark ends it
    fixed = answer_first.schema("factual_recall", "extractive", answer, "Medication", fixed="^What treats ADHD[?]$", closed_vocabulary=False)
    assert fixed["properties"]["question"]["pattern"] == "^What treats ADHD[?]$"
    assert GenerationSettings().closed_vocabulary  # the 135M default: closed

def test_vignettes_come_with_a_case_or_are_rejected(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "feeding-and-eating-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=3, task_mix={"clinical_vignette": 1}))
    llm = embedded_llm(tmp_path)
    result = generate_chapter_qa(plan, llm, GenerationSettings(quota=3, max_waves=1, max_tokens=200, retries=0))
    assert result.qa_pairs, result.failures
    for row in result.qa_pairs:
        assert row["question"].startswith(row["case"]) and row["answer"].endswith(row["supporting_spans"][0]["text"])
        assert row["answer_units"][0]["kind"] == "criteria_list"  # a case rests on a whole set of criteria (A, B, C ...), never one sentence
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
    assert answer_first.passage_topic(plan, SimpleNamespace(focus="How is mania treated?")) == 'the question "How is mania treated?"'
    # NIMH's closing sections (the 1.5B's rows said 'they are about the for more information of Feeding Eating')
    assert answer_first.passage_topic(plan, SimpleNamespace(focus="For More Information")) == "where to read more about Bipolar and Related Disorders"
    assert answer_first.passage_topic(plan, SimpleNamespace(focus="Where can I learn more?")) == "where to read more about Bipolar and Related Disorders"


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


def test_a_vignettes_answer_is_gated_on_its_features_and_its_diagnosis_on_the_section(handbook_chunks):
    """qwen2.5-coder-1.5b wrote fitting cases for generalized anxiety disorder, and the gate dropped every one
    (2026-12-06): it read the answer 'Generalized Anxiety Disorder: <criterion C>' as one sentence, the label
    ahead of the criterion's terms and the list's '1.' after them, a swap by term order."""
    chunk = next(c.to_dict() for c in handbook_chunks if "six symptoms in adults" in c.text)
    features = chunk["text"][chunk["text"].index("The anxiety and worry come with"):]
    features = features[: features.index("6. Disturbed sleep")] + features[features.index("6. Disturbed sleep"):].split("\n")[0]
    case = ("A 34-year-old man is seen in the clinic. He reports experiencing anxiety and worry for over a year, with restlessness, "
            "fatigue, difficulty concentrating, irritability, muscle tension and disturbed sleep. What is the most likely diagnosis?")
    row = {"task": "clinical_vignette", "language": "en", "question": case, "answer": f"Generalized Anxiety Disorder: {features}", "evidence": [chunk]}
    assert chunk["section_path"][-1] == "Diagnostic Criteria for Generalized Anxiety Disorder" and "\n1. " in features
    assert grounding_verdict(row).grounded, grounding_verdict(row)
    assert not grounding_verdict({**row, "answer": f"Panic Disorder: {features}"}).grounded  # a label no section gives is gated too
    swapped = features.replace("in adults, or one symptom in children", "in children, or one symptom in adults")
    assert not grounding_verdict({**row, "answer": f"Generalized Anxiety Disorder: {swapped}"}).grounded


def test_a_heading_run_into_its_first_sentence_is_no_answer():
    """Text extraction of a research article runs its section headings into the first sentence ('Results We
    explored ...', 'Background: ...', 2026-12-06); such a unit is no answer. Our own wording."""
    chunk = {"chunk_id": "c1", "text": "Results We tested forty electrode pairs on each forearm over two sessions.\n"
             "Background: Electrical stimulation of the forearm can open a paralysed hand in some patients.\n"
             "Stimulation through the chosen pairs opened the hand fully in nine of the twelve patients tested."}
    assert [u.text[:11] for u in answer_units(chunk)] == ["Stimulation"]


def test_a_publishers_notice_is_no_answer():
    """NIMH pages end with their reprint notice; the 1.5B made three rows of it (2026-12-07). Our own wording."""
    chunk = {"chunk_id": "c1", "text": "Everything on these pages is in the public domain and may be copied without permission.\n"
             "You may not reuse the photographs; name the institute as the source.\n"
             "Talking therapies help many people with panic disorder to face the situations they avoid."}
    assert [u.text[:16] for u in answer_units(chunk)] == ["Talking therapie"]


def test_a_sentence_that_sends_the_reader_elsewhere_is_no_answer():
    """'For more information, please see the ... webpage on ...' was a dialogue's reply to 'Could you please
    explain why they occur together?' (the 1.5B, 2026-12-07). Our own wording."""
    chunk = {"chunk_id": "c1", "text": "Panic attacks often start in late adolescence and can come without warning.\n"
             "For more information, please read the institute's webpage on panic and its treatment.\n"
             "Learn more about talking therapies for anxiety.\n"
             "You can visit the sleep foundation's website for advice on rest.\n"
             "Cognitive behavioural therapy teaches people to face the situations they avoid.\n"
             "Children with an intellectual disability learn more slowly than their peers and need help with daily tasks."}
    assert [u.text[:14] for u in answer_units(chunk)] == ["Panic attacks ", "Cognitive beha", "Children with "]


def test_a_line_of_a_reference_list_is_no_answer():
    """'(2025). Web-based Injury Statistics Query and Reporting System (WISQARS).' answered a percentage question
    in the NIMH suicide test split (2026-12-07). Our own wording."""
    chunk = {"chunk_id": "c1", "text": "Thoughts of suicide are more common in young adults than in older adults in most surveys.\n"
             "Centre for Health Statistics. (2024). National survey of mood and wellbeing in adults, annual tables.\n"
             "Institute of Public Health. Survey of help-seeking for low mood in adults. Retrieved from the institute's archive."}
    assert [u.text[:14] for u in answer_units(chunk)] == ["Thoughts of su"]


def test_a_section_heading_run_into_the_chunks_first_sentence_is_cut_off():
    """NIMH's pages come out as 'Medication Stimulants are ...' under the section 'Medication': the answer is
    the sentence without the heading. A heading that is the sentence's own subject stays. Our own wording."""
    chunk = {"chunk_id": "c1", "section_path": ["Bipolar disorder", "Medication"],
             "text": "Medication Mood stabilizers are the main medicines used to treat bipolar disorder.\nThey are taken every day."}
    assert answer_units(chunk)[0].text == "Mood stabilizers are the main medicines used to treat bipolar disorder."
    assert answer_units(chunk)[0].spans == [(11, 82)]
    own = {"chunk_id": "c2", "section_path": ["Bipolar disorder", "Medication"], "text": "Medication can ease the highs and the lows of bipolar disorder."}
    assert answer_units(own)[0].text == own["text"]


def test_text_that_lost_its_spaces_is_no_answer():
    """NIMH's medications page, converted to text, reads 'such aspsychotherapyandbrain stimulation therapy' (the
    spaces around its links were lost); a row kept it as its answer, 2026-12-06. Rare words that are one word stay."""
    from ragtune.generate.synonyms import glued_words

    glued = "They are often used with other treatments, such aspsychotherapyandbrain stimulation therapy, and NIMH hasinformation."
    assert glued_words(glued) == ["aspsychotherapyandbrain", "hasinformation"]
    assert glued_words("such aspsychotherapybrain stimulation and psychotherapybrainfor stimulation") == ["aspsychotherapybrain", "psychotherapybrainfor"]
    assert glued_words("Electroconvulsive therapy and psychoeducation help; treat cooccurring hyperthyroidism and trichotillomania.") == []
    chunk = {"chunk_id": "c1", "text": glued + "\nMedications can affect people in different ways and doses may need to change over time."}
    assert [u.text[:11] for u in answer_units(chunk)] == ["Medications"]


def test_a_question_a_crisis_line_or_a_table_is_no_answer():
    """Web pages open sections with their heading question and close them with a crisis line; their
    statistics point at tables and figures. Our own wording here."""
    chunk = {"chunk_id": "x", "text": (
        "How is panic disorder treated? Cognitive behavioural therapy teaches a person to meet the body's alarm without fleeing it.\n"
        "Table 3 lists the panic attacks reported by adults in each age group over the last ten years.\n"
        "If you are in crisis, call or text 988 to reach trained counsellors any hour of the day or night.")}
    texts = [u.text for u in answer_units(chunk)]
    assert texts == ["Cognitive behavioural therapy teaches a person to meet the body's alarm without fleeing it."], texts


def _heading_chunk(heading: str, text: str, whole: bool = True) -> dict:
    return {"chunk_id": "c1", "section_path": ["Panic Disorder", heading], "text": text, "whole_section": whole}


ANSWER = ("Panic disorder is usually treated with cognitive behavioural therapy, an antidepressant, or both.\n"
          "•. Therapy teaches a person to ride out the body's alarm without fleeing it.\n"
          "•. Medicines take several weeks before they calm the attacks.")


def test_a_question_headings_whole_section_is_its_answer_and_the_heading_its_question():
    chunk = _heading_chunk("How is panic disorder treated?", "How is panic disorder treated? " + ANSWER +
                           "\nLearn more about therapy for panic.\nInformation about panic medicines changes often; the drug agency has information on each."
                           "\nCall or text 988 when you are in crisis.")
    unit = section_unit(chunk)
    assert unit.kind == "section" and unit.text == ANSWER  # the repeated heading and the closing pointers are cut
    assert chunk["text"][unit.spans[0][0] : unit.spans[0][1]] == ANSWER
    assert units_for_task(chunk, "treatment_management")[0] == unit
    plan = EvidencePlan("panic", "Anxiety Disorders", "en", [EvidenceRound("factual_recall", "x", [chunk])])
    assert built_questions.structured_question(plan, plan.rounds[0], [unit]) == r"^(How is panic disorder treated)[?]$"


@pytest.mark.parametrize("heading, text, whole", [
    ("How is panic disorder treated?", ANSWER, False),  # the section goes on in another chunk or in subsections
    ("How can I find help?", ANSWER, True),  # the heading names no condition
    ("Is it normal worry or panic disorder?", ANSWER, True),  # 'it' points at something outside the heading
    ("Where can I learn more about panic disorder?", ANSWER, True),
    ("How is panic disorder treated?", ANSWER.replace("\n•. Medicines", "\nVisit www.example.org for more.\n•. Medicines"), True),  # a link inside
    ("What causes panic disorder?", "Several factors may play a part.", True),  # too little to answer
])
def test_a_question_heading_gives_no_answer_where_its_section_is_not_whole_or_it_asks_nothing_alone(heading, text, whole):
    assert section_unit(_heading_chunk(heading, text, whole)) is None


@pytest.mark.parametrize("answer, question", [
    ("Treatment of panic disorder usually includes therapy, medicine, or both of them together.", "What does treatment of panic disorder usually include?"),
    ("Exposure therapy helps people face feared places in small steps until the fear fades.", "How does exposure therapy help people?"),
    ("Antidepressants work by changing how the brain uses chemicals that carry mood signals.", "How do antidepressants work?"),
    ("Health care providers diagnose ADHD by asking about behaviour at home and at school.", "How do health care providers diagnose ADHD?"),
    ("Binge eating disorder can also be diagnosed in adults who never had an eating problem before.", "When can binge eating disorder be diagnosed?"),
    ("Symptoms of a manic episode may include racing thoughts and little need for sleep.", "What may symptoms of a manic episode include?"),
    ("Other symptoms can include irritability and trouble sleeping through the night.", None),  # 'other' than what?
    ("People with panic disorder may avoid places where an attack happened before.", None),  # no structure says what this answers
    ("Therapy helps people face fear. It takes several weeks before the change is felt.", None),  # more than the sentence asked
    ("Some treatments include group sessions held once a week in the evening.", None),
    ("Interventions include classroom plans and lessons in organising homework.", None),  # interventions for what?
    ("Evidence-based therapies to treat panic disorder include exposure and breathing retraining.",
     "What do evidence-based therapies to treat panic disorder include?"),
    ("Group therapy also teaches skills to help people notice and name their fears.", None),  # its subject is no noun phrase
    ("Family therapy is designed to help children whose eating has become dangerously restricted.", None),
    ("Dietary counselling to help people eat regular meals and keep a steady weight.", None),  # no sentence at all
    ("Although panic disorder can be diagnosed at any age, it most often begins in early adulthood.", None),  # a clause, no subject
    ("Current treatments for schizophrenia focus on helping individuals manage their symptoms and reach their goals.",
     "What do current treatments for schizophrenia focus on?"),
])
def test_an_english_statement_is_asked_what_its_structure_says(answer, question):
    pattern = built_questions.statement_question(answer)
    assert (pattern == f"^({question[:-1]})[?]$") if question else pattern is None, pattern


@pytest.mark.parametrize("answer, question", [
    ("Bipolar disorders affect roughly one to two percent of people and usually begin in the late teens or twenties.",
     "How common are bipolar disorders, and when do they usually begin?"),  # the sample handbook's sentence says both
    ("Anorexia nervosa and bulimia nervosa most often begin in adolescence or young adulthood and are more common in women, although men "
     "and people of all ages are affected and are often missed.",  # the handbook's: 'When do ... begin?' alone was answered with more
     "When do anorexia nervosa and bulimia nervosa most often begin, and in whom are they more common?"),
    ("Panic disorder affects about 2 percent of adults in a given year.", "How common is panic disorder?"),
    ("Anxiety disorders usually begin in childhood or early adulthood.", "When do anxiety disorders usually begin?"),
    ("Anxiety disorders usually begin in childhood or early adulthood and are chronic.", None),  # asked when, it also says how they run
    ("Depression usually begins in adulthood and is less common in men.", None),  # a second predicate no built question asks
    ("Binge-eating disorder is the most common eating disorder in adults.", "Which eating disorder is the most common in adults?"),
    ("Major depressive disorder is the most common of these.", None),  # of what? 'these' names no condition
    ("It commonly begins in childhood or early adulthood, and boys tend to have an earlier onset.", None),  # a pronoun subject
    ("Most episodes of perinatal depression begin within 4-8 weeks after the baby is born.", None),  # 'most episodes' is a share of them
    ("GAD develops gradually and usually starts in early adulthood, although it can occur at any age.", None),  # NIMH: a verb in its subject
    ("Early treatment affects two things in later life, work and friendships.", None),  # no condition is its subject
])
def test_a_sentence_on_how_common_a_condition_is_or_when_it_begins_is_asked_so(answer, question):
    pattern = built_questions.course_question(answer)
    assert (pattern == f"^({question[:-1]})[?]$") if question else pattern is None, pattern


@pytest.mark.parametrize("answer, question", [
    ("Bulimia nervosa: People with bulimia nervosa regularly binge eat and then try to undo it by vomiting.", "What is bulimia nervosa?"),
    ("Interpersonal therapy (IPT): IPT looks at how events between people and mood act on each other.", "What is interpersonal therapy?"),
    ("Biology: differences in some brain areas have been seen in people with the disorder.", None),  # names no condition or treatment
    ("Medical causes of weight loss: thyroid disease, diabetes and chronic infection.", None),  # no one thing
    ("Depressive disorders share one core experience: a lasting low mood that reaches every part of life.", None),  # a clause (the demo)
    ("Eating disorders have one thing in common: food.", None),
    ("Attention Deficit Hyperactivity Disorder: Diagnosis and Treatment in Children: this review looks at studies.", None),  # a title
])
def test_a_line_that_names_a_condition_or_treatment_and_describes_it_is_asked_what_it_is(answer, question):
    pattern = built_questions.term_question(answer)
    assert (pattern == f"^({question[:-1]})[?]$") if question else pattern is None, pattern


@pytest.mark.parametrize("answer, title, question", [
    ("Selective serotonin reuptake inhibitors and serotonin-noradrenaline reuptake inhibitors are the first-line medicines.", "Anxiety Disorders",
     "What are the first-line medicines for an anxiety disorder?"),  # the chapter names the condition the sentence leaves out
    ("Cognitive behavioural therapy with graded exposure is the psychological treatment of choice across the anxiety disorders.", "Anxiety Disorders",
     "What is the psychological treatment of choice for the anxiety disorders?"),
    ("Selective serotonin reuptake inhibitors are the usual first-choice medicines because they are effective and relatively well tolerated.",
     "Depressive Disorders", "What are the usual first-choice medicines for a depressive disorder?"),
    ("Trauma-focused psychological therapies are first-line for PTSD.", "Trauma- and Stressor-Related Disorders", "Which therapies are first-line for PTSD?"),
    ("Acute mania is treated with an antipsychotic, lithium or valproate, often in combination, with admission when safety is at risk.",
     "Bipolar and Related Disorders", "How is acute mania treated?"),
    ("Long-term maintenance treatment is recommended after a first manic episode.", "Bipolar and Related Disorders",
     "When is long-term maintenance treatment recommended for bipolar disorder?"),
    ("For children and adolescents with anorexia nervosa, family-based treatment, in which parents take charge of restoring nutrition before "
     "control is handed back, has the best evidence.", "Feeding and Eating Disorders",
     "What treatment has the best evidence for children and adolescents with anorexia nervosa?"),
    ("Cognitive behavioural therapy, behavioural activation and interpersonal therapy have the strongest evidence among talking treatments.",
     "Depressive Disorders", "Which talking treatments have the strongest evidence for a depressive disorder?"),
    ("Selective serotonin reuptake inhibitors are the first-line medicines.", "Generalized Anxiety Disorder: When Worry Gets Out of Control", None),  # for what?
    ("Selective serotonin reuptake inhibitors are the first-line medicines. They take weeks to help.", "Anxiety Disorders", None),  # more than one sentence
    ("The benefits of medication for borderline personality disorder are unclear, and it is not a first-line treatment.", "Borderline Personality Disorder", None),
    ("Some medicines are the first-line medicines for people who cannot take the usual ones.", "Anxiety Disorders", None),  # 'some' names nothing
    ("People with panic disorder are treated with respect and care by their clinicians.", "Anxiety Disorders", None),  # people, not a condition
])
def test_an_english_treatment_sentence_is_asked_what_its_structure_says(answer, title, question):
    pattern = built_questions.treatment_question(answer, built_questions.titled_condition(title))
    assert (pattern == f"^({question[:-1]})[?]$") if question else pattern is None, pattern


def test_a_built_question_names_the_condition_of_its_answers_own_chapter(handbook_chunks):
    """The demo asked 'What are the usual first-choice medicines for bipolar disorder?' of the depressive chapter's
    SSRI sentence, which a bipolar round had retrieved: the condition a sentence leaves out is its own chapter's."""
    depressive = next(c.to_dict() for c in handbook_chunks if c.chapter_key == "depressive-disorders" and "usual first-choice medicines" in c.text)
    plan = EvidencePlan("bipolar-and-related-disorders", "Bipolar and Related Disorders", "en", [
        EvidenceRound("treatment_management", "Treatment and Management", [depressive])])
    unit = next(u for u in answer_units(depressive) if u.text.startswith("Selective serotonin reuptake inhibitors are the usual"))
    assert built_questions.structured_question(plan, plan.rounds[0], [unit]) == "^(What are the usual first-choice medicines for a depressive disorder)[?]$"
    untitled = {**depressive, "section_path": ["Treatment and Management"]}  # a passage that says nothing of its chapter
    plan.rounds[0] = EvidenceRound("treatment_management", "Treatment and Management", [untitled])
    assert built_questions.structured_question(plan, plan.rounds[0], [unit]) is None


def test_a_round_answers_only_from_its_own_chapters_passages(handbook_chunks):
    """With free questions (and for every vignette), a neighbour another chapter's retrieval brought in is context:
    answered, it would be that chapter's row in this chapter's dataset."""
    depressive = next(c.to_dict() for c in handbook_chunks if c.chapter_key == "depressive-disorders" and "usual first-choice medicines" in c.text)
    bipolar = next(c.to_dict() for c in handbook_chunks if c.chapter_key == "bipolar-and-related-disorders" and "Acute mania is treated" in c.text)
    plan = EvidencePlan("bipolar-and-related-disorders", "Bipolar and Related Disorders", "en", [
        EvidenceRound("treatment_management", "Treatment and Management", [depressive]),
        EvidenceRound("treatment_management", "Treatment and Management", [depressive, bipolar])])
    assert answer_units(depressive) and answer_first.round_units(plan, 0) == []
    (unit,) = answer_first.round_units(plan, 1)
    assert unit.chunk_id == bipolar["chunk_id"]


def test_without_free_questions_a_pair_round_takes_only_answers_its_structure_asks(handbook_document, handbook_index, embedder):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "anxiety-disorders"), handbook_index, embedder, EvidenceSettings(rounds=40))
    pairs = [n for n, r in enumerate(plan.rounds) if r.task in PAIR_TASKS]
    free = {n: answer_first.round_units(plan, n) for n in pairs}
    built = {n: answer_first.round_units(plan, n, free_questions=False) for n in pairs}
    assert any(built.values()) and any(u and not built_questions.structured_question(plan, plan.rounds[n], u) for n, u in free.items())
    assert all(built_questions.structured_question(plan, plan.rounds[n], u) for n, u in built.items() if u)
    assert [n for n, u in built.items() if u] == [n for n, u in built.items() if u and free[n]]
    asked = [u[0].text for u in built.values() if u]
    assert len(asked) == len(set(asked)), "rounds of several tasks on overlapping passages ask no answer twice"
    by_task = {task: [u[0].text for n, u in built.items() if u and plan.rounds[n].task == task] for task in PAIR_TASKS}
    assert by_task["treatment_management"] and all(re.search(r"treat|therap|medic", t, re.I) for t in by_task["treatment_management"]), by_task
    assert by_task["differential_diagnosis"] and all(re.match(r"[\w\s/-]+: ", t) for t in by_task["differential_diagnosis"]), by_task  # 'X: ...' lines


def test_an_unanswerable_round_borrows_a_built_question_about_a_condition_its_passages_never_name(handbook_document, handbook_index, embedder):
    """The 135M model's own unanswerable questions were garbled ('Is it possible to have ADHD in a person's mind?',
    NIMH, 2026-12-06); a question another passage's structure dictates is well formed, and unanswered where no
    passage of the round names its condition."""
    plan = plan_chapter_evidence(chapter_of(handbook_document, "anxiety-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=24, task_mix={"unanswerable": 1, "factual_recall": 1}))
    asked = []
    for n, planned in enumerate(plan.rounds):
        if planned.task != "unanswerable" or not (pattern := built_questions.structured_question(plan, planned, [])):
            continue
        (question,) = built_questions.questions_of(pattern)
        condition = built_questions.CONDITION_PHRASE.search(question).group(0)
        passages = " ".join(e["text"] for e in planned.evidence).lower()
        assert not any(w in passages.split() for w in condition.lower().split() if w not in built_questions.NOT_DISTINCTIVE), (question, condition)
        answer = answer_first.UNANSWERABLE_ANSWER["en"].format(topic=answer_first.passage_topic(plan, planned))
        row = {"task": "unanswerable", "question": question, "answer": answer, "evidence": planned.evidence, "language": "en"}
        assert first_broken_rule(row) is None, (question, first_broken_rule(row))
        asked.append(question)
    assert asked and len(set(asked)) == len(asked), asked  # no question borrowed twice: the same row again on other passages
    # an acronym says nothing of whether the passages name the condition: they may spell it out
    assert not built_questions._unnamed_here("Which therapies are first-line for PTSD?", "after a trauma, posttraumatic stress disorder may follow")


def test_without_free_questions_a_dialogues_patient_asks_what_its_two_replies_answer():
    """The 135M model's patient turns rambled ('I am a clinical psychologist, ... How can we help you?', NIMH,
    2026-12-06): the patient now opens in the first person with the first reply's built question and follows
    up with the second's. Our own wording."""
    from ragtune.generate.qa_fit import dialogue_fit

    chunk = {"chunk_id": "c1", "chapter_key": "panic", "section_path": ["Panic Disorder", "Treatment"], "whole_section": False, "text": (
        "Treatment for panic disorder usually includes therapy, medication, or both of them together.\n"
        "Exposure therapy helps people face the body's alarm in small steps until the fear fades.\n"
        "Many people feel better within a few months.")}
    plan = EvidencePlan("panic", "Panic Disorder", "en", [EvidenceRound("counselling_dialogue", "Treatment", [chunk])])
    units = answer_first.round_units(plan, 0, free_questions=False)
    assert [u.text[:20] for u in units] == ["Treatment for panic ", "Exposure therapy hel"]
    opening, first, second = (built_questions.questions_of(p)[0] for p in built_questions.structured_turns(plan, plan.rounds[0], units))
    assert opening == "I think I might have panic disorder, and it scares me."
    assert first == "I have a question, what does treatment for panic disorder usually include?"
    assert second == "How does exposure therapy help people?"
    text = json.dumps({"opening": opening, "patient_turns": [first, second]})
    turns = answer_first.parse(plan, plan.rounds[0], units, "extractive", text)["turns"]
    assert turns[1] == {"role": "clinician", "act": "ask",
                        "content": "It sounds like you think you might have panic disorder, and it scares you. What would you like to ask me about it?"}
    assert [t["content"] for t in turns[3::2]] == [u.text for u in units]
    assert dialogue_fit({"task": "counselling_dialogue", "question": opening, "answer": units[0].text, "turns": turns, "evidence": [chunk]}) is None
    assert built_questions.question_source(plan, plan.rounds[0], units) == "structure"
    assert built_questions.structured_turns(plan, plan.rounds[0], [units[0], units[0]]) is None  # one question asked twice is no dialogue
    schema = answer_first.schema("counselling_dialogue", "extractive", fixed=built_questions.structured_turns(plan, plan.rounds[0], units))
    built = built_questions.structured_turns(plan, plan.rounds[0], units)
    assert [p["pattern"] for p in schema["properties"]["patient_turns"]["prefixItems"]] == list(built[1:])
    assert schema["properties"]["opening"]["pattern"] == built[0] and "reflection" not in schema["properties"]  # the asking turn is built
    # Three dialogue rounds on these passages (the Chinese handbook kept three of one pair, 2026-12-06): the
    # passages give one pair (its replies in the other order are the same dialogue), so only the first asks.
    again = EvidencePlan("panic", "Panic Disorder", "en", [EvidenceRound("counselling_dialogue", "Treatment", [chunk])] * 3)
    assert answer_first.round_units(again, 0, free_questions=False) == units
    assert answer_first.round_units(again, 1, free_questions=False) == []
    assert not answer_first.asks(again, 2, free_questions=False)
    # A third reply would let a second dialogue repeat one of the first's (NIMH, 2026-12-06: two dialogues asked
    # 'What do panic attacks often include?'); a fourth gives a second dialogue of its own.
    third = "Cognitive therapy helps people notice the thoughts that feed each attack and test them."
    more = {**chunk, "text": chunk["text"] + "\n" + third}
    again = EvidencePlan("panic", "Panic Disorder", "en", [EvidenceRound("counselling_dialogue", "Treatment", [more])] * 2)
    assert answer_first.round_units(again, 0, free_questions=False) == units and answer_first.round_units(again, 1, free_questions=False) == []
    fourth = "Group therapy helps people see that others live with the same attacks and recover."
    more = {**chunk, "text": chunk["text"] + "\n" + third + "\n" + fourth}
    again = EvidencePlan("panic", "Panic Disorder", "en", [EvidenceRound("counselling_dialogue", "Treatment", [more])] * 2)
    assert [u.text for u in answer_first.round_units(again, 1, free_questions=False)] == [third, fourth]


def test_built_patient_turns_go_through_the_real_models_grammar(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    """llama.cpp turns a schema pattern into a grammar: a built turn must reach it as a literal it can parse."""
    plan = plan_chapter_evidence(chapter_of(handbook_document, "obsessive-compulsive-and-related-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=6, task_mix={"counselling_dialogue": 1}))
    built = {n: built_questions.structured_turns(plan, planned, answer_first.round_units(plan, n, False)) for n, planned in enumerate(plan.rounds)}
    assert any(built.values())
    result = generate_chapter_qa(plan, embedded_llm(tmp_path), GenerationSettings(quota=6, max_waves=1, max_tokens=120, retries=0))
    assert not result.failures, result.failures
    for row in result.qa_pairs:
        patient = [t["content"] for t in row["turns"] if t["role"] == "patient"]
        assert patient == [built_questions.questions_of(p)[0] for p in built[row["generation"]["round"]]]
        assert row["generation"]["question_from"] == "structure"
    assert result.qa_pairs
