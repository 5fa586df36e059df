"""The groundedness score curation gates and ranks rows by: how much of each answer sentence the
evidence supports, lexically or by embeddings (informative only, since on-topic but unsupported text
scores high by embeddings; the hard gate is ragtune.generate.grounding's, applied when rows are filtered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragtune.generate.grounding import sentence_texts
from ragtune.text import support, words


@dataclass
class GroundednessSettings:
    # A sentence's embedding support is its best cosine with an evidence sentence, mapped linearly
    # from `unrelated_cosine` (0) to `paraphrase_cosine` (1); MiniLM puts unrelated sentences of one
    # domain near 0.3 and paraphrases above 0.8.
    unrelated_cosine: float = 0.3
    paraphrase_cosine: float = 0.8


def groundedness_scores(rows: list[dict[str, Any]], embedder, settings: GroundednessSettings) -> list[dict[str, Any]]:
    """For each row: how much of its answer the evidence supports, sentence by sentence.

    A sentence's support is the larger of its lexical support (share of its content words found in
    the evidence) and its embedding support (best cosine with an evidence sentence, rescaled), so
    a faithful paraphrase and a verbatim copy both count, and a fluent invention counts for neither.
    The row's score weighs each sentence by its number of words. Deterministic: no LLM involved, so
    it filters even when the judge is a weak model. One batch of embeddings for all rows."""
    answer_sentences = [sentence_texts(row["answer"]) for row in rows]
    chunk_sentences: dict[str, list[str]] = {}
    for row in rows:
        for chunk in row.get("evidence", []):
            chunk_sentences.setdefault(chunk["chunk_id"], sentence_texts(chunk["text"]))
    flat_answers = [s for sentences in answer_sentences for s in sentences]
    flat_evidence = [s for sentences in chunk_sentences.values() for s in sentences]
    vectors = embedder.encode(flat_answers + flat_evidence)
    answer_vectors, evidence_vectors = vectors[: len(flat_answers)], vectors[len(flat_answers) :]
    where, position = {}, 0
    for chunk_id, sentences in chunk_sentences.items():
        where[chunk_id] = (position, position + len(sentences))
        position += len(sentences)
    scale = settings.paraphrase_cosine - settings.unrelated_cosine
    scores, cursor = [], 0
    for row, sentences in zip(rows, answer_sentences):
        evidence_rows = [i for c in row.get("evidence", []) for i in range(*where[c["chunk_id"]])]
        evidence_text = "\n".join(c["text"] for c in row.get("evidence", []))
        details, weighted, total = [], 0.0, 0
        for k, sentence in enumerate(sentences):
            lexical = support(sentence, evidence_text)
            cosine = float((evidence_vectors[evidence_rows] @ answer_vectors[cursor + k]).max()) if evidence_rows else 0.0
            semantic = min(1.0, max(0.0, (cosine - settings.unrelated_cosine) / scale))
            weight = max(1, len(words(sentence)))
            weighted += weight * max(lexical, semantic)
            total += weight
            details.append({"sentence": sentence, "lexical": round(lexical, 3), "cosine": round(cosine, 3)})
        cursor += len(sentences)
        scores.append({"groundedness": round(weighted / total, 3) if total else 0.0, "sentences": details})
    return scores
