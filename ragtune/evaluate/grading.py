"""Evaluation judging: answers from the base, the tuned and an optional reference model, graded
1-10 against the reference answer and evidence (MT-Bench single-answer grading, as in the paper),
and tuned vs base compared pairwise in both orders so the judge's position bias cancels.

Every judge call goes through the cache in one batch per kind (vLLM batches it, the OpenAI backend
runs it concurrently), so a rerun repays nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ragtune.chat import chat_messages, prompt_text
from ragtune.curate.grounded_judge import judgement_json
from ragtune.evaluate.geval import VERDICT_MARGIN, expected_score, verdict_of
from ragtune.llm.client import JUDGE_REPEAT_PENALTY, CachedLLM, ChatRequest, SamplingParams
from ragtune.llm.prompts import fenced, render_messages
from ragtune.llm.tasks import run_tasks

GRADE_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "rationale": {"type": "string", "maxLength": 300},
    },
    "required": ["score", "rationale"],
}
VERDICTS = ("A", "B", "tie")
PAIRWISE_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": list(VERDICTS)}, "rationale": {"type": "string", "maxLength": 300}},
    "required": ["verdict", "rationale"],
}
REFERENCE_SYSTEM = "You are a psychiatrist. Answer the clinician's question accurately and concisely, in one to three sentences."


@dataclass
class JudgeSettings:
    max_questions: int = 8  # questions taken from the frozen eval set (0 = all)
    max_new_tokens: int = 96
    answer_batch_size: int = 8
    temperature: float = 0.0
    judge_max_tokens: int = 160
    seed: int = 0
    judge_repeat_penalty: float = JUDGE_REPEAT_PENALTY
    with_reference: bool = False  # also answer with the reference_llm resource (e.g. GPT-3.5 via openai)
    bootstrap_resamples: int = 2000


@dataclass
class GradeItem:
    question: str
    reference: str
    evidence: str
    answer: str


@dataclass
class PairItem:
    question: str
    reference: str
    evidence: str
    tuned: str
    base: str


def _sampling(settings: JudgeSettings) -> SamplingParams:
    return SamplingParams(temperature=settings.temperature, max_tokens=settings.judge_max_tokens, seed=settings.seed, repeat_penalty=settings.judge_repeat_penalty)


@torch.no_grad()
def answer_questions(model, tokenizer, questions: list[str], max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy answers in left-padded batches (model.generate batches on the GPU)."""
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    answers: list[str] = []
    try:
        for start in range(0, len(questions), batch_size):
            prompts = [prompt_text(tokenizer, q) for q in questions[start : start + batch_size]]
            encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id)
            width = encoded["input_ids"].shape[1]
            answers += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]
    finally:
        tokenizer.padding_side = side
    return answers


def _answer_text(i: int, text: str) -> str:
    if not text.strip():
        raise ValueError("empty answer")
    return text.strip()


def reference_answers(llm: CachedLLM, questions: list[str], settings: JudgeSettings) -> tuple[list[str | None], list[dict[str, Any]]]:
    """Closed-book answers from the reference model (any backend), like the tuned model's, and the
    failures (None in the answers: that question's reference answer is not graded)."""
    sampling = SamplingParams(temperature=0.0, max_tokens=settings.max_new_tokens * 2, seed=settings.seed)
    requests = [ChatRequest([{"role": "system", "content": REFERENCE_SYSTEM}, *chat_messages(q)], sampling) for q in questions]
    run = run_tasks(llm, requests, _answer_text, lambda i: {"task": "reference_answer", "question": questions[i]})
    return run.values, run.failures


def _grade(i: int, text: str) -> dict[str, Any]:
    data = judgement_json(text)
    return {"score": data["score"], "rationale": str(data.get("rationale", ""))}


def grade_messages(item: GradeItem) -> list[dict[str, str]]:
    return render_messages("judge", question=fenced(item.question), reference_answer=fenced(item.reference),
                           evidence=fenced(item.evidence or "(none)"), answer=fenced(item.answer or "(empty)"))


def pairwise_messages(item: PairItem, first: str, second: str) -> list[dict[str, str]]:
    return render_messages("judge_pairwise", question=fenced(item.question), reference_answer=fenced(item.reference),
                           evidence=fenced(item.evidence or "(none)"), answer_a=fenced(first or "(empty)"), answer_b=fenced(second or "(empty)"))


def weighted_grades(readings, items: list[GradeItem], grades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each grade's score replaced by the judge's probability-weighted score over 1-10 (G-Eval); the
    digit it wrote stays as argmax_score. A reading that fails (any error: an endpoint without
    logprobs, a context overflow) keeps the written score and says why."""
    weighted = []
    for item, grade in zip(items, grades):
        try:
            score = round(expected_score(readings.grade(grade_messages(item))), 3)
        except Exception as error:  # noqa: BLE001 - the written grade stands, the reason is kept on the row
            weighted.append({**grade, "argmax_score": grade["score"], "weighted": False, "weighting_error": f"{type(error).__name__}: {error}"[:200]})
            continue
        weighted.append({**grade, "score": score, "argmax_score": grade["score"], "weighted": True})
    return weighted


def weighted_verdicts(readings, items: list[PairItem], pairs: list[dict[str, Any]], margin: float = VERDICT_MARGIN) -> list[dict[str, Any]]:
    """Each question's two orders read from the judge's probabilities of A, B and tie (the rule the
    judge check measured, bench/judge.py), the written verdicts kept beside them; a failed reading
    keeps the written ones."""
    weighted = []
    for item, pair in zip(items, pairs):
        try:
            tuned_first = verdict_of(readings.verdict(pairwise_messages(item, item.tuned, item.base)), margin)
            base_first = verdict_of(readings.verdict(pairwise_messages(item, item.base, item.tuned)), margin)
        except Exception as error:  # noqa: BLE001
            weighted.append({**pair, "weighted": False, "weighting_error": f"{type(error).__name__}: {error}"[:200]})
            continue
        weighted.append({"tuned_first": tuned_first, "base_first": base_first, "outcome": combine_orders(tuned_first, base_first),
                         "written": {k: pair[k] for k in ("tuned_first", "base_first", "outcome")}, "weighted": True})
    return weighted


def grade_many(llm: CachedLLM, items: list[GradeItem], settings: JudgeSettings,
               describe: Callable[[int], dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every answer graded 1-10 in one batch, and the failures (a failed grade keeps score None and
    says why in its rationale; the failure, with the judge's raw output, goes to the ledger)."""
    requests = [ChatRequest(grade_messages(item), _sampling(settings), GRADE_SCHEMA) for item in items]
    run = run_tasks(llm, requests, _grade, describe or (lambda i: {"task": "grade", "question": items[i].question}))
    failed = iter(run.failures)
    grades = []
    for value, completion in zip(run.values, run.completions):
        cache_key = completion.cache_key if completion is not None else None
        grades.append({**value, "cache_key": cache_key} if value is not None
                      else {"score": None, "rationale": next(failed)["reason"], "cache_key": cache_key})
    return grades, run.failures


def _verdict(i: int, text: str) -> str:
    """A, B or tie; ValueError for anything else."""
    try:
        verdict = str(json.loads(text, strict=False)["verdict"]).strip()
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"unparseable pairwise verdict: {error}") from error
    if verdict.lower() not in ("a", "b", "tie"):
        raise ValueError(f"pairwise verdict {verdict[:40]!r} is not A, B or tie")
    return {"a": "A", "b": "B", "tie": "tie"}[verdict.lower()]


def combine_orders(tuned_first: str | None, base_first: str | None) -> str | None:
    """Tuned's outcome from the two orders: each order votes +1 (tuned better), 0 (tie) or -1.
    A positive sum wins, a negative one loses, zero (two ties, or one vote each way, which is
    position bias) ties. None when either judgement is unusable."""
    if tuned_first is None or base_first is None:
        return None
    vote = {"A": 1, "tie": 0, "B": -1}[tuned_first] - {"A": 1, "tie": 0, "B": -1}[base_first]
    return "win" if vote > 0 else "loss" if vote < 0 else "tie"


def compare_pairwise(llm: CachedLLM, items: list[PairItem], settings: JudgeSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tuned vs base per question, asked twice (tuned as A, then base as A) in one batch, and the
    failures with the judge's raw output (that order's verdict is None)."""

    def request(item: PairItem, first: str, second: str) -> ChatRequest:
        return ChatRequest(pairwise_messages(item, first, second), _sampling(settings), PAIRWISE_SCHEMA)

    requests = [request(i, i.tuned, i.base) for i in items] + [request(i, i.base, i.tuned) for i in items]
    count = len(items)

    def describe(n: int) -> dict[str, Any]:
        return {"task": "pairwise", "order": "tuned_first" if n < count else "base_first", "question": items[n % count].question}

    run = run_tasks(llm, requests, _verdict, describe)
    verdicts = run.values
    results = []
    for n in range(len(items)):
        tuned_first, base_first = verdicts[n], verdicts[len(items) + n]
        results.append({"tuned_first": tuned_first, "base_first": base_first, "outcome": combine_orders(tuned_first, base_first)})
    return results, run.failures
