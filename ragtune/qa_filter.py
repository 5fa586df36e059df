"""Quality rules and duplicate removal for generated QA pairs, counting what each rule removes.

Rules run in a fixed order and a pair is charged to the first rule it fails, so the counts add
up to (candidates - kept). The lexical support rule is what catches a weak model's ungrounded
answers even when nothing else does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

WORD = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]")  # Latin words; each CJK character counts as a word
STOPWORDS = frozenset(
    "a an and are as at be been being but by can could did do does for from had has have how i if in into is it its "
    "may might more most no not of on or other our should so some such than that the their them then there these they "
    "this those to was were what when where which while who why will with would you your".split()
)
QUESTION_START = re.compile(r"^(what|which|who|whom|whose|when|where|why|how|is|are|can|could|does|do|did|should|"
                            r"would|will|may|in what|according)\b", re.I)
RULES = ("too_short", "not_a_question", "repetitive", "answer_repeats_question", "exact_duplicate",
         "near_duplicate", "ungrounded")
DUPLICATE_RULES = ("exact_duplicate", "near_duplicate")


@dataclass
class FilterSettings:
    min_question_words: int = 4
    min_answer_words: int = 5
    min_distinct_ratio: float = 0.45
    near_duplicate_jaccard: float = 0.8  # on the questions' word sets
    min_support: float = 0.5  # share of the answer's content words found in its evidence


@dataclass
class FilterResult:
    kept: list[dict[str, Any]] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=lambda: {rule: 0 for rule in RULES})
    rejected: list[dict[str, Any]] = field(default_factory=list)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 2 or w >= "\u3400")]


def normalize_question(text: str) -> str:
    return " ".join(words(text))


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def support(answer: str, evidence_text: str) -> float:
    """Share of the answer's content words that occur in the evidence (prefix match tolerates inflection)."""
    answer_words = content_words(answer)
    if not answer_words:
        return 0.0
    evidence_words = set(content_words(evidence_text))
    stems = {w[:5] for w in evidence_words}
    hits = sum(1 for w in answer_words if w in evidence_words or w[:5] in stems)
    return hits / len(answer_words)


def filter_qa(candidates: list[dict[str, Any]], settings: FilterSettings) -> FilterResult:
    result = FilterResult()
    seen_exact: set[str] = set()
    seen_word_sets: list[set[str]] = []
    for row in candidates:
        question, answer = row["question"].strip(), row["answer"].strip()
        evidence_text = "\n".join(e["text"] for e in row.get("evidence", []))
        answer_words = words(answer)
        grounded = support(answer, evidence_text)
        rule = None
        if len(words(question)) < settings.min_question_words or len(answer_words) < settings.min_answer_words:
            rule = "too_short"
        elif row.get("task") != "counselling_dialogue" and not (question.endswith(("?", "？")) or QUESTION_START.match(question)):
            rule = "not_a_question"  # a dialogue opens with the patient's story, not a question
        elif len(set(answer_words)) / len(answer_words) < settings.min_distinct_ratio:
            rule = "repetitive"
        elif jaccard(set(words(question)), set(answer_words)) >= 0.8:
            rule = "answer_repeats_question"
        elif normalize_question(question) in seen_exact:
            rule = "exact_duplicate"
        elif any(jaccard(set(words(question)), seen) >= settings.near_duplicate_jaccard for seen in seen_word_sets):
            rule = "near_duplicate"
        elif grounded < settings.min_support and row.get("task") != "unanswerable":
            rule = "ungrounded"  # an unanswerable question's answer says what the evidence lacks
        if rule:
            result.removed[rule] += 1
            result.rejected.append({"qa_id": row["qa_id"], "rule": rule, "question": question})
            continue
        seen_exact.add(normalize_question(question))
        seen_word_sets.append(set(words(question)))
        result.kept.append({**row, "lexical_support": round(grounded, 3)})
    return result
