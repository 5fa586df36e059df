"""Probability-weighted judging (G-Eval, Liu et al. 2023): a grade is the expected score under the
judge's own distribution over the score tokens, and a pairwise verdict is read from its probabilities
of "A", "B" and "tie", not from the one token it happens to write. A small judge's argmax says the
same digit for everything (the fit issue's 1.5B model answered "no" to all 14 pairs); its
probabilities still order answers, which is what the judge check measures.

Two judges: a local GGUF, scored teacher-forced through llama.cpp (every alternative reply is
scored whole, so multi-token scores such as "10" need no special case), and any OpenAI-compatible
endpoint that returns top_logprobs (read at the score or verdict token of its JSON reply). Every
reading is kept in the content-addressed LLM cache, so a rerun repays nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Protocol

from ragtune.llm.client import LLMCache, public_url
from ragtune.stopping import check_stop

SCORES = tuple(range(1, 11))
VERDICTS = ("A", "B", "tie")
VERDICT_MARGIN = 0.05  # probability lead of A over B (or back) that makes a verdict rather than a tie
GRADE_AT = re.compile(r'"score"\s*:\s*"?$')
VERDICT_AT = re.compile(r'"verdict"\s*:\s*"$')


def expected_score(probabilities: dict[int, float]) -> float:
    """The probability-weighted score over the score tokens."""
    total = sum(probabilities.values())
    if total <= 0:
        raise ValueError("no probability on any score token")
    return sum(score * p for score, p in probabilities.items()) / total


def verdict_of(probabilities: dict[str, float], margin: float) -> str:
    """A or B when its probability exceeds the other's by more than margin, else tie."""
    lead = probabilities.get("A", 0.0) - probabilities.get("B", 0.0)
    return "A" if lead > margin else "B" if lead < -margin else "tie"


class Judge(Protocol):
    model_id: str

    def grade(self, messages: list[dict[str, str]]) -> dict[int, float]: ...

    def verdict(self, messages: list[dict[str, str]]) -> dict[str, float]: ...


class CachedReadings:
    """A judge's readings kept in the LLM cache, keyed by judge, kind and messages."""

    def __init__(self, judge: Judge, cache_dir: Path):
        self.judge, self.cache = judge, LLMCache(cache_dir)
        self.model_id = judge.model_id
        self.identity = getattr(judge, "identity", judge.model_id)  # what the readings depend on beyond the model
        self.paid = 0

    def _read(self, kind: str, messages: list[dict[str, str]], compute) -> dict:
        key = hashlib.sha256(json.dumps({"geval": kind, "judge": self.identity, "messages": messages}, ensure_ascii=False,
                                        sort_keys=True).encode("utf-8")).hexdigest()
        found = self.cache.get(key)
        if found is not None:
            return found["probabilities"]
        check_stop()  # a stop asked for ends the readings between two of them; the ones done stay cached
        probabilities = {str(k): v for k, v in compute(messages).items()}
        self.cache.put(key, {"probabilities": probabilities, "model": self.model_id, "kind": kind})
        self.paid += 1
        return probabilities

    def grade(self, messages: list[dict[str, str]]) -> dict[int, float]:
        return {int(k): v for k, v in self._read("grade", messages, self.judge.grade).items()}

    def verdict(self, messages: list[dict[str, str]]) -> dict[str, float]:
        return self._read("verdict", messages, self.judge.verdict)


class LocalJudge:
    """A GGUF judge (a short local model name or a path) read teacher-forced through llama.cpp."""

    def __init__(self, model: str | None = None, n_threads: int | None = None):
        from ragtune.llm.fingerprint import llamacpp_model_id
        from ragtune.llm.scoring import TokenScorer

        self.scorer = TokenScorer(model, n_ctx=4096, n_threads=n_threads)
        self.model_id = llamacpp_model_id(self.scorer.model_path)

    def grade(self, messages: list[dict[str, str]]) -> dict[int, float]:
        replies = [f'{{"score": {score},' for score in SCORES]
        return dict(zip(SCORES, self.scorer.option_probabilities(messages, replies)))

    def verdict(self, messages: list[dict[str, str]]) -> dict[str, float]:
        replies = [f'{{"verdict": "{verdict}"' for verdict in VERDICTS]
        return dict(zip(VERDICTS, self.scorer.option_probabilities(messages, replies)))


def split_ten(found: dict[int, float], written: str, following: dict[str, float]) -> dict[int, float]:
    """On a tokenizer that writes 10 as "1" then "0", the probability at the score token's place
    counts 10 as 1. Where the judge wrote "1" there, the next position's probability of "0" splits that
    mass into 10 and 1; where it wrote another digit the next position says nothing about "1", and
    its mass stays on 1 (the reading is then low by at most that mass times 9)."""
    if written.strip().strip('"') != "1" or 1 not in found:
        return found
    zero = sum(p for token, p in following.items() if token.strip() == "0")
    if zero <= 0:
        return found
    one = found[1]
    return {**found, 1: one * (1 - zero), 10: found.get(10, 0.0) + one * zero}


class EndpointJudge:
    """An OpenAI-compatible endpoint's judge, read from the top_logprobs at the score (or verdict)
    token of its JSON reply (the key is passed in, read from the environment by the caller)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, json_mode: str = "json_schema", top_logprobs: int = 20,
                 timeout: float = 120.0):
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=2)
        self.model, self.json_mode, self.top_logprobs = model, json_mode, top_logprobs
        self.model_id = f"openai:{model}@{public_url(base_url)}"
        self.identity = f"{self.model_id}|{json_mode}|top{top_logprobs}"

    def _alternatives(self, messages: list[dict[str, str]], at: re.Pattern, schema: dict) -> tuple[dict[str, float], str, dict[str, float]]:
        """(token text -> probability of the alternatives at the first position whose preceding text
        matches `at`, the token written there, the alternatives at the next position); the reply is held
        to the evaluation's JSON schema as the backend would hold it."""
        from ragtune.llm.backends.openai_compatible import chat_arguments
        from ragtune.llm.client import ChatRequest, SamplingParams

        request = ChatRequest(messages, SamplingParams(temperature=0.0, max_tokens=16), schema)
        response = self.client.chat.completions.create(**chat_arguments(self.model, self.json_mode, request), logprobs=True,
                                                       top_logprobs=self.top_logprobs)
        content = (response.choices[0].logprobs and response.choices[0].logprobs.content) or []
        written = ""
        for n, position in enumerate(content):
            if at.search(written) and position.token.strip():
                following = content[n + 1].top_logprobs if n + 1 < len(content) else []
                return ({alt.token: math.exp(alt.logprob) for alt in position.top_logprobs}, position.token,
                        {alt.token: math.exp(alt.logprob) for alt in following})
            written += position.token
        raise ValueError(f"{self.model_id} wrote no score or verdict where one was expected: {written[:80]!r}")

    def grade(self, messages: list[dict[str, str]]) -> dict[int, float]:
        found: dict[int, float] = {}
        from ragtune.evaluate.grading import GRADE_SCHEMA

        alternatives, written, following = self._alternatives(messages, GRADE_AT, GRADE_SCHEMA)
        for token, p in alternatives.items():
            text = token.strip().strip('"')
            if text.isdigit() and int(text) in SCORES:
                found[int(text)] = found.get(int(text), 0.0) + p
        if not found:
            raise ValueError(f"{self.model_id} put no probability on a score token")
        return split_ten(found, written, following)

    def verdict(self, messages: list[dict[str, str]]) -> dict[str, float]:
        found = {v: 0.0 for v in VERDICTS}
        from ragtune.evaluate.grading import PAIRWISE_SCHEMA

        for token, p in self._alternatives(messages, VERDICT_AT, PAIRWISE_SCHEMA)[0].items():
            text = token.strip().strip('"').lower()
            for verdict in VERDICTS:
                if text and verdict.lower().startswith(text):
                    found[verdict] += p
                    break
        total = sum(found.values())
        if total <= 0:
            raise ValueError(f"{self.model_id} put no probability on A, B or tie")
        return {v: p / total for v, p in found.items()}
