"""Answer grading for evaluation: one batch through the cache, with the real local model as judge."""

from __future__ import annotations

from ragtune.evaluate.grading import GradeItem, JudgeSettings, grade_many

EVIDENCE = "Lithium has the strongest evidence for preventing relapse. It needs blood level, kidney and thyroid monitoring."


def test_grades_come_back_in_order_from_one_cached_batch(tmp_path, embedded_llm):
    items = [
        GradeItem("What monitoring does lithium need?", "Blood level, kidney and thyroid monitoring.", EVIDENCE,
                  "Lithium needs blood level, kidney and thyroid checks."),
        GradeItem("What monitoring does lithium need?", "Blood level, kidney and thyroid monitoring.", EVIDENCE, ""),
    ]
    llm = embedded_llm(tmp_path)
    grades, failures = grade_many(llm, items, JudgeSettings())
    assert len(grades) == 2 and llm.calls == 2
    for grade in grades:
        assert (grade["score"] is None and grade["rationale"]) or 1 <= grade["score"] <= 10
    assert len(failures) == sum(g["score"] is None for g in grades)
    again = embedded_llm(tmp_path)
    assert grade_many(again, items, JudgeSettings()) == (grades, failures) and again.calls == 0
