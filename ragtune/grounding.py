"""Supporting spans: for each sentence of an answer, the evidence sentence that shares most of its
content words, with its chunk id and character offsets, so a reader can check every claim."""

from __future__ import annotations

import re
from typing import Any

from ragtune.qa_filter import content_words

SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]*")


def _tokens(text: str) -> set[str]:
    """Content words cut to 5 letters, as the filter's support score matches them (tolerates inflection)."""
    return {w[:5] for w in content_words(text)}


def _sentences(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        if end - start > 1:
            spans.append((start, end))
    return spans


def supporting_spans(answer: str, evidence: list[dict[str, Any]], min_overlap: float = 0.3) -> list[dict[str, Any]]:
    """One span per answer sentence whose best evidence sentence covers >= min_overlap of its
    content words; duplicates merged. Offsets index into that chunk's text."""
    candidates = []
    for chunk in evidence:
        for start, end in _sentences(chunk["text"]):
            candidates.append((chunk["chunk_id"], start, end, _tokens(chunk["text"][start:end])))
    spans: dict[tuple[str, int, int], dict[str, Any]] = {}
    for start, end in _sentences(answer):
        claim = _tokens(answer[start:end])
        if not claim or not candidates:
            continue
        chunk_id, s, e, words = max(candidates, key=lambda c: len(claim & c[3]))
        overlap = len(claim & words) / len(claim)
        if overlap >= min_overlap and (chunk_id, s, e) not in spans:
            text = next(c["text"] for c in evidence if c["chunk_id"] == chunk_id)[s:e]
            spans[(chunk_id, s, e)] = {"chunk_id": chunk_id, "start": s, "end": e, "text": text, "overlap": round(overlap, 3)}
    return list(spans.values())
