"""The 1.5B as dedup's verifier (ragtune.curate.dedup_judge, threshold from bench/dedup.py): a reworded
question with a reworded answer, which the question-cosine stage alone misses, goes; the same condition
asked about another aspect, which shares most words, stays. Rows in our own words."""

from __future__ import annotations

import pytest

from ragtune.curate.dedup import DedupSettings, deduplicate
from ragtune.curate.dedup_judge import DedupJudge
from resources.dedup_judge import MIN_DEDUP_YES

ROWS = [
    {"qa_id": "kept", "chapter_key": "sleep", "question": "How long must symptoms last before separation anxiety disorder is diagnosed in an adult?",
     "answer": "In adults the fear and worry about separation must last for at least six months."},
    {"qa_id": "reworded", "chapter_key": "anxiety", "question": "For how many months does an adult's dread of being apart from loved ones have to persist to count as separation anxiety disorder?",
     "answer": "Six months or longer in adults."},
    {"qa_id": "other_aspect", "chapter_key": "anxiety", "question": "How is separation anxiety disorder treated in an adult?",
     "answer": "Cognitive behavioural therapy with gradual practice of time apart is the main treatment."},
]


@pytest.mark.slow
def test_the_verifier_removes_a_reworded_repeat_and_keeps_another_aspect(tmp_path, embedder):
    questions = embedder.encode([r["question"] for r in ROWS])
    answers = embedder.encode([r["answer"] for r in ROWS])
    alone = deduplicate(ROWS, questions, DedupSettings())
    assert [r["qa_id"] for r in alone.kept] == ["kept", "reworded", "other_aspect"]  # question cosine alone misses the rewording
    judge = DedupJudge("qwen2.5-coder-1.5b", tmp_path, MIN_DEDUP_YES)
    verified = deduplicate(ROWS, questions, DedupSettings(), judge, answers)
    assert [r["qa_id"] for r in verified.kept] == ["kept", "other_aspect"], [judge.p_yes(ROWS[0], r) for r in ROWS[1:]]
    assert [(r["qa_id"], r["dedup_stage"], r["duplicate_of"]) for r in verified.removed] == [("reworded", "semantic", "kept")]
    assert judge.calls == 2  # the two proposals (the reworded row, then the other aspect against the kept row), each read once
    again = DedupJudge("qwen2.5-coder-1.5b", tmp_path, MIN_DEDUP_YES)
    assert [r["qa_id"] for r in deduplicate(ROWS, questions, DedupSettings(), again, answers).kept] == ["kept", "other_aspect"]
    assert again.calls == 0  # every reading from the cache


def test_a_verified_semantic_stage_needs_the_answers_embeddings(embedder):
    questions = embedder.encode([r["question"] for r in ROWS])
    with pytest.raises(ValueError, match="answers' embeddings"):
        deduplicate(ROWS, questions, DedupSettings(), lambda kept, row: True)


def test_the_verified_semantic_stage_proposes_nearest_answers_and_only_kept_rows(embedder):
    """Which pairs reach the verifier (here one that records what it is asked and says yes only to the
    reworded row): the reworded row by its answer as well as its question, never a row already removed,
    never a pair below the cosine floor, and a row sharing an answer text only through its question."""
    rows = ROWS + [
        {"qa_id": "unrelated", "chapter_key": "sleep", "question": "Which medicines help restless legs syndrome?",
         "answer": "Iron when stores are low, and gabapentin or pregabalin."},
        {"qa_id": "same_answer", "chapter_key": "anxiety", "question": "Which symptoms define panic disorder?",
         "answer": ROWS[2]["answer"]},
    ]
    asked: list[tuple[str, str]] = []

    def verifier(kept: dict, row: dict) -> bool:
        asked.append((kept["qa_id"], row["qa_id"]))
        return row["qa_id"] == "reworded"

    settings = DedupSettings(stages=["semantic"])
    result = deduplicate(rows, embedder.encode([r["question"] for r in rows]), settings, verifier, embedder.encode([r["answer"] for r in rows]))
    assert [r["qa_id"] for r in result.removed] == ["reworded"]
    assert ("kept", "reworded") in asked
    assert not [pair for pair in asked if "reworded" in pair[0]]  # a removed row is nobody's original
    assert not [pair for pair in asked if "unrelated" in pair]  # below the cosine floor with every row
    other, same = embedder.encode([rows[2]["question"], rows[4]["question"]])
    assert float(other @ same) < settings.verified_cosine  # so only its identical answer could propose the pair
    assert ("other_aspect", "same_answer") not in asked


def test_the_ask_check_still_vetoes_a_repeat_the_verifier_calls(embedder):
    """The 1.5B called 4 of 14 narrowed held-out negatives repeats (bench/dedup.py): a pair whose questions differ
    in polarity, people or a qualifier never goes, whatever the verifier says, unless verified_ask_check is off."""
    rows = [{"qa_id": "adults", "chapter_key": "anxiety", "question": "Which medicine is first-line for panic disorder?",
             "answer": "An SSRI is the usual first-line medicine."},
            {"qa_id": "heart", "chapter_key": "cardio", "question": "Which medicine is first-line for panic disorder with a heart condition?",
             "answer": "Sertraline, with the heart checked first."}]
    questions, answers = embedder.encode([r["question"] for r in rows]), embedder.encode([r["answer"] for r in rows])
    asked: list[str] = []

    def says_yes(kept: dict, row: dict) -> bool:
        asked.append(row["qa_id"])
        return True

    assert [r["qa_id"] for r in deduplicate(rows, questions, DedupSettings(), says_yes, answers).kept] == ["adults", "heart"]
    assert asked == []  # vetoed before any model call
    unchecked = deduplicate(rows, questions, DedupSettings(verified_ask_check=False), says_yes, answers)
    assert [r["qa_id"] for r in unchecked.kept] == ["adults"] and asked
