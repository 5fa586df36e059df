"""Quality rules and per-chapter duplicate removal."""

from __future__ import annotations

from ragtune.generate.qa_filter import RULES, FilterSettings, filter_qa
from ragtune.text import support

EVIDENCE = (
    "Lithium has the strongest evidence for preventing relapse and also lowers suicide risk. "
    "It requires regular blood level, kidney and thyroid monitoring."
)


def row(qa_id, question, answer, chunk="bipolar:aaa", chapter="bipolar"):
    return {
        "qa_id": qa_id,
        "question": question,
        "answer": answer,
        "chapter_key": chapter,
        "chunk_ids": [chunk],
        "evidence": [{"chunk_id": chunk, "doc_id": "doc-1", "section_path": ["Bipolar", "Treatment"], "pages": [9], "text": EVIDENCE}],
    }


def test_each_rule_removes_what_it_names_and_counts_add_up():
    candidates = [
        row("1", "Which medicine best prevents bipolar relapse?", "Lithium has the strongest evidence for preventing relapse."),
        row("2", "Which medicine best prevents bipolar relapse?", "Lithium prevents relapse and lowers suicide risk strongly."),
        row("3", "Which medicine best prevents a bipolar relapse?", "Lithium has the strongest evidence for preventing relapse."),
        row("4", "What monitoring?", "Blood level monitoring."),
        row("5", "Tell me about lithium monitoring needs", "Lithium requires blood level, kidney and thyroid monitoring."),
        row("6", "What does lithium require?", "Lithium requires monitoring. Lithium requires monitoring. Lithium requires monitoring."),
        row("7", "What is the capital city of France?", "Paris is the capital city of France and its largest town."),
        row("8", "What monitoring does lithium require?", "Lithium requires regular blood level, kidney and thyroid monitoring."),
    ]
    result = filter_qa(candidates, FilterSettings())
    assert [r["qa_id"] for r in result.kept] == ["1", "8"]
    expected = dict.fromkeys(RULES, 0) | {
        "too_short": 1, "not_a_question": 1, "repetitive": 1, "exact_duplicate": 1, "near_duplicate": 1, "unsupported_terms": 1,
    }
    assert result.removed == expected
    assert sum(result.removed.values()) + len(result.kept) == len(candidates)
    assert all(r["lexical_support"] >= 0.5 for r in result.kept)
    (paris,) = [r for r in result.rejected if r["qa_id"] == "7"]
    assert {"paris", "capital", "france"} <= set(paris["unsupported_terms"]) and "paris" in paris["detail"]


def test_support_measures_answer_words_found_in_evidence():
    assert support("Lithium requires kidney monitoring.", EVIDENCE) == 1.0
    assert support("Paris is the capital of France.", EVIDENCE) == 0.0


def test_at_most_two_kept_rows_share_one_answer():
    """The 1.5B wrote nine different cases answered by one criteria list; all nine passed every other rule."""
    answer = "Lithium requires regular blood level, kidney and thyroid monitoring."
    candidates = [
        row("1", "What monitoring does lithium require?", answer),
        row("2", "Which tests are needed during lithium treatment?", answer),
        row("3", "How is a person taking lithium checked over time?", answer),
        row("4", "What has the strongest evidence for preventing bipolar relapse?", "Lithium has the strongest evidence for preventing relapse."),
    ]
    result = filter_qa(candidates, FilterSettings())
    assert [r["qa_id"] for r in result.kept] == ["1", "2", "4"]
    assert result.removed["answer_repeated"] == 1 and result.rejected[0]["qa_id"] == "3"
    assert [r["qa_id"] for r in filter_qa(candidates, FilterSettings(max_rows_per_answer=3)).kept] == ["1", "2", "3", "4"]


def test_unanswerable_rows_share_their_template_answer_without_the_cap():
    """An unanswerable row's answer is a template, one per section: the cap on rows per answer is not for them."""
    answer = "The cited passages do not answer this question; they are about lithium treatment."
    candidates = [row(str(n), question, answer) | {"task": "unanswerable"} for n, question in enumerate([
        "What dose of clozapine is used in treatment-resistant schizophrenia?",
        "How often should electroconvulsive therapy be given to older adults?",
        "Which vaccine schedule suits a child with autism?",
    ])]
    result = filter_qa(candidates, FilterSettings(max_rows_per_answer=1))
    assert len(result.kept) == 3 and result.removed["answer_repeated"] == 0, result.rejected
