"""The 1.5B as the entailment judge bench/grounding.py measures: on a handbook passage it gives a verbatim
answer and a faithful rewording a p(yes) above a changed number and a swapped group of people (the
threshold the bench chose on dev, 0.955, sits close to a verbatim answer's own score: 0.94 here)."""

from __future__ import annotations

import pytest

from ragtune.generate.entailment import EntailmentJudge

EVIDENCE = ("Major depressive disorder is the most common of these. Across a lifetime, somewhere between one in six and one in "
            "five adults will meet its criteria at least once, and women are affected roughly twice as often as men from adolescence onward.")


@pytest.mark.slow
def test_the_local_entailment_judge_ranks_stated_answers_above_changed_ones():
    judge = EntailmentJudge("qwen2.5-coder-1.5b")
    stated = judge.yes(EVIDENCE, "Women are affected roughly twice as often as men from adolescence onward.")
    reworded = judge.yes(EVIDENCE, "From adolescence on, women are about twice as likely as men to be affected.")
    changed_number = judge.yes(EVIDENCE, "Women are affected roughly four times as often as men from adolescence onward.")
    swapped = judge.yes(EVIDENCE, "Men are affected roughly twice as often as women from adolescence onward.")
    assert stated > 0.9, stated
    assert min(stated, reworded) > max(changed_number, swapped), (stated, reworded, changed_number, swapped)
