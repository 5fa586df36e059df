"""Progress of a long step, as the step's log and the CLI's bar show it: done/total (or kept/quota),
calls paid, cache hits, failures, tokens and money, elapsed and estimated time left.

Steps publish to the listeners of this process: the CLI runs its jobs in process and draws a bar from
them; in the UI the same lines go to the step's log."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ragtune.llm.usage import Price, Usage


@dataclass
class Progress:
    stage: str
    partition: str | None
    done: int  # kept pairs (generation) or answered calls (judging)
    total: int  # quota, or calls in the batch
    unit: str = "calls"
    wave: int | None = None
    calls: int = 0  # paid
    cache_hits: int = 0
    failures: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    elapsed_s: float = 0.0
    # The pace to go by when it is not done / elapsed: answers paid in the batch under way and its seconds.
    paced: tuple[int, float] | None = None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far; None before anything is done."""
        answered, seconds = self.paced if self.paced is not None else (self.done, self.elapsed_s)
        if answered <= 0 or seconds <= 0:
            return None
        return max(0.0, seconds * (self.total - self.done) / answered)

    def line(self) -> str:
        where = f"{self.stage}[{self.partition}]" if self.partition else self.stage
        wave = f" wave {self.wave}:" if self.wave is not None else ""
        cost = f" ${self.cost_usd:.4f}" if self.cost_usd is not None else ""
        eta = f", ~{self.eta_s:.0f} s left" if self.eta_s is not None else ""
        return (f"{where}{wave} {self.done}/{self.total} {self.unit}, {self.calls} calls paid, {self.cache_hits} cache hits, "
                f"{self.failures} failures, {self.usage.prompt_tokens} prompt + {self.usage.completion_tokens} completion tokens"
                f"{cost}, {self.elapsed_s:.0f} s{eta}")

    def to_dict(self) -> dict:
        return {"wave": self.wave, self.unit: self.done, "of": self.total, "calls_paid": self.calls, "cache_hits": self.cache_hits,
                "failures": self.failures, **self.usage.to_dict(), "cost_usd": self.cost_usd, "elapsed_s": round(self.elapsed_s, 1),
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1)}


Listener = Callable[[Progress], None]
_listeners: list[Listener] = []


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def publish(progress: Progress) -> None:
    for listener in list(_listeners):
        listener(progress)


class BatchReporter:
    """Reports a batch of judge/grading calls as it fills: every `every_s` seconds and at its end,
    to `log` and to this process's listeners. Give it to CachedLLM.on_progress."""

    def __init__(self, stage: str, partition: str | None, log: Callable[[str], None], llm, price: Price | None = None,
                 every_s: float = 15.0):
        self.stage, self.partition, self.log, self.llm, self.price, self.every_s = stage, partition, log, llm, price, every_s
        self.start = time.monotonic()
        self.last = 0.0
        self.batch: tuple[float, int] | None = None  # (start, answered from the cache at its start) of the batch under way
        self.finished = True  # the previous batch answered all its requests

    def __call__(self, done: int, total: int, failures: int) -> None:
        now = time.monotonic()
        if self.finished:  # a step may run several batches (grades, then comparisons): time left is this batch's
            self.batch = (now, done)
        self.finished = done >= total
        if (done == 0 and total > 0) or (done < total and now - self.last < self.every_s):
            return
        self.last = now
        started, cached = self.batch
        usage = Usage().add(self.llm.paid)
        progress = Progress(self.stage, self.partition, done, total, "calls", None, self.llm.calls, self.llm.hits, failures,
                            usage, self.price.cost(usage) if self.price else None, now - self.start, (done - cached, now - started))
        self.log(progress.line())
        publish(progress)
