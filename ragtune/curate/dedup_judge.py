"""A local model asked whether two rows repeat each other (the same question about the same condition,
people and aspect, answered by the same fact): the verifier of dedup's proposing stages when one is
configured. Its threshold on p(yes) is chosen on the dev split of the labelled dedup set by bench/dedup.py,
never on what that bench reports.

The prompt (prompts/dedup_judge.txt) carries eight worked examples on sleep disorders, a topic the
labelled set does not cover, in our own words; both orders of the pair are read and averaged, so the
verdict does not depend on which row came first. One llama.cpp context holds the examples in its KV
cache: a pair then costs its own tokens only (about 1.5 s an order for the 1.5B on 2 cores).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ragtune.llm.client import LLMCache
from ragtune.llm.fingerprint import llamacpp_model_id
from ragtune.llm.prompts import fenced, render_messages, template_sha256
from ragtune.llm.scoring import TokenScorer

TEMPLATE = "dedup_judge"


def judge_messages(first: dict[str, Any], second: dict[str, Any]) -> list[dict[str, str]]:
    return render_messages(TEMPLATE, question_a=fenced(first["question"]), answer_a=fenced(first["answer"]),
                           question_b=fenced(second["question"]), answer_b=fenced(second["answer"]))


class DedupJudge:
    """p(yes) that two rows repeat each other, averaged over both orders, behind a content-addressed cache
    (model weights, prompt, the two rows in either order), so a rerun of curation pays nothing."""

    def __init__(self, model: str, cache_dir: Path, min_yes: float):
        self.min_yes = min_yes
        self.scorer = TokenScorer(model, n_ctx=4096)
        self.model_id = llamacpp_model_id(self.scorer.model_path)
        self.cache = LLMCache(Path(cache_dir) / "dedup_judge")
        self.calls = 0  # pairs read by the model in this process (cache misses)
        self.too_long = 0  # pairs too long for the context together, kept unjudged

    def key(self, first: dict[str, Any], second: dict[str, Any]) -> str:
        rows = sorted([[first["question"], first["answer"]], [second["question"], second["answer"]]])
        seen = [self.model_id, template_sha256(TEMPLATE), rows]
        return hashlib.sha256(json.dumps(seen, ensure_ascii=False).encode("utf-8")).hexdigest()

    def p_yes(self, first: dict[str, Any], second: dict[str, Any]) -> float:
        key = self.key(first, second)
        found = self.cache.get(key)
        if found is not None:
            return float(found["p_yes"])
        try:
            orders = [self.scorer.yes_probability(judge_messages(first, second)), self.scorer.yes_probability(judge_messages(second, first))]
        except ValueError:  # two rows too long for the context together: not judged, so not called repeats (kept)
            self.too_long += 1
            return 0.0
        p_yes = sum(orders) / 2
        self.cache.put(key, {"p_yes": p_yes, "orders": orders, "model": self.model_id})
        self.calls += 1
        return p_yes

    def __call__(self, first: dict[str, Any], second: dict[str, Any]) -> bool:
        """Whether the two rows repeat each other (p(yes) at least min_yes)."""
        return self.p_yes(first, second) >= self.min_yes
