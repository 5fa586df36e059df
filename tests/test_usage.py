"""Tokens, money and budgets on the real embedded model: every call's tokens are recorded, a budget
stops generation cleanly, and the rerun with a higher budget continues from the cache without repaying."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence
from ragtune.generate.qa_generation import Budget, GenerationSettings, generate_chapter_qa
from ragtune.llm.usage import Price, Usage, price_for
from tests.conftest import chapter_of


def test_prices_match_model_names_and_apply_cached_rates():
    table = {"gpt-4o": {"input_per_million": 2.5, "output_per_million": 10.0},
             "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6, "cached_input_per_million": 0.075}}
    assert price_for(table, "gpt-4o-mini-2024-07-18") == Price(0.15, 0.6, 0.075)  # the longest prefix
    assert price_for(table, "gpt-4o-2024-08-06").input_per_million == 2.5
    assert price_for(table, "claude") is None
    usage = Usage(calls=2, prompt_tokens=1_000_000, cached_prompt_tokens=400_000, completion_tokens=100_000)
    assert Price(0.15, 0.6, 0.075).cost(usage) == pytest.approx(0.6 * 0.15 + 0.4 * 0.075 + 0.1 * 0.6)
    assert Price(0.15, 0.6, 0.075).cost(usage, batch=True) == pytest.approx((0.09 + 0.03 + 0.06) / 2)
    with pytest.raises(ValueError, match="price"):
        Budget(usd=1.0)


def test_a_budget_stops_generation_and_the_rerun_continues_without_repaying(handbook_document, handbook_index, embedder, tmp_path,
                                                                          embedded_llm):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "bipolar-and-related-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=12, top_k=2))
    price = Price(input_per_million=3.0, output_per_million=15.0)
    settings = GenerationSettings(quota=6, max_waves=2, max_tokens=120, retries=0, free_questions=True)  # enough rounds to spend the budget
    waves = []
    llm = embedded_llm(tmp_path)
    # About two calls' worth at ~250 prompt and ~45 completion tokens; a question its answer's structure dictates is
    # shorter to write, so it buys a few more calls than that, still fewer than the rounds that ask.
    budget = 2 * (250 * 3.0 + 45 * 15.0) / 1e6
    stopped = generate_chapter_qa(plan, llm, replace(settings, budget_usd=budget), price=price, on_wave=waves.append)
    spent = price.cost(stopped.usage)
    assert stopped.budget_reached and not stopped.quota_met and 1 <= stopped.usage.calls < 12
    per_call = spent / stopped.usage.calls
    assert budget <= spent + per_call and spent <= budget + 2 * per_call  # stops at the budget, not a wave later
    hand = (stopped.usage.prompt_tokens * 3.0 + stopped.usage.completion_tokens * 15.0) / 1e6
    assert waves[-1].cost_usd == pytest.approx(hand) and waves[-1].calls == stopped.llm_calls
    assert stopped.usage.calls == llm.calls and stopped.usage.prompt_tokens == llm.paid.prompt_tokens > 100 * llm.calls
    assert "kept" in waves[-1].line() and f"{stopped.llm_calls} calls paid" in waves[-1].line()

    more = embedded_llm(tmp_path)
    resumed = generate_chapter_qa(plan, more, replace(settings, budget_usd=budget * 100), price=price)
    assert resumed.cache_hits >= stopped.llm_calls  # what the stopped run paid for is served from the cache
    assert more.calls == resumed.usage.calls == resumed.llm_calls and resumed.rounds_used > stopped.rounds_used
    assert not resumed.budget_reached


def test_a_token_budget_needs_no_price(handbook_document, handbook_index, embedder, tmp_path, embedded_llm):
    plan = plan_chapter_evidence(chapter_of(handbook_document, "anxiety-disorders"), handbook_index, embedder,
                                 EvidenceSettings(rounds=6, top_k=2))
    result = generate_chapter_qa(plan, embedded_llm(tmp_path), GenerationSettings(quota=6, max_waves=1, max_tokens=80, retries=0,
                                                                                  budget_tokens=1))
    assert result.budget_reached and result.usage.calls == 1 and result.progress[-1]["cost_usd"] is None


def test_time_left_is_the_pace_of_the_batch_under_way(monkeypatch, tmp_path):
    """A step that runs two batches (grades, then comparisons) reports the second one's time left from
    its own pace, not from the step's elapsed time over the second batch's few answers."""
    from ragtune.llm import progress as progress_module
    from ragtune.llm.backends import LlamaCppBackend
    from ragtune.llm.client import CachedLLM, LLMCache

    clock = iter([0.0, 5.0, 10.0, 100.0, 101.0, 102.0])
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    lines: list[str] = []
    reporter = progress_module.BatchReporter("judge_scores", None, lines.append, CachedLLM(LlamaCppBackend(), LLMCache(tmp_path)),
                                             every_s=0.0)  # built at t=0
    seen: list[progress_module.Progress] = []
    with progress_module.listening(seen.append):
        reporter(0, 4, 0)  # t=5: batch 1 starts
        reporter(4, 4, 0)  # t=10: all four answered in 5 s
        reporter(1, 4, 0)  # t=100: batch 2 starts with one answer from the cache
        reporter(2, 4, 0)  # t=101: one paid answer in 1 s, two to go
    assert [p.done for p in seen] == [4, 1, 2]
    assert seen[0].eta_s == 0.0 and seen[1].eta_s is None  # nothing paid yet in batch 2: no pace to go by
    assert seen[2].eta_s == pytest.approx(2.0) and seen[2].elapsed_s == 101.0  # not 101 s * 2 / 2
    assert "~2 s left" in lines[-1]
