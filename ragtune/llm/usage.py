"""Token usage and what it costs: every call's prompt, cached-prompt and completion tokens, summed per
chapter, asset and run, and turned into money by a per-model price table (USD per million tokens)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Mapping

BATCH_DISCOUNT = 0.5  # the OpenAI Batch API bills half the online price


@dataclass
class Usage:
    """Tokens of calls that reached a backend (paid) — cache hits cost nothing and are counted apart."""

    calls: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # of prompt_tokens, those the provider served from its prompt cache
    completion_tokens: int = 0

    def add(self, other: "Usage") -> "Usage":
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Price:
    """USD per million tokens. Cached input defaults to the full input price when a provider gives no discount."""

    input_per_million: float
    output_per_million: float
    cached_input_per_million: float | None = None

    def cost(self, usage: Usage, batch: bool = False) -> float:
        cached_rate = self.input_per_million if self.cached_input_per_million is None else self.cached_input_per_million
        fresh = usage.prompt_tokens - usage.cached_prompt_tokens
        dollars = (fresh * self.input_per_million + usage.cached_prompt_tokens * cached_rate
                   + usage.completion_tokens * self.output_per_million) / 1e6
        return dollars * (BATCH_DISCOUNT if batch else 1.0)


def price_for(prices: Mapping[str, Mapping[str, float] | Price], model: str) -> Price | None:
    """The price of `model`: an exact entry, else the longest entry that the model's name starts with
    (a table entry `gpt-4o-mini` prices `gpt-4o-mini-2024-07-18`). None when the table has none."""
    table = {name: value if isinstance(value, Price) else Price(**value) for name, value in prices.items()}
    if model in table:
        return table[model]
    prefixes = sorted((name for name in table if model.startswith(name)), key=len, reverse=True)
    return table[prefixes[0]] if prefixes else None

