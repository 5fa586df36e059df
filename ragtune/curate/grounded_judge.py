"""The grounded judge of the curation step: an LLM sees question, answer and the evidence the pair
was written from, and scores it 1-10 on a rubric (faithful, relevant, clear, useful) with a
one-line rationale (the keep threshold, default 7, applies when the dataset is assembled). All of
a chapter's pairs go to the backend as one batch, through the cache, so a rerun or a resumed crash
repays nothing. The embedded 135M model is a weak judge: its
scores are labelled as such, and the deterministic groundedness score filters beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ragtune.llm.client import JUDGE_REPEAT_PENALTY, CachedLLM, ChatRequest, SamplingParams
from ragtune.llm.prompts import fenced, format_passages, inline_title, render_messages, template_sha256
from ragtune.llm.tasks import run_tasks

RUBRIC = ("faithful", "relevant", "clear", "useful")
TEMPLATE = "qa_judge"
_SCORE = {"type": "integer", "minimum": 1, "maximum": 10}
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {**{name: _SCORE for name in RUBRIC}, "score": _SCORE, "rationale": {"type": "string", "minLength": 8}},
    "required": [*RUBRIC, "score", "rationale"],
}


@dataclass
class QAJudgeSettings:
    temperature: float = 0.0
    max_tokens: int = 120
    seed: int = 0
    repeat_penalty: float = JUDGE_REPEAT_PENALTY


def judge_request(row: dict[str, Any], chapter_title: str, settings: QAJudgeSettings) -> ChatRequest:
    answer = row["answer"]
    if row.get("turns"):  # a dialogue is judged as a whole
        answer = "\n".join(f"{t['role']}: {t['content']}" for t in row["turns"])
    messages = render_messages(
        TEMPLATE, passages=format_passages(row.get("evidence", [])), chapter_title=inline_title(chapter_title),
        question=fenced(row["question"]), answer=fenced(answer),
    )
    sampling = SamplingParams(temperature=settings.temperature, max_tokens=settings.max_tokens, seed=settings.seed, repeat_penalty=settings.repeat_penalty)
    return ChatRequest(messages, sampling, JUDGE_SCHEMA)


def clipped_score(value: Any) -> int:
    """A judge's score as an int in 1-10 (small models step outside the schema's range)."""
    return max(1, min(10, int(value)))


def judgement_json(text: str) -> dict[str, Any]:
    """A judge's JSON output with a usable overall score under "score"; ValueError otherwise."""
    try:
        data = json.loads(text, strict=False)
        data["score"] = clipped_score(data["score"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"unparseable judge output: {error}") from error
    return data


def parse_judgement(text: str) -> dict[str, Any]:
    """The overall and rubric scores clipped to 1-10; raises ValueError without an overall score."""
    data = judgement_json(text)
    rubric = {}
    for name in RUBRIC:
        try:
            rubric[name] = clipped_score(data[name])
        except (ValueError, KeyError, TypeError):
            rubric[name] = None
    return {"judge_score": data["score"], "judge_rubric": rubric, "judge_rationale": str(data.get("rationale", "")).strip()[:300]}


def judge_rows(rows: list[dict[str, Any]], chapter_title: str, llm: CachedLLM, settings: QAJudgeSettings, weak: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows with judge_score, judge_rubric, judge_rationale, judge_model, judge_weak; failures).
    A row whose judgement fails (backend error or unparseable output) keeps judge_score None and
    is recorded in the failures; it is not kept by a score threshold."""
    run = run_tasks(llm, [judge_request(row, chapter_title, settings) for row in rows], lambda i, text: parse_judgement(text),
                    lambda i: {"qa_id": rows[i]["qa_id"]})
    provenance = {"judge_model": llm.model_id, "judge_weak": weak, "judge_template_sha256": template_sha256(TEMPLATE)[:12]}
    unjudged = {"judge_score": None, "judge_rubric": None, "judge_rationale": None}
    judged = [{**row, **(verdict or unjudged), **provenance} for row, verdict in zip(rows, run.values)]
    return judged, run.failures
