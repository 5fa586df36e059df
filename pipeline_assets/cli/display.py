"""What the CLI prints: progress bars from the steps' reports (plain lines when stderr is not a
terminal, so logs and scripts get them too), one-line errors, and token/cost tables."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Any

from ragtune.llm.progress import Progress, listening
from ragtune.llm.usage import Usage


OK, FAILED, BAD_INPUT, BUDGET_REACHED, STOPPED = 0, 1, 2, 3, 130  # every command's exit codes (docs/headless.md)


def fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


class ProgressDisplay:
    """A rich bar per step and chapter on a terminal; elsewhere one line per report."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.stack = ExitStack()
        self.tasks: dict[tuple[str, str | None], Any] = {}
        self.bars: Any = None

    def __enter__(self) -> "ProgressDisplay":
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bars

            self.bars = Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TextColumn("{task.fields[detail]}"), console=Console(file=self.stream))
            self.stack.enter_context(self.bars)
        self.stack.enter_context(listening(self.show))
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()

    def show(self, progress: Progress) -> None:
        if not self.live:
            print(f"  {progress.line()}", file=self.stream, flush=True)
            return
        key = (progress.stage, progress.partition)
        label = f"{progress.stage} {progress.partition or ''}".strip()
        if key not in self.tasks:
            self.tasks[key] = self.bars.add_task(label, total=progress.total, detail="")
        cost = f" ${progress.cost_usd:.4f}" if progress.cost_usd is not None else ""
        eta = f" ~{progress.eta_s:.0f}s left" if progress.eta_s is not None else ""
        detail = (f"{progress.unit}; {progress.calls} paid, {progress.cache_hits} cached, {progress.failures} failed, "
                  f"{progress.usage.prompt_tokens + progress.usage.completion_tokens} tok{cost}{eta}")
        self.bars.update(self.tasks[key], completed=min(progress.done, progress.total), total=progress.total, detail=detail)


def usage_table(rows: list[dict[str, Any]]) -> str:
    """Tokens and cost per asset and chapter, with the run's total."""
    if not rows:
        return "tokens: no LLM calls in this run"
    lines = [f"{'asset':<16}{'chapter':<40}{'calls':>7}{'prompt':>10}{'cached':>9}{'completion':>12}{'cost USD':>11}"]
    total, total_cost, priced = Usage(), 0.0, True
    for row in rows:
        usage: Usage = row["usage"]
        total.add(usage)
        priced = priced and row["cost_usd"] is not None
        total_cost += row["cost_usd"] or 0.0
        cost = f"{row['cost_usd']:.4f}" if row["cost_usd"] is not None else "unpriced"
        lines.append(f"{row['asset']:<16}{row['chapter'][:39]:<40}{usage.calls:>7}{usage.prompt_tokens:>10}"
                     f"{usage.cached_prompt_tokens:>9}{usage.completion_tokens:>12}{cost:>11}")
    cost = f"{total_cost:.4f}" if priced else "unpriced"
    lines.append(f"{'total':<56}{total.calls:>7}{total.prompt_tokens:>10}{total.cached_prompt_tokens:>9}"
                 f"{total.completion_tokens:>12}{cost:>11}")
    return "\n".join(lines)
