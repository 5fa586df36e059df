"""What generating a chapter will cost, before any call: the rounds the quota loop would ask for,
their prompts rendered exactly as the run renders them and counted with the model's tokenizer, and
output tokens from the mean that earlier runs of the same model observed (else max_tokens, an upper
bound). Requests already in the cache are free. No LLM is called."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ragtune.generate import answer_first
from ragtune.generate.evidence import EvidencePlan
from ragtune.generate.qa_generation import GenerationSettings, _pick_rounds, _request, askable_rounds, wave_size
from ragtune.llm.client import LLMCache, cache_key
from ragtune.llm.usage import Price, Usage

CountTokens = Callable[[list[dict[str, str]]], int]


@dataclass
class Observed:
    """What earlier generation runs of this model saw, from their status files: per planned round asked,
    how many calls it took (retries) and how many pairs it kept; per paid call, its completion tokens."""

    rounds: int = 0
    calls: int = 0
    kept: int = 0
    completion_tokens: int = 0

    @classmethod
    def from_statuses(cls, statuses: list[dict[str, Any]], model_id: str) -> "Observed":
        seen = cls()
        for status in statuses:
            if status.get("model") != model_id or not status.get("rounds_used"):
                continue
            seen.rounds += int(status["rounds_used"])
            seen.calls += int(status.get("answered_calls", 0))
            seen.kept += int(status.get("kept", 0))
            seen.completion_tokens += int(status.get("answered_completion_tokens", 0))
        return seen


@dataclass
class ChapterEstimate:
    chapter_key: str
    rounds: int  # planned rounds the loop is expected to ask
    calls: int  # expected calls, retries included
    cached_calls: int  # of the first rounds' requests, already answered in the cache
    prompt_tokens: int
    completion_tokens: int
    completion_basis: str
    expected_kept: float
    cost_usd: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        return Usage(self.calls - self.cached_calls, self.prompt_tokens, 0, self.completion_tokens)


def expected_rounds(plan: EvidencePlan, settings: GenerationSettings, observed: Observed) -> tuple[list[int], float, float]:
    """(rounds in the order the waves would ask them, calls per round, kept per round): the quota loop
    simulated at the observed keep rate, or the settings' first_keep_rate when nothing is observed."""
    kept_per_round = observed.kept / observed.rounds if observed.rounds else settings.first_keep_rate * settings.pairs_per_call
    calls_per_round = observed.calls / observed.rounds if observed.rounds else 1.0
    unused, asked, kept, rate = askable_rounds(plan, settings), [], 0.0, settings.first_keep_rate  # as generate_chapter_qa
    for _ in range(settings.max_waves):
        if kept >= settings.quota or not unused:
            break
        wave = _pick_rounds(plan, unused, [], wave_size(settings, math.floor(kept), rate), first=not asked)
        unused = [n for n in unused if n not in set(wave)]
        asked += wave
        kept += len(wave) * kept_per_round
        rate = kept_per_round / settings.pairs_per_call
    return asked, calls_per_round, kept_per_round


def estimate_chapter(
    plan: EvidencePlan, settings: GenerationSettings, count_tokens: CountTokens, observed: Observed,
    cache: LLMCache | None = None, cache_identity: str | None = None, price: Price | None = None,
) -> ChapterEstimate:
    asked, calls_per_round, kept_per_round = expected_rounds(plan, settings, observed)
    requests = []
    for n in asked:  # each asks something (askable_rounds): one request apiece
        planned = plan.rounds[n]
        units = answer_first.round_units(plan, n, settings.free_questions) if settings.mode(planned.task) != "abstractive" else None
        requests.append(_request(plan, planned, n, 0, settings, units))
    cached = sum(1 for r in requests if cache is not None and cache_identity and cache.get(cache_key(cache_identity, r)) is not None)
    prompts = [count_tokens(r.messages) for r in requests]
    calls = round(len(requests) * calls_per_round)
    paid = max(0, calls - cached)
    mean_prompt = sum(prompts) / len(prompts) if prompts else 0.0
    if observed.calls:
        per_call, basis = observed.completion_tokens / observed.calls, f"observed mean over {observed.calls} earlier calls"
    else:
        per_call, basis = float(max(r.sampling.max_tokens for r in requests)) if requests else 0.0, "max_tokens (upper bound; nothing observed yet)"
    estimate = ChapterEstimate(
        plan.chapter_key, len(asked), calls, cached, round(mean_prompt * paid), round(per_call * paid), basis,
        round(len(asked) * kept_per_round, 1),
    )
    estimate.cost_usd = round(price.cost(estimate.usage), 6) if price else None
    return estimate
