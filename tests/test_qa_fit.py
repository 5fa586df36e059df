"""Question-answer fit: every misfit kind the fit issue found in the demo's kept rows is rejected by the
qa_filtered rule (question_does_not_fit), fitting questions on the same answers are kept, and the
labelled fit set is what its README says (exact handbook text, NIMH by offsets and hashes only)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ragtune.generate.dialogue import reflection
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.qa_fit import fit_problem
from ragtune.generate.row_rules import first_broken_rule

from .conftest import ROOT, shared_path

SOURCE = ROOT / "sample_handbook" / "source"
LABELS = ROOT / "tests" / "data" / "fit_labels.jsonl"
HOLDOUT = ROOT / "tests" / "data" / "fit_labels_holdout.jsonl"


def handbook_line(file: str, starts: str) -> tuple[str, str, str]:
    """(chapter title, section, the sentence or list item of the handbook that starts so), read from our own source."""
    text = (SOURCE / file).read_text(encoding="utf-8")
    title = re.search(r"^# (.+)$", text, re.M).group(1)
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:]
        if line[:1].isdigit() and re.sub(r"^\d+\.\s+", "", line).startswith(starts):
            return title, section, line  # a list item, with its label
        if starts in line:
            return title, section, re.match(r".+?[.!?](?=\s|$)", line[line.index(starts):]).group(0)
    raise AssertionError(f"{starts!r} not in {file}")


def row(file: str, starts: str, question: str, task: str = "factual_recall", answer: str | None = None) -> dict:
    title, section, found = handbook_line(file, starts)
    return {
        "qa_id": question[:20], "task": task, "language": "en", "question": question, "answer": answer or found, "chapter_title": title,
        "focus": section, "evidence": [{"chunk_id": "c:1", "section_path": [title, section], "text": found}],
    }


def dialogue(first_patient: str, second_patient: str) -> dict:
    """A counselling dialogue on the two anorexia nervosa criteria the demo's kept dialogue was built from: the
    patient's opening, the clinician's built asking turn, the patient's second turn, the first criterion, a
    follow-up that the second criterion answers, the second criterion."""
    replies = [row(EATING, starts, "")["answer"] for starts in ("Restriction of energy intake", "Intense fear of gaining weight")]
    base = row(EATING, "Restriction of energy intake", first_patient, "counselling_dialogue")
    informs = [{"role": "clinician", "content": reply, "act": "inform", "cites": [{"chunk_id": f"c:{n}", "start": 0, "end": len(reply), "text": reply}]}
               for n, reply in enumerate(replies, 1)]
    turns = [{"role": "patient", "content": first_patient}, {"role": "clinician", "content": reflection(first_patient, "en"), "act": "ask"},
             {"role": "patient", "content": second_patient}, informs[0],
             {"role": "patient", "content": "Why am I so scared of gaining weight?"}, informs[1]]
    return base | {"turns": turns, "evidence": base["evidence"] + [{"chunk_id": "c:2", "section_path": base["evidence"][0]["section_path"], "text": replies[1]}]}


BIPOLAR, ANXIETY, DEPRESSIVE = "03-bipolar-and-related-disorders.md", "02-anxiety-disorders.md", "01-depressive-disorders.md"
TRAUMA, OCD, EATING = "04-trauma-and-stressor-related-disorders.md", "05-obsessive-compulsive-and-related-disorders.md", "06-feeding-and-eating-disorders.md"

# The kept rows of the demo that the fit issue quotes, on the handbook lines that answered them.
MISFITS = {
    "title split into a pair": row(BIPOLAR, "Attention-deficit/hyperactivity disorder", "What is the difference between Bipolar and Related Disorders?"),
    "title split (OCD chapter)": row(OCD, "The group includes obsessive-compulsive disorder",
                                     "What is the difference between Obsessive-Compulsive and Related Disorders?"),
    "title split (feeding and eating)": row(EATING, "Body dysmorphic disorder", "What is the difference between Feeding and Eating Disorders?"),
    "a definition for a difference": row(ANXIETY, "Anxiety disorders are diagnosed when", "What is the difference between anxiety and fear?"),
    "malformed difference": row(DEPRESSIVE, "Depressive disorders share one core experience",
                                "What is the difference between a depressive disorders and other mood disorders?"),
    "broader than its answer": row(EATING, "For children and adolescents with anorexia nervosa",
                                   "What is the best treatment for feeding and eating disorders?", "treatment_management"),
    "malformed treatment": row(TRAUMA, "Trauma-focused psychological therapies are first-line",
                               "What is the treatment for trauma-focused psychological therapies?", "treatment_management"),
    "one side of a difference": row(BIPOLAR, "Borderline personality disorder", "How does borderline personality disorder differ?"),
    "wrong entity": row(EATING, "For children and adolescents with anorexia nervosa",
                        "What treatment has the best evidence for children and adolescents with bulimia nervosa?", "treatment_management"),
    "vignette names its diagnosis": row(
        OCD, "Obsessions are recurrent", "A 19-year-old student, a patient with obsessive compulsive disorder (OCD), is brought to the emergency "
        "department. She has recurrent and persistent thoughts that she experiences as intrusive and unwanted. They cause her marked "
        "anxiety. What is your diagnosis?", "clinical_vignette", "Obsessive-compulsive disorder: Obsessions are recurrent and persistent "
        "thoughts, urges or images that are experienced as intrusive and unwanted and that cause marked anxiety or distress."),
    "a 19-year-old with a child's parents": row(
        OCD, "Obsessions are recurrent", "A 19-year-old student is brought to the emergency department. The child's parents say she has "
        "recurrent and persistent thoughts that she experiences as intrusive and unwanted. They cause her marked anxiety. What is the most "
        "likely diagnosis?", "clinical_vignette", "Obsessive-compulsive disorder: Obsessions are recurrent and persistent "
        "thoughts, urges or images that are experienced as intrusive and unwanted and that cause marked anxiety or distress."),
}
FITS = {
    "a differential told apart from the chapter's condition": row(BIPOLAR, "Attention-deficit/hyperactivity disorder",
                                                                  "How is attention-deficit/hyperactivity disorder told apart from bipolar disorder?"),
    "a differential by its acronym": row(BIPOLAR, "Attention-deficit/hyperactivity disorder", "How is ADHD told apart from bipolar disorder?"),
    "a differential of the eating chapter": row(EATING, "Body dysmorphic disorder", "How is body dysmorphic disorder told apart from an eating disorder?"),
    "a difference the answer draws": row(ANXIETY, "Fear is the response to a threat", "What is the difference between fear and anxiety?"),
    "a treatment with its population and disorder": row(EATING, "For children and adolescents with anorexia nervosa",
                                                        "What treatment has the best evidence for children and adolescents with anorexia nervosa?",
                                                        "treatment_management"),
    "a first-line treatment": row(TRAUMA, "Trauma-focused psychological therapies are first-line", "Which therapies are first-line for PTSD?",
                                  "treatment_management"),
    "a vignette that keeps its diagnosis to itself": row(
        OCD, "Obsessions are recurrent", "A 19-year-old student is brought to the emergency department. She has recurrent and persistent "
        "thoughts that she experiences as intrusive and unwanted. They cause her marked anxiety, and she cannot stop them. What is the most "
        "likely diagnosis?", "clinical_vignette", "Obsessive-compulsive disorder: Obsessions are recurrent and persistent "
        "thoughts, urges or images that are experienced as intrusive and unwanted and that cause marked anxiety or distress."),
}

MISFITS |= {
    "a dialogue opening that points at nothing (the demo's)": dialogue(
        "Hi, I'm Sarah. How can you tell that?", "I have a concern about eating and my body is telling me it's unhealthy."),
    "a patient who speaks as a clinician": dialogue(
        "Patients with anorexia nervosa eat too little. What are the criteria?", "What else do clinicians look for?"),
    "a clinician's reply that takes up nothing the patient said": dialogue(
        "I'm feeling really low about my exams.", "Should I talk to a counsellor?"),
    "a patient turn in the third person": dialogue(
        "My daughter barely eats and has lost a lot of weight. Is that anorexia?", "She says she is terrified of getting fat."),
    "a reply that shares only the worry with the patient's opening": dialogue(
        "I'm worried about my job; my energy is so low.", "What else should I know?"),
    "an opening that names no worry": dialogue("I'm worried about something; my weight is so low.", "Is it about eating?"),
}
FITS |= {
    "a follow-up that just asks": dialogue("I barely eat and I keep losing weight, but I still feel fat.",
                                           "Is it normal to be this afraid of gaining weight?"),
    "a patient worried about what the reply takes up": dialogue(
        "I'm worried about my low body weight and how little I eat.", "Is it normal to be this afraid of gaining weight?"),
    "a patient who speaks as a patient": dialogue(
        "I've been eating very little for months and my weight keeps dropping. Is something wrong with me?",
        "Why am I still so scared of gaining weight when everyone says I'm too thin?"),
}

# Finer misfits found on the dev part of the labelled set, caught by the rule (the audit is not held to these).


def whole_line(file: str, starts: str) -> str:
    return next(line for line in (SOURCE / file).read_text(encoding="utf-8").splitlines() if line.startswith(starts))


MANIC_A = whole_line(BIPOLAR, "A. A distinct period of abnormally")
RULE_MISFITS = {
    "one figure asked, a whole criterion answered": row(BIPOLAR, "A distinct period of abnormally", "What is the minimum duration of a manic episode?",
                                                        answer=MANIC_A),
    "a comparison with nothing to compare to": row(OCD, "Clomipramine is an effective alternative", "How does clomipramine compare?",
                                                   "treatment_management"),
    "the criteria asked, one criterion answered": row(EATING, "Intense fear of gaining weight", "What are the diagnostic criteria for anorexia nervosa?",
                                                      answer=whole_line(EATING, "B. Intense fear of gaining weight")),
    "treatment and management asked of a therapy (the demo's)": row(
        TRAUMA, "Trauma-focused psychological therapies are first-line",
        "What is the treatment and management of trauma-focused cognitive behavioural therapy, prolonged exposure to memory?",
        "treatment_management"),
    "a plural after 'is the'": row(OCD, "Clomipramine is an effective alternative", "Which is the side effects of clomipramine?",
                                   "treatment_management"),
    "a case that gives its patient two ages": row(
        BIPOLAR, "A distinct period of abnormally", "A 34-year-old man comes to the clinic with his wife. For ten days he has been elated, "
        "has barely slept and has spent his savings. The 19-year-old has never been like this. What is the most likely diagnosis?",
        "clinical_vignette", "Manic episode: " + MANIC_A),
    "a case that names its diagnosis in another form": row(
        BIPOLAR, "A distinct period of abnormally", "A 34-year-old man is brought in by his wife. For ten days he has been elated, has barely "
        "slept and has spent his savings; she calls it a mania episode. What is the most likely diagnosis?",
        "clinical_vignette", "Manic episode: " + MANIC_A),
    "a case that pastes its criterion": row(
        BIPOLAR, "A distinct period of abnormally", "A 34-year-old man is brought in by his wife. He has had a distinct period of abnormally "
        "and persistently elevated, expansive or irritable mood for ten days. What is the most likely diagnosis?",
        "clinical_vignette", "Bipolar I disorder: " + MANIC_A),
    "any treatment asked of the psychological one (the demo, 2026-12-05)": row(
        ANXIETY, "Cognitive behavioural therapy with graded exposure", "What is the treatment for anxiety disorders?", "treatment_management"),
    "'what' asked of how it is diagnosed (NIMH rows read 2026-12-05)": row(
        OCD, "Obsessions are recurrent and persistent", "What is obsessive-compulsive disorder diagnosed?"),
    "a group of people asked as a thing": row(EATING, "Feeding and eating disorders are persistent", "What are people with eating disorders?"),
    "how it is managed asked, a risk answered": row(BIPOLAR, "The risk of suicide is many times higher",
                                                    "How should suicide risk be managed in bipolar disorder?"),
    "how it works asked, a duration answered": row(ANXIETY, "Selective serotonin reuptake inhibitors and", "How do SSRIs work?",
                                                   answer="They take two to four weeks to start to show an effect on symptoms."),
    "its harms asked, its use answered": row(OCD, "Clomipramine is an effective alternative", "What are the risks of deep brain stimulation?",
                                             answer="For severe, treatment-resistant cases, specialist options include intensive residential programmes and, "
                                                    "in a few centres, deep brain stimulation."),
    "a superlative with no noun": row(ANXIETY, "Cognitive behavioural therapy with graded exposure", "What is the most psychotherapy?"),
    "the prompt's label in the question": row(ANXIETY, "Cognitive behavioural therapy with graded exposure",
                                             "Question: What is the psychological treatment of choice across the anxiety disorders?"),
    "an unanswerable question with the prompt's label": row(ANXIETY, "Cognitive behavioural therapy with graded exposure",
                                                          "Question: Which anxiety disorder is most common in Iceland?", "unanswerable"),
    "'what is the' before a plural": row(DEPRESSIVE, "Recurrence is the main long-term concern", "What is the factors of recurrence?"),
    "a case that names its diagnosis's group (the demo, 2026-12-05)": row(
        EATING, "Restriction of energy intake", "A 19-year-old student is brought to the emergency department. Feeding and eating "
        "disorders are a serious condition that can affect anyone. What is your diagnosis?", "clinical_vignette",
        "Anorexia Nervosa: " + handbook_line(EATING, "Restriction of energy intake")[2]),
}


@pytest.mark.parametrize("name", RULE_MISFITS)
def test_finer_misfits_of_the_dev_set_are_rejected_by_the_fit_rule(name):
    assert fit_problem(RULE_MISFITS[name]), f"{name}: {RULE_MISFITS[name]['question']!r} passed"


def test_a_question_whose_form_its_answer_meets_fits():
    """The answer-type rules ask only for the kind of thing the question's form asks for."""
    treated = row(BIPOLAR, "Acute mania is treated with", "How is acute mania treated?", "treatment_management")
    works = row(ANXIETY, "Cognitive behavioural therapy with graded exposure", "How does graded exposure work?", "treatment_management",
                answer="The person and therapist build a hierarchy of feared situations and approach them step by step, staying long enough for fear to fall.")
    harms = row(ANXIETY, "Benzodiazepines act quickly", "What are the risks of benzodiazepines?", "treatment_management")
    assert [fit_problem(r) for r in (treated, works, harms)] == [None, None, None]


def test_a_case_shorter_than_its_criteria_ask_for_does_not_fit():
    """The 1.5B's generalized anxiety disorder cases ran 'for the past two weeks' or 'three months' against criteria of
    at least six months (handbook, 2026-12-07): the answer would teach a diagnosis the case does not meet."""
    text = (SOURCE / "02-anxiety-disorders.md").read_text(encoding="utf-8")
    section = text.split("## Diagnostic Criteria for Generalized Anxiety Disorder", 1)[1].split("\n## ", 1)[0].strip()
    features = section[section.index("C. The anxiety and worry"):]
    row = {"qa_id": "case", "task": "clinical_vignette", "language": "en", "chapter_title": "Anxiety Disorders",
           "answer": "Generalized anxiety disorder: " + features, "evidence": [{"chunk_id": "c:1", "text": section}]}

    def case(duration: str) -> dict:
        return {**row, "question": f"A 28-year-old mother says she has worried about money and her children's health {duration}, "
                                   "feels restless and tired and sleeps badly. What is the most likely diagnosis?"}

    assert "under the 180 days its criteria ask for" in fit_problem(case("for the past two weeks"))
    assert "under the 180 days" in fit_problem(case("for three months"))
    assert fit_problem(case("for over a year")) is None


def test_telling_one_condition_from_others_is_a_difference_question():
    """'How can you tell if someone is experiencing GAD from other mental health conditions?' answered by how to
    talk with a friend passed as a plain question (qwen2.5-coder-1.5b, NIMH, 2026-12-07); 'tell ... from' asks a difference."""
    question = "How can you tell if someone is experiencing generalized anxiety disorder (GAD) from other mental health conditions?"
    advice = row(ANXIETY, "Cognitive behavioural therapy with graded exposure", question, "differential_diagnosis",
                 answer="If you think a friend may be struggling with worry, set aside a time to talk with them and offer your support.")
    assert "one side of the difference is missing" in fit_problem(advice)
    assert "one side" not in (fit_problem({**advice, "question": "What can you tell from the symptoms of generalized anxiety disorder?"}) or "")


def test_a_question_for_which_medicine_needs_an_answer_that_names_one():
    """'Which medications can help control the symptoms?' answered by 'Certain medications can help ...' names none
    (qwen2.5-coder-1.5b on the NIMH bipolar pages, 2026-12-06); the handbook's line naming them fits."""
    named = row(BIPOLAR, "Acute mania is treated with", "Which medicines are used for acute mania?", "treatment_management")
    unnamed = {**named, "answer": "Certain medications can help control the symptoms of mania; some people try several first."}
    assert fit_problem(named) is None and "which medicine" in fit_problem(unnamed)


def test_a_question_for_a_share_needs_an_answer_that_gives_one():
    """'According to the WISQARS, what percentage of U.S. adults have thoughts about suicide?' was answered by a
    reference-list line (NIMH suicide test split, 2026-12-07). Our own wording."""
    asked = {"task": "factual_recall", "language": "en", "chapter_title": "Suicide", "evidence": [],
             "question": "According to the national survey, what percentage of adults thought about suicide last year?"}
    assert "for a share" in fit_problem({**asked, "answer": "(2024). National survey of mood and wellbeing in adults, annual tables."})
    for answer in ("About 5% of adults had serious thoughts of suicide in the last year.", "One in twenty adults thought about suicide last year."):
        assert fit_problem({**asked, "answer": answer}) is None


def test_a_multiple_choice_item_is_no_question_for_its_answer():
    """'When two adequate trials have failed, options include switching class (A), adding psychotherapy (B), ...
    What is the correct answer?' was kept with the whole sentence as its answer (handbook, 2026-12-07)."""
    answer = "After two failed trials, the options are another class of drug, added psychotherapy or augmentation."
    item = {"task": "factual_recall", "language": "en", "chapter_title": "Depressive Disorders", "evidence": [], "answer": answer,
            "question": "After two failed trials, the options are another class of drug (A), added psychotherapy (B) or augmentation (C). What is the correct answer?"}
    assert "malformed" in fit_problem(item)
    assert fit_problem({**item, "question": "What are the options after two failed trials of a drug?"}) is None


def test_a_question_that_names_the_answers_kind_of_treatment_fits():
    assert fit_problem(row(ANXIETY, "Cognitive behavioural therapy with graded exposure",
                           "What is the psychological treatment of choice across the anxiety disorders?", "treatment_management")) is None


def test_an_age_of_onset_does_not_make_a_question_broader():
    onset = row(BIPOLAR, "Bipolar disorders affect roughly", "How common are bipolar disorders, and when do they usually begin?")
    assert "late teens" in onset["answer"] and fit_problem(onset) is None  # 'late teens' says when, not who
    said_of_teens = "In teenagers, bipolar disorders affect roughly one to two percent and often go unrecognised."
    assert "broader" in fit_problem(row(BIPOLAR, "Bipolar disorders affect roughly", "How common are bipolar disorders?", answer=said_of_teens))


def test_a_question_whose_clause_ends_in_diagnosed_is_not_malformed():
    from ragtune.generate.qa_fit import MALFORMED

    assert MALFORMED.search("What is OCD diagnosed?")
    assert not MALFORMED.search("What is the first step when depression is diagnosed?")


def test_an_acronym_the_chapter_spells_out_is_named_by_the_question():
    """'OCD' is obsessive-compulsive disorder in the chapter 'Obsessive-Compulsive and Related Disorders'."""
    assert fit_problem(row(OCD, "Cognitive behavioural therapy with exposure and response prevention",
                           "What is the first-line psychological treatment for OCD?", "treatment_management")) is None


@pytest.mark.parametrize("name", MISFITS)
def test_each_misfit_the_demo_kept_is_now_rejected_by_the_fit_rule(name):
    bad = MISFITS[name]
    assert fit_problem(bad), f"{name}: {bad['question']!r} passed"
    result = filter_qa([bad], FilterSettings())
    assert not result.kept
    assert result.rejected[0]["rule"] in ("question_does_not_fit", "caseless_vignette", "question_not_answered")


@pytest.mark.parametrize("name", FITS)
def test_fitting_questions_on_the_same_answers_pass_the_fit_rule(name):
    assert fit_problem(FITS[name]) is None
    assert first_broken_rule(FITS[name]) is None  # nor does the older term rule drop it (English rows are the fit rule's)


def test_the_independent_audit_also_finds_each_misfit_and_passes_each_fit():
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    import audit_rows

    assert all(audit_rows.check_fits(row) for row in MISFITS.values()), [k for k, r in MISFITS.items() if not audit_rows.check_fits(r)]
    assert not any(audit_rows.check_fits(row) for row in FITS.values()), [k for k, r in FITS.items() if audit_rows.check_fits(r)]


def test_the_rule_says_what_does_not_fit():
    assert "splits the title 'Bipolar and Related Disorders'" in fit_problem(MISFITS["title split into a pair"])
    assert "abbreviates" in fit_problem(MISFITS["vignette names its diagnosis"]) or "names its diagnosis" in fit_problem(MISFITS["vignette names its diagnosis"])
    assert "child" in fit_problem(MISFITS["a 19-year-old with a child's parents"])
    assert "broader" in fit_problem(MISFITS["broader than its answer"])


def labelled(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_a_differential_told_apart_from_the_condition_its_lists_lead_in_names_fits():
    """The trauma chapter's differential list is posttraumatic stress disorder's, which only its lead-in says;
    the lead-in counts as the line's context, another item of the list does not."""
    text = (SOURCE / TRAUMA).read_text(encoding="utf-8")
    section = text.split("## Differential Diagnosis\n", 1)[1].split("\n## ", 1)[0].strip()
    answer = "Major depressive disorder: low mood may follow trauma without intrusion or avoidance symptoms."
    assert answer in section and "Before diagnosing posttraumatic stress disorder" in section

    def asked(question: str, evidence: str) -> dict:
        return {"task": "differential_diagnosis", "language": "en", "question": question, "answer": answer,
                "chapter_title": "Trauma- and Stressor-Related Disorders", "focus": "Differential Diagnosis",
                "evidence": [{"chunk_id": "c:1", "section_path": ["Trauma- and Stressor-Related Disorders", "Differential Diagnosis"], "text": evidence}]}

    assert fit_problem(asked("How is major depressive disorder told apart from posttraumatic stress disorder?", section)) is None
    assert "not from 'posttraumatic stress disorder'" in fit_problem(asked("How is major depressive disorder told apart from posttraumatic stress disorder?", answer))
    assert "not from 'psychotic disorders'" in fit_problem(asked("How is major depressive disorder told apart from psychotic disorders?", section))


@pytest.mark.parametrize("path", [LABELS, HOLDOUT])
def test_the_labelled_fit_sets_hold_what_their_readme_says(path):
    items = labelled(path)
    assert len({i["id"] for i in items}) == len(items)
    kinds = {"fits", "broader", "narrower", "other_aspect", "one_side_missing", "title_split", "wrong_entity", "malformed", "vignette_names_diagnosis"}
    assert {i["kind"] for i in items} == kinds
    assert all(i["fits"] == (i["kind"] == "fits") for i in items)
    by_passage: dict[str, set] = {}
    for item in items:
        if item["source"] == "handbook":
            text = (SOURCE / item["doc"]).read_text(encoding="utf-8")
            assert item["evidence"] in text, item["id"]
            features = item["answer"].split(": ", 1)[1] if item["task"] == "clinical_vignette" else item["answer"]
            assert features in item["evidence"], item["id"]
            key = item["evidence"]
        else:
            assert "evidence" not in item and len(item["evidence_sha256"]) == 64, item["id"]  # NIMH text is never stored
            key = f"{item['doc']}{item['evidence_span']}"
        by_passage.setdefault(key, set()).add(item["split"])
    assert all(len(splits) == 1 for splits in by_passage.values()), "a passage's items stay in one split"
    if path == LABELS:
        assert len(items) >= 300 and {i["split"] for i in items} == {"dev", "test"}


def test_nimh_items_resolve_against_the_shared_corpus():
    from ragtune.benchmarks import load_labelled

    corpus = shared_path("corpus")
    items = [i for i in load_labelled(LABELS, corpus) if i["source"] == "nimh"]
    assert len(items) >= 100
    for item in items:
        assert item["answer"].split(": ", 1)[-1] in item["evidence"]
        source = (corpus / item["doc"]).read_text(encoding="utf-8").split()
        runs = {" ".join(source[k : k + 8]) for k in range(len(source) - 7)}
        question = item["question"].split()
        assert not any(" ".join(question[k : k + 8]) in runs for k in range(len(question) - 7)), f"{item['id']} copies its source"


@pytest.mark.slow
def test_the_fit_judge_is_the_filters_last_rule_and_asks_each_pair_once(tmp_path):
    """The 1.5B as fit judge (resources/fit_judge.py): a kept pair has p(yes) >= the threshold, a dropped one is
    counted under fit_judge with its p(yes); a second judge on the same cache loads no model at all."""
    from ragtune.generate.fit_scores import CachedFitJudge

    rows = [FITS["a treatment with its population and disorder"], FITS["a first-line treatment"],
            MISFITS["broader than its answer"], MISFITS["one side of a difference"]]
    rows = [{**r, "qa_id": f"r{n}"} for n, r in enumerate(rows)]
    no_rules = {"question_does_not_fit", "question_not_answered"}
    judge = CachedFitJudge("qwen2.5-coder-1.5b", tmp_path, min_yes=0.6)
    scores = [judge(r) for r in rows]
    assert all(0.0 < s < 1.0 for s in scores)
    result = filter_qa(rows, FilterSettings(), judge)
    judged = [(r, s) for r, s in zip(rows, scores) if not ({x["rule"] for x in result.rejected if x["qa_id"] == r["qa_id"]} & no_rules)]
    for r, s in judged:
        rejected = [x for x in result.rejected if x["qa_id"] == r["qa_id"]]
        if s < 0.6:
            assert rejected and rejected[0]["rule"] == "fit_judge" and rejected[0]["p_yes"] == round(s, 3)
        else:
            assert any(k["qa_id"] == r["qa_id"] for k in result.kept)
    again = CachedFitJudge("qwen2.5-coder-1.5b", tmp_path, min_yes=0.6)
    assert [again(r) for r in rows] == scores
    assert not any("llama" in vars(scorer) for scorer in again.judge.scorers.values())  # answered from the cache
    assert scores[0] > scores[2]  # the population-and-disorder question above the broader one on the same answer


def test_a_question_that_lists_its_own_answer_does_not_fit():
    """'What is an example of a type of psychotherapy ..., including interpersonal and social rhythm therapy?' was kept
    beside the sentence naming that therapy (qwen2.5-coder-1.5b, NIMH bipolar pages, 2026-12-06)."""
    asked = row(BIPOLAR, "Psychoeducation, family-focused therapy and interpersonal",
                "Which psychosocial treatments help people with bipolar disorder keep regular sleep and activity patterns?", "treatment_management")
    assert fit_problem(asked) is None
    given_away = {**asked, "question": "Which psychosocial treatments help people with bipolar disorder keep regular sleep patterns, "
                                       "such as interpersonal and social rhythm therapy?"}
    assert "names what it asks for" in fit_problem(given_away)
    narrowed = {**asked, "question": "Which psychosocial treatments help people with bipolar disorder, such as those with rapid cycling, "
                                     "keep regular sleep patterns?"}
    assert "names what it asks for" not in (fit_problem(narrowed) or "")  # a listed kind of person narrows, it gives nothing away
    by_condition = {**asked, "question": "Which treatments help bipolar and related disorders such as bipolar disorder?"}
    assert "names what it asks for" not in (fit_problem(by_condition) or "")


def test_what_to_tell_the_provider_is_not_answered_by_talk_to_them():
    """'What should you tell your health care provider about the risks and benefits of each medication?' answered by
    'Talk with your health care provider to understand ...' (1.5B, NIMH): it says nothing to tell."""
    referral = row(BIPOLAR, "Lithium has the strongest evidence", "What should you tell your health care provider about lithium?",
                   "treatment_management", answer="Talk with your health care provider to understand the risks and benefits of lithium.")
    assert "what to tell or ask" in fit_problem(referral)
    content = {**referral, "answer": "Lithium requires regular blood level, kidney and thyroid monitoring, so say which other medicines you take."}
    assert "what to tell" not in (fit_problem(content) or "")


def test_a_course_question_answered_with_a_second_part_of_the_course_is_narrower():
    """'How common are bipolar disorders?' was built for 'Bipolar disorders affect roughly one to two percent of people and
    usually begin in the late teens or twenties' (read 2026-12-07): the answer also says when they begin."""
    prevalence = row(BIPOLAR, "Bipolar disorders affect roughly", "How common are bipolar disorders?")
    assert "narrower" in fit_problem(prevalence) and "usually begin" in fit_problem(prevalence)
    onset = {**prevalence, "question": "When do anorexia nervosa and bulimia nervosa most often begin?",
             "answer": "Anorexia nervosa and bulimia nervosa most often begin in adolescence or young adulthood and are more common in women."}
    assert "more common in women" in fit_problem(onset)
    assert fit_problem({**onset, "question": "When do anorexia nervosa and bulimia nervosa most often begin, and in whom are they more common?"}) is None
    assert fit_problem({**onset, "answer": "Anorexia nervosa and bulimia nervosa most often begin in adolescence or young adulthood."}) is None
