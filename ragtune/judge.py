"""Answer eval questions with the base and the tuned model, and grade each answer 1-10 with an LLM judge.

The judge sees the question, the dataset's reference answer and the evidence passages, so it
grades faithfulness to the source, not style. Totals over N questions are reported as the paper
did (726 vs 592 over 80 questions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from ragtune.llm import CachedLLM, SamplingParams
from ragtune.lora import prompt_text
from ragtune.prompts import render_messages

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


def grade(llm: CachedLLM, question: str, reference: str, evidence: str, answer: str, settings: JudgeSettings) -> dict[str, Any]:
    messages = render_messages(
        "judge", question=question, reference_answer=reference, evidence=evidence or "(none)", answer=answer or "(empty)"
    )
    completion = llm.complete(
        messages, SamplingParams(temperature=settings.temperature, max_tokens=160, seed=settings.seed, repeat_penalty=1.1), JUDGE_SCHEMA
    )
    try:
        data = json.loads(completion.text, strict=False)
        score = int(data["score"])
        rationale = str(data.get("rationale", ""))
    except (ValueError, KeyError, TypeError) as error:
        return {"score": None, "rationale": f"unparseable judge output: {error}", "cache_key": completion.cache_key}
    return {"score": max(1, min(10, score)), "rationale": rationale, "cache_key": completion.cache_key}


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
