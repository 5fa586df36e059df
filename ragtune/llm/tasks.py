"""One loop for every LLM task in the pipeline: the requests go through the cache in one batch, each
answer is parsed and validated, and every failure becomes a ledger entry with its reason, the raw
output (when there was one) and whether the endpoint was down. Generation, the curation judge,
evaluation grading, reference answers and pairwise comparison all run through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from ragtune.llm.client import CachedLLM, ChatRequest, Completion, failure_record, mask_secrets
from ragtune.llm.reasoning import UNFINISHED
from ragtune.llm.usage import Usage

T = TypeVar("T")
RAW_CHARS = 2000  # of a failed answer kept in the ledger


@dataclass
class TaskRun(Generic[T]):
    values: list[T | None] = field(default_factory=list)  # the parsed answer per request, None where it failed
    completions: list[Completion | None] = field(default_factory=list)  # None where the backend raised
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def asked(self) -> int:
        return len(self.values)

    @property
    def answered(self) -> int:
        return sum(v is not None for v in self.values)

    @property
    def cache_hits(self) -> int:
        return sum(1 for c in self.completions if c is not None and c.cached)

    @property
    def calls(self) -> int:
        return sum(1 for c in self.completions if c is not None and not c.cached)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.completions if c is not None)

    @property
    def usage(self) -> Usage:
        """Tokens of the calls paid in this run (cache hits cost nothing; a request asked twice in one
        batch was sent, and paid, once)."""
        total, seen = Usage(), set()
        for completion in self.completions:
            if completion is not None and not completion.cached and completion.cache_key not in seen:
                seen.add(completion.cache_key)
                total.add(completion.usage)
        return total


def run_tasks(
    llm: CachedLLM,
    requests: list[ChatRequest],
    parse: Callable[[int, str], T],
    describe: Callable[[int], dict[str, Any]] = lambda i: {"request": i},
) -> TaskRun[T]:
    """parse(i, text) returns request i's value or raises ValueError; describe(i) names the request
    in its ledger entry (qa_id, round, question...)."""
    run: TaskRun[T] = TaskRun()
    for i, outcome in enumerate(llm.complete_many(requests)):
        if isinstance(outcome, Exception):
            run.values.append(None)
            run.completions.append(None)
            run.failures.append({**describe(i), **failure_record(outcome)})
            continue
        run.completions.append(outcome)
        try:
            if not outcome.reasoning_finished:
                raise ValueError(UNFINISHED)
            run.values.append(parse(i, outcome.text))
        except ValueError as error:
            run.values.append(None)
            failure = {**describe(i), "reason": mask_secrets(str(error)), "unavailable": False, "cache_key": outcome.cache_key,
                       "raw": mask_secrets(outcome.text[:RAW_CHARS])}
            if outcome.reasoning:
                failure["reasoning"] = mask_secrets(outcome.reasoning[:RAW_CHARS])
            run.failures.append(failure)
    return run
