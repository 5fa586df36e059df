"""Answer eval questions with the base and the tuned model, and grade each answer 1-10 with an LLM judge.

The judge sees the question, the dataset's reference answer and the evidence passages, so it
grades faithfulness to the source, not style. Totals over N questions are reported as the paper
did (726 vs 592 over 80 questions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ragtune.llm import CachedLLM, ChatRequest, SamplingParams
from ragtune.lora import prompt_text
from ragtune.prompts import render_messages
from ragtune.qa_judge import judgement_json

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "rationale": {"type": "string", "maxLength": 300},
    },
    "required": ["score", "rationale"],
}


@dataclass
class JudgeSettings:
    max_questions: int = 8
    max_new_tokens: int = 96
    temperature: float = 0.0
    seed: int = 0


@torch.no_grad()
def answer_questions(model, tokenizer, questions: list[str], max_new_tokens: int) -> list[str]:
    """Greedy answers, one question at a time (no padding effects on a 135M model)."""
    answers = []
    model.eval()
    for question in questions:
        encoded = tokenizer(prompt_text(tokenizer, question), return_tensors="pt", add_special_tokens=False)
        output = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
        answers.append(tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return answers


@dataclass
class GradeItem:
    question: str
    reference: str
    evidence: str
    answer: str


def grade_many(llm: CachedLLM, items: list[GradeItem], settings: JudgeSettings) -> list[dict[str, Any]]:
    """Every answer graded 1-10 in one batch (vLLM batches it, the OpenAI backend runs it
    concurrently, all through the cache). An unusable judgement gets score None and a reason."""
    sampling = SamplingParams(temperature=settings.temperature, max_tokens=160, seed=settings.seed, repeat_penalty=1.1)
    requests = [
        ChatRequest(
            render_messages("judge", question=item.question, reference_answer=item.reference,
                            evidence=item.evidence or "(none)", answer=item.answer or "(empty)"),
            sampling, JUDGE_SCHEMA,
        )
        for item in items
    ]
    grades = []
    for outcome in llm.complete_many(requests):
        if isinstance(outcome, Exception):
            grades.append({"score": None, "rationale": f"judge call failed: {type(outcome).__name__}: {outcome}", "cache_key": None})
            continue
        try:
            data = judgement_json(outcome.text)
            grades.append({"score": data["score"], "rationale": str(data.get("rationale", "")), "cache_key": outcome.cache_key})
        except ValueError as error:
            grades.append({"score": None, "rationale": str(error), "cache_key": outcome.cache_key})
    return grades


def summarize(rows: list[dict[str, Any]], models: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {"questions": len(rows), "models": {}}
    for name in models:
        scores = [r[name]["score"] for r in rows if r[name]["score"] is not None]
        summary["models"][name] = {
            "total": sum(scores),
            "graded": len(scores),
            "mean": round(sum(scores) / len(scores), 3) if scores else None,
            "max_total": 10 * len(rows),
        }
    return summary
