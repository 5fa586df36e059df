"""A local model as the entailment judge of the groundedness gate: its probability that the passage
states every claim of the answer, read from the first reply token (yes against no), after eleven
worked examples in our own words on invented sleep-medicine facts (a faithful rewording, a changed
number, a swapped person or condition, an invented name, an added claim). The passage comes before
the answer, so the answers written from one passage share its tokens in the engine's KV cache.
The threshold is chosen on the dev half of the grounding labels by bench/grounding.py.
"""

from __future__ import annotations

from ragtune.llm.prompts import fenced, render_messages
from ragtune.llm.scoring import TokenScorer

TEMPLATE = "entailment_judge"


class EntailmentJudge:
    def __init__(self, model: str | None = None):
        self.scorer = TokenScorer(model, n_ctx=3072)

    def yes(self, evidence: str, answer: str) -> float:
        """P(yes) that evidence states every claim of answer."""
        return self.scorer.yes_probability(render_messages(TEMPLATE, passage=fenced(evidence), answer=fenced(answer)))
