"""A task style is one record (ragtune/tasks.py): a style added there is planned, given answers about its
topic, named in the prompt and held to the pair rules without touching any other module."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from ragtune.generate import answer_first
from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence, task_schedule
from ragtune.generate.qa_filter import RULES
from ragtune.generate.row_rules import first_broken_rule
from ragtune.llm.prompts import task_template
from ragtune.tasks import EXEMPTIONS, SHAPES, TASK_STYLES, TaskStyle, default_task_mix, shape_of, task_style
from tests.conftest import ROOT, chapter_of

COURSE = TaskStyle(
    "course_and_outcome", "pair", 2, ("sentence", "definition"), re.compile(r"\b(?:relapses?|course|recover\w*|chronic|remission)\b", re.I),
    focus_sections=re.compile(r"course|prognosis", re.I), focus_query="course and prognosis",
    question_kind={"en": "a question about how the illness runs over time"},
)


def test_every_style_has_its_prompt_in_every_language_and_a_known_shape():
    for name, style in TASK_STYLES.items():
        assert style.name == name and style.shape in SHAPES
        for language in ("en", "zh"):
            assert (ROOT / "ragtune" / "prompts" / f"{task_template(name, language)}.txt").is_file()
    for shape in SHAPES:
        for language in ("en", "zh"):
            if shape != "pair":
                assert (ROOT / "ragtune" / "prompts" / language / f"answer_first_{shape}.txt").is_file()
    assert EXEMPTIONS <= set(RULES) | {"authors_voice"}
    with pytest.raises(ValueError, match="no check may be exempted by the name"):  # a misspelt exemption would do nothing
        TaskStyle("poetry", "pair", 1, exempt_from=frozenset({"fit_judges"}))
    assert task_style("").name == "factual_recall"  # an export's row without a task    assert task_style(None).name == "factual_recall"  # a labelled item without a task reads as a factual pair
    with pytest.raises(ValueError, match="unknown task 'poetry'"):
        shape_of("poetry")


def test_a_style_added_as_one_record_is_planned_answered_and_prompted(monkeypatch, handbook_document, handbook_index, embedder):
    monkeypatch.setitem(TASK_STYLES, COURSE.name, COURSE)
    assert default_task_mix()[COURSE.name] == 2 and COURSE.name in task_schedule(default_task_mix())
    chapter = chapter_of(handbook_document, "bipolar-and-related-disorders")
    plan = plan_chapter_evidence(chapter, handbook_index, embedder, EvidenceSettings(rounds=12, task_mix={COURSE.name: 1, "factual_recall": 1}))
    course_rounds = [n for n, r in enumerate(plan.rounds) if r.task == COURSE.name]
    assert Counter(r.task for r in plan.rounds)[COURSE.name] == 6
    assert {plan.rounds[n].focus for n in course_rounds} == {"Course and Prognosis"}  # its focus_sections
    units = answer_first.round_units(plan, course_rounds[0])
    assert units and COURSE.answer_topic.search(units[0].text), units  # its answer_topic comes first
    messages = answer_first.render(plan, course_rounds[0], units, "extractive", passages="(passages)")
    assert "a question about how the illness runs over time" in messages[-1]["content"]  # its question_kind
    answer_first.check_answer_modes({COURSE.name: "hybrid"})
    row = {"qa_id": "c1", "task": COURSE.name, "language": "en", "question": "What does the course of bipolar disorder look like?",
           "answer": units[0].text, "chapter_title": chapter.title, "evidence": plan.rounds[course_rounds[0]].evidence}
    assert first_broken_rule({**row, "question": "Course of bipolar disorder."})[0] == "not_a_question"  # a pair's rules apply
    with pytest.raises(ValueError, match="unknown task"):
        plan_chapter_evidence(chapter, handbook_index, embedder, EvidenceSettings(rounds=4, task_mix={"prognosis_only": 1}))
