"""Model-based scores of question-answer fit, each a number to threshold (the threshold is chosen on
the dev part of the labelled fit set by bench/qa_fit.py, never on what it reports):

- embedding relevancy: how much nearer the question is to the answer than to any other sentence of
  the evidence (all-MiniLM-L6-v2 cosines);
- round-trip likelihood: mean log P(answer | evidence, question) minus mean log P(answer | evidence,
  a generic question), teacher-forced through a local model: what the question adds to predicting
  exactly this answer;
- judge: a local model's probability of "yes" to "is this answer the full and exact answer to this
  question?", read from the first token's distribution, averaged over two orders of the pair (question
  first, answer first), each prompt with the same 13 worked examples in our own words (fits and each
  kind of misfit, on invented sleep and depression facts): the examples are a shared prefix, so the
  engine reads them once. Without the examples the 1.5B separated fits from misfits far less (bench/qa_fit.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.llm.client import LLMCache
from ragtune.llm.fingerprint import llamacpp_model_id
from ragtune.llm.prompts import fenced, inline_title, render_messages, template_sha256
from ragtune.llm.scoring import TokenScorer
from ragtune.text import sentence_spans

GENERIC_QUESTION = {"en": "What does this passage say?", "zh": "这段文字讲了什么？"}
JUDGE_TEMPLATES = ("fit_judge", "fit_judge_swapped")


def section_of(row: dict[str, Any]) -> str:
    path = row.get("section_path") or (row.get("evidence") or [{}])[0].get("section_path") or []
    return " > ".join(path) if path else row.get("focus", "")


def evidence_of(row: dict[str, Any]) -> str:
    evidence = row.get("evidence")
    return "\n".join(e["text"] for e in evidence) if isinstance(evidence, list) else str(evidence or "")


def judge_messages(row: dict[str, Any], template: str) -> list[dict[str, str]]:
    return render_messages(
        template, question=fenced(row["question"]), answer=fenced(row["answer"]),
        section=inline_title(section_of(row)), chapter_title=inline_title(row.get("chapter_title", "")),
    )


class FitJudge:
    """A local model asked both orders of every pair. One llama.cpp context per order, so each keeps its
    worked examples in its KV cache: a pair then costs only its own tokens (about 1.5 s per order for the
    1.5B on 2 cores, where alternating the orders in one context read the examples again every time)."""

    def __init__(self, model: str | None = None):
        from ragtune.llm.local_models import resolve_gguf

        self.model_path = resolve_gguf(model)  # found and checked once for both contexts
        self.scorers = {template: TokenScorer(self.model_path, n_ctx=1536) for template in JUDGE_TEMPLATES}

    def yes(self, row: dict[str, Any]) -> float:
        """Mean P(yes) over the two orders of the pair."""
        return float(np.mean([scorer.yes_probability(judge_messages(row, t)) for t, scorer in self.scorers.items()]))


def judge_yes(judge: FitJudge, row: dict[str, Any]) -> float:
    return judge.yes(row)


class CachedFitJudge:
    """The fit judge behind a content-addressed cache (model weights, prompts, pair and its place), so the
    filter that runs after every wave, a rerun and qa_filtered pay for each pair once."""

    def __init__(self, model: str, cache_dir: Path, min_yes: float):
        self.model, self.min_yes = model, min_yes
        self.judge = FitJudge(model)
        self.cache = LLMCache(Path(cache_dir) / "fit_judge")
        self.model_id = llamacpp_model_id(self.judge.model_path)
        self.prompts = "".join(template_sha256(t) for t in JUDGE_TEMPLATES)

    def key(self, row: dict[str, Any]) -> str:
        seen = [self.model_id, self.prompts, row["question"], row["answer"], section_of(row), row.get("chapter_title", "")]
        return hashlib.sha256(json.dumps(seen, ensure_ascii=False).encode("utf-8")).hexdigest()

    def __call__(self, row: dict[str, Any]) -> float:
        key = self.key(row)
        found = self.cache.get(key)
        if found is not None:
            return float(found["p_yes"])
        p_yes = self.judge.yes(row)
        self.cache.put(key, {"p_yes": p_yes, "model": self.model_id})
        return p_yes


def round_trip(scorer: TokenScorer, row: dict[str, Any]) -> float:
    def mean_logprob(question: str) -> float:
        messages = render_messages(
            "fit_roundtrip", passage=fenced(evidence_of(row)), question=fenced(question),
            section=inline_title(section_of(row)), chapter_title=inline_title(row.get("chapter_title", "")),
        )
        total, count = scorer.continuation_logprob(messages, row["answer"])
        return total / max(count, 1)

    return mean_logprob(row["question"]) - mean_logprob(GENERIC_QUESTION.get(row.get("language", "en"), GENERIC_QUESTION["en"]))


def sentences(text: str) -> list[str]:
    found = []
    for line in text.split("\n"):
        found += [line[a:b].strip() for a, b in sentence_spans(line) if len(line[a:b].split()) >= 3]
    return found


def embedding_margin(embedder: Any, row: dict[str, Any]) -> float:
    """cos(question, answer) minus the best cos(question, an evidence sentence outside the answer)."""
    others = [s for s in sentences(evidence_of(row)) if s not in row["answer"] and row["answer"] not in s]
    vectors = embedder.encode([row["question"], row["answer"], *others])
    question, answer, rest = vectors[0], vectors[1], vectors[2:]
    own = float(np.dot(question, answer))
    return own - (float(np.max(rest @ question)) if len(rest) else 0.0)
