"""Quality rules and duplicate removal for generated QA pairs, counting what each rule removes.

Rules run in a fixed order and a pair is charged to the first rule it fails, so the counts add
up to (candidates - kept); each rejected row keeps its detail (the unsupported-terms rule lists
the terms). The content rules live in ragtune.generate.row_rules; then the groundedness gate
(ragtune.generate.grounding.grounding_verdict), which a kept row must pass against its cited evidence, the
cap on kept rows per answer, and last the fit judge when one is configured (it costs a call).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ragtune.generate.fit_scores import CachedFitJudge
from ragtune.generate.grounding import grounding_verdict
from ragtune.generate.row_rules import RULES as CONTENT_RULES
from ragtune.generate.row_rules import first_broken_rule
from ragtune.tasks import shape_of, task_style
from ragtune.text import jaccard, normalize_question, support, words

RULES = ("too_short", *CONTENT_RULES, "repetitive", "exact_duplicate", "near_duplicate", "unsupported_terms", "answer_repeated", "fit_judge")
DUPLICATE_RULES = ("exact_duplicate", "near_duplicate", "answer_repeated")


@dataclass
class FilterSettings:
    min_question_words: int = 4
    min_answer_words: int = 5
    min_distinct_ratio: float = 0.45
    near_duplicate_jaccard: float = 0.8  # on the questions' word sets
    # Kept rows that may share one answer: the 1.5B wrote nine different cases of one criteria list, all
    # kept, and a tuned model learns to answer every worried patient with generalized anxiety disorder.
    max_rows_per_answer: int = 2


@dataclass
class FilterResult:
    kept: list[dict[str, Any]] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=lambda: {rule: 0 for rule in RULES})
    rejected: list[dict[str, Any]] = field(default_factory=list)


def filter_qa(candidates: list[dict[str, Any]], settings: FilterSettings, fit_judge: CachedFitJudge | None = None) -> FilterResult:
    """fit_judge (the fit_judge resource, off by default): the last rule, a local model's p(yes) that the
    answer is the full and exact answer to the question, asked only of pairs every other rule keeps; a pair
    is kept at p(yes) >= fit_judge.min_yes. Duplicates are judged with unanswerable rows last: a question a
    passage answers is kept as that pair, not as another round's 'not answered here' (NIMH, 2026-12-06, lost
    'How can I help a friend or relative with schizophrenia?' so). Rows come back in the candidates' order."""

    result = FilterResult()
    seen_exact: set[tuple[bool, str]] = set()  # a dialogue repeats only a dialogue (as in curation's dedup)
    seen_word_sets: list[tuple[bool, set[str]]] = []
    answer_rows: Counter[str] = Counter()
    kept: list[tuple[int, dict[str, Any]]] = []
    rejected: list[tuple[int, dict[str, Any]]] = []
    for n, row in sorted(enumerate(candidates), key=lambda item: shape_of(item[1].get("task")) == "abstention"):
        question, answer = row["question"].strip(), row["answer"].strip()
        dialogue = shape_of(row.get("task")) == "dialogue"
        answer_key = normalize_question(answer)
        answer_words = words(answer)
        rule, detail, extra = None, "", {}
        broken = first_broken_rule(row)
        if len(words(question)) < settings.min_question_words or len(answer_words) < settings.min_answer_words:
            rule = "too_short"
        elif broken:
            rule, detail = broken
        elif len(set(answer_words)) / len(answer_words) < settings.min_distinct_ratio:
            rule = "repetitive"
        elif (dialogue, normalize_question(question)) in seen_exact:
            rule = "exact_duplicate"
        elif any(jaccard(set(words(question)), seen) >= settings.near_duplicate_jaccard for shaped, seen in seen_word_sets if shaped == dialogue):
            rule = "near_duplicate"
        else:
            verdict = grounding_verdict(row)
            if not verdict.grounded:
                rule, detail, extra = "unsupported_terms", verdict.reason, {"unsupported_terms": verdict.unsupported}
            elif answer_rows[answer_key] >= settings.max_rows_per_answer and not task_style(row.get("task")).exempt("answer_repeated"):
                rule, detail = "answer_repeated", f"{settings.max_rows_per_answer} kept rows already have this answer"
            elif fit_judge is not None and not task_style(row.get("task")).exempt("fit_judge"):
                p_yes = fit_judge(row)
                if p_yes < fit_judge.min_yes:
                    rule, detail, extra = "fit_judge", f"{fit_judge.model} judges that the answer does not fit: p(yes) {p_yes:.2f} < {fit_judge.min_yes}", {"p_yes": round(p_yes, 3)}
        if rule:
            result.removed[rule] += 1
            rejected.append((n, {"qa_id": row["qa_id"], "rule": rule, "detail": detail, **extra, "question": question}))
            continue
        seen_exact.add((dialogue, normalize_question(question)))
        seen_word_sets.append((dialogue, set(words(question))))
        answer_rows[answer_key] += 1
        evidence_text = "\n".join(e["text"] for e in row.get("evidence", []))
        kept.append((n, {**row, "lexical_support": round(support(answer, evidence_text), 3)}))
    result.kept = [row for _, row in sorted(kept, key=lambda item: item[0])]
    result.rejected = [row for _, row in sorted(rejected, key=lambda item: item[0])]
    return result
