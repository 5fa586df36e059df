"""RAG-grounded QA generation for one chapter, in the paper's style.

Planning retrieves, per round, the top-k chunks from the whole collection's index for a
"chapter title: section" query; each generation call substitutes the chapter title into the
template with that round's evidence and asks for schema-shaped JSON.
Every pair keeps the chunks it was grounded on; every failed call goes to a ledger.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ragtune.document import Chapter
from ragtune.embedding import Embedder
from ragtune.llm import CachedLLM, ChatRequest, SamplingParams
from ragtune.prompts import render_messages, template_sha256
from ragtune.vector_index import ChunkIndex

TEMPLATE = "qa_generation"


def qa_schema(n_pairs: int) -> dict[str, Any]:
    # No maxLength: llama.cpp expands it into a grammar that slows sampling ~2x; max_tokens bounds length.
    # minLength stops the empty strings small models emit; cheap, unlike maxLength.
    question = {"type": "string", "minLength": 15}
    answer = {"type": "string", "minLength": 30}
    pair = {"type": "object", "properties": {"question": question, "answer": answer}, "required": ["question", "answer"]}
    return {
        "type": "object",
        "properties": {"pairs": {"type": "array", "items": pair, "minItems": 1, "maxItems": n_pairs}},
        "required": ["pairs"],
    }


@dataclass
class EvidenceSettings:
    rounds: int = 6  # generation calls per chapter, each with its own focus and evidence
    top_k: int = 3


@dataclass
class GenerationSettings:
    pairs_per_call: int = 1
    temperature: float = 0.3
    repeat_penalty: float = 1.3
    max_tokens: int = 300
    seed: int = 0
    retries: int = 1  # new seed per retry when the output is malformed


PROMPT_FIELDS = ("chunk_id", "section_path", "pages", "text")  # what format_passages puts into a prompt


@dataclass
class EvidenceRound:
    focus: str
    evidence: list[dict[str, Any]]  # chunk rows (chunk_id, doc_id, chapter_key, section_path, pages, text) + score


@dataclass
class EvidencePlan:
    """What each generation call of a chapter will see. Planned apart from generation so that a
    rebuilt index changes only the chapters whose retrieved evidence changed (the plan's hash)."""

    chapter_key: str
    chapter_title: str
    rounds: list[EvidenceRound]

    def content_sha256(self) -> str:
        """Hash of what the prompts contain: titles, focuses and each passage's text, section and
        pages. Not the document version (doc_id): an unchanged passage of an edited book is the same."""
        seen = [[r.focus, [[e[k] for k in PROMPT_FIELDS] for e in r.evidence]] for r in self.rounds]
        payload = json.dumps([self.chapter_key, self.chapter_title, seen], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvidencePlan":
        return cls(data["chapter_key"], data["chapter_title"], [EvidenceRound(**r) for r in data["rounds"]])


@dataclass
class ChapterGeneration:
    qa_pairs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    llm_calls: int = 0
    cache_hits: int = 0
    completion_tokens: int = 0


def focus_queries(chapter: Chapter, count: int) -> list[str]:
    """Round-robin over the chapter's sections so successive calls cover different parts."""
    titles = [s.title for s in chapter.sections if s.title != chapter.title] or [chapter.title]
    return [titles[i % len(titles)] for i in range(count)]


def plan_chapter_evidence(chapter: Chapter, index: ChunkIndex, embedder: Embedder, settings: EvidenceSettings) -> EvidencePlan:
    """Top-k chunks from the whole collection for each round's "chapter title: section" query."""
    focuses = focus_queries(chapter, settings.rounds)
    query_vectors = embedder.encode([f"{chapter.title}: {focus}" for focus in focuses])
    rounds = [
        EvidenceRound(focus, [{**h.chunk.to_dict(), "score": round(h.score, 4)} for h in index.search(vector, settings.top_k)])
        for focus, vector in zip(focuses, query_vectors)
    ]
    return EvidencePlan(chapter.chapter_key, chapter.title, rounds)


def format_passages(evidence: list[dict[str, Any]]) -> str:
    return "\n\n".join(
        f"[{n}] ({' > '.join(e['section_path'])}, page {', '.join(map(str, e['pages']))}) {e['text']}"
        for n, e in enumerate(evidence, start=1)
    )


def generate_chapter_qa(plan: EvidencePlan, llm: CachedLLM, settings: GenerationSettings) -> ChapterGeneration:
    """Every planned round goes to the backend in one batch, schema-constrained; rounds whose output
    is malformed are retried together with a new seed, then recorded in the failure ledger with the
    raw text. A backend error is recorded at once (the backend already retried it)."""
    result = ChapterGeneration()
    schema = qa_schema(settings.pairs_per_call)
    template_hash = template_sha256(TEMPLATE)
    messages = [
        render_messages(
            TEMPLATE,
            passages=format_passages(planned.evidence),
            chapter_title=plan.chapter_title,
            n_pairs=settings.pairs_per_call,
            focus=planned.focus,
        )
        for planned in plan.rounds
    ]
    rows: list[tuple[int, dict[str, Any]]] = []
    pending = list(range(len(plan.rounds)))
    for attempt in range(settings.retries + 1):
        requests = [
            ChatRequest(
                messages[n],
                SamplingParams(
                    temperature=settings.temperature,
                    max_tokens=settings.max_tokens,
                    seed=settings.seed + n + 1000 * attempt,
                    repeat_penalty=settings.repeat_penalty,
                ),
                schema,
            )
            for n in pending
        ]
        retry = []
        for n, outcome in zip(pending, llm.complete_many(requests)):
            item = {"chapter_key": plan.chapter_key, "round": n, "focus": plan.rounds[n].focus, "attempt": attempt}
            if isinstance(outcome, Exception):
                result.failures.append({**item, "reason": f"llm error: {type(outcome).__name__}: {outcome}"})
                continue
            result.cache_hits += int(outcome.cached)
            result.llm_calls += int(not outcome.cached)
            result.completion_tokens += outcome.completion_tokens
            try:
                pairs = _parse_pairs(outcome.text)
            except ValueError as error:
                result.failures.append({**item, "reason": str(error), "cache_key": outcome.cache_key, "raw": outcome.text[:2000]})
                retry.append(n)
                continue
            rows.extend((n, _qa_row(plan, pair, plan.rounds[n], outcome, template_hash, n)) for pair in pairs)
        pending = retry
    result.qa_pairs = [row for _, row in sorted(rows, key=lambda item: item[0])]
    return result


def _parse_pairs(text: str) -> list[dict[str, str]]:
    try:
        data = json.loads(text, strict=False)  # small models put raw newlines inside strings
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON from the model: {error}") from error
    pairs = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, list):
        raise ValueError("model output has no 'pairs' list")
    clean = [
        {"question": str(p["question"]).strip(), "answer": str(p["answer"]).strip()}
        for p in pairs
        if isinstance(p, dict) and "question" in p and "answer" in p
    ]
    if not clean:
        raise ValueError("model output has no complete question/answer pair")
    return clean


def _qa_row(plan: EvidencePlan, pair, planned: EvidenceRound, completion, template_hash, round_number) -> dict[str, Any]:
    qa_id = hashlib.sha256(f"{plan.chapter_key}\n{pair['question']}\n{pair['answer']}".encode()).hexdigest()[:16]
    return {
        "qa_id": qa_id,
        "question": pair["question"],
        "answer": pair["answer"],
        "chapter_key": plan.chapter_key,
        "chapter_title": plan.chapter_title,
        "focus": planned.focus,
        "evidence": [{k: v for k, v in e.items() if k != "chapter_title"} for e in planned.evidence],
        "chunk_ids": [e["chunk_id"] for e in planned.evidence],
        "generation": {
            "model": completion.model,
            "cache_key": completion.cache_key,
            "template": TEMPLATE,
            "template_sha256": template_hash,
            "round": round_number,
        },
    }
