"""RAG-grounded QA generation for one chapter, in the paper's style.

Each call substitutes the chapter title into the template, retrieves the top-k chunks from the
whole collection's index for a chapter/section query, and asks for schema-shaped JSON.
Every pair keeps the chunks it was grounded on; every failed call goes to a ledger.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ragtune.document import Chapter
from ragtune.embedding import Embedder
from ragtune.llm import CachedLLM, SamplingParams
from ragtune.prompts import render_messages, template_sha256
from ragtune.vector_index import ChunkIndex, Hit

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
class GenerationSettings:
    calls_per_chapter: int = 6
    pairs_per_call: int = 1
    top_k: int = 3
    temperature: float = 0.3
    repeat_penalty: float = 1.3
    max_tokens: int = 300
    seed: int = 0
    retries: int = 1  # new seed per retry when the output is malformed


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


def format_passages(hits: list[Hit]) -> str:
    return "\n\n".join(
        f"[{n}] ({' > '.join(h.chunk.section_path)}, page {', '.join(map(str, h.chunk.pages))}) {h.chunk.text}"
        for n, h in enumerate(hits, start=1)
    )


def generate_chapter_qa(
    chapter: Chapter,
    index: ChunkIndex,
    embedder: Embedder,
    llm: CachedLLM,
    settings: GenerationSettings,
) -> ChapterGeneration:
    result = ChapterGeneration()
    schema = qa_schema(settings.pairs_per_call)
    template_hash = template_sha256(TEMPLATE)
    focuses = focus_queries(chapter, settings.calls_per_chapter)
    query_vectors = embedder.encode([f"{chapter.title}: {focus}" for focus in focuses])
    for round_number, (focus, vector) in enumerate(zip(focuses, query_vectors)):
        hits = index.search(vector, settings.top_k)
        messages = render_messages(
            TEMPLATE,
            passages=format_passages(hits),
            chapter_title=chapter.title,
            n_pairs=settings.pairs_per_call,
            focus=focus,
        )
        item = {"chapter_key": chapter.chapter_key, "round": round_number, "focus": focus}
        for attempt in range(settings.retries + 1):
            sampling = SamplingParams(
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
                seed=settings.seed + round_number + 1000 * attempt,
                repeat_penalty=settings.repeat_penalty,
            )
            try:
                completion = llm.complete(messages, sampling, schema)
            except Exception as error:  # a backend failure is recorded, the other rounds go on
                result.failures.append({**item, "attempt": attempt, "reason": f"llm error: {type(error).__name__}: {error}"})
                break
            result.cache_hits += int(completion.cached)
            result.llm_calls += int(not completion.cached)
            result.completion_tokens += completion.completion_tokens
            try:
                pairs = _parse_pairs(completion.text)
            except ValueError as error:
                result.failures.append(
                    {**item, "attempt": attempt, "reason": str(error), "cache_key": completion.cache_key, "raw": completion.text[:2000]}
                )
                continue
            for pair in pairs:
                result.qa_pairs.append(_qa_row(chapter, pair, hits, completion, template_hash, round_number, focus))
            break
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


def _qa_row(chapter, pair, hits, completion, template_hash, round_number, focus) -> dict[str, Any]:
    qa_id = hashlib.sha256(f"{chapter.chapter_key}\n{pair['question']}\n{pair['answer']}".encode()).hexdigest()[:16]
    return {
        "qa_id": qa_id,
        "question": pair["question"],
        "answer": pair["answer"],
        "chapter_key": chapter.chapter_key,
        "chapter_title": chapter.title,
        "focus": focus,
        "evidence": [
            {
                "chunk_id": h.chunk.chunk_id,
                "doc_id": h.chunk.doc_id,
                "chapter_key": h.chunk.chapter_key,
                "section_path": h.chunk.section_path,
                "pages": h.chunk.pages,
                "score": round(h.score, 4),
                "text": h.chunk.text,
            }
            for h in hits
        ],
        "chunk_ids": [h.chunk.chunk_id for h in hits],
        "generation": {
            "model": completion.model,
            "cache_key": completion.cache_key,
            "template": TEMPLATE,
            "template_sha256": template_hash,
            "round": round_number,
        },
    }
