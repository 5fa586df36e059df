"""A multi-hop row's hops: what each records, how a row is read per hop, and the checks of the whole.

A multi-hop row (a style that joins chapters, ragtune.generate.multi_hop) asks one question over two
chapters. Each hop is a row of its own inside it: its chapter, chunk and section, its question, its answer
and the spans it cites. Every row rule and the groundedness gate read the hops one by one as such rows
(hop_rows), each against its own chunk only: a hop that borrows a claim from the other chapter is
unsupported. hops_problem checks what holds the row together.
"""

from __future__ import annotations

from typing import Any

from ragtune.tasks import DEFAULT_TASK, task_style
from ragtune.text import CJK_RUN, content_terms

# Words a condition's name shares with every other: a hop must speak of what makes the name its own.
GENERIC_TERMS = frozenset(t for _, t in content_terms("disorder disorders related condition conditions other"))


def hop(chunk: dict[str, Any], question: str, answer: str, cites: list[dict[str, Any]]) -> dict[str, Any]:
    """One hop's record: where its answer is from (provenance), what it asks and answers, the spans it cites."""
    return {"chapter_key": chunk["chapter_key"], "chapter_title": chunk.get("chapter_title", ""), "chunk_id": chunk["chunk_id"],
            "section_path": chunk.get("section_path", []), "question": question, "answer": answer, "cites": cites}


def joined_answer(answers: list[str], language: str) -> str:
    """The row's answer: each hop's, in the order its question asks them."""
    return ("" if language == "zh" else " ").join(a.strip() for a in answers)


def speaks_of(text: str, condition: str) -> bool:
    """Whether a text speaks of a condition: every term that makes its name its own ('bipolar' of 'Bipolar
    disorder'), the whole name in Chinese."""
    if CJK_RUN.search(condition):
        return condition in text
    distinct = {t for _, t in content_terms(condition)} - GENERIC_TERMS
    return bool(distinct) and distinct <= {t for _, t in content_terms(text)}


def hop_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The row read per hop, each hop a row of its own (its question, answer, chapter, chunk, evidence and
    cites); [] for a row without hops."""
    parts = []
    for h in row.get("hops") or []:
        part = {k: v for k, v in row.items() if k not in ("hops", "joins")}
        part.update({"task": DEFAULT_TASK, "question": h["question"], "answer": h["answer"], "chapter_key": h["chapter_key"],
                     "chapter_title": h["chapter_title"], "focus": (h["section_path"] or [""])[-1], "section_path": h["section_path"],
                     "evidence": [e for e in row.get("evidence") or [] if e["chunk_id"] == h["chunk_id"]], "chunk_ids": [h["chunk_id"]],
                     "supporting_spans": h["cites"]})
        parts.append(part)
    return parts


def hops_problem(row: dict[str, Any]) -> str | None:
    """What keeps a multi-hop row from being one question over two chapters, each hop answered by its own
    span, or None: two hops or more from two chapters or more; each citing a span of its own chunk, which the
    row's evidence holds; the row's answer is the hops' answers joined, and its question asks for what each
    hop's asks; the other chapter's hop speaks of the condition the bridge names (`joins`)."""
    hops = row.get("hops") or []
    if not task_style(row.get("task")).joins_chapters:
        return "a row of a single-chapter style has hops" if hops else None
    if len(hops) < 2:
        return f"a multi-hop row needs two hops or more; it has {len(hops)}"
    if len({h["chapter_key"] for h in hops}) < 2:
        return f"every hop is from one chapter ({hops[0]['chapter_key']}): nothing is joined"
    shown = {e["chunk_id"] for e in row.get("evidence") or []}
    for n, h in enumerate(hops, 1):
        if not h.get("cites"):
            return f"hop {n} ({h['chapter_key']}) cites no span"
        if any(c["chunk_id"] != h["chunk_id"] for c in h["cites"]):
            return f"hop {n} ({h['chapter_key']}) cites a span of another chunk than its own"
        if h["chunk_id"] not in shown:
            return f"hop {n}'s chunk is not in the row's evidence"
    if row["answer"].strip() != joined_answer([h["answer"] for h in hops], row.get("language", "en")):
        return "the row's answer is not its hops' answers joined"
    asked = {t for _, t in content_terms(row["question"])}
    for n, h in enumerate(hops, 1):
        missing = [surface for surface, term in content_terms(h["question"]) if term not in asked]
        if missing:
            return f"the row's question does not ask hop {n}'s ({', '.join(missing[:5])} missing)"
    joins = row.get("joins") or {}
    if joins.get("condition") and not speaks_of(hops[0]["answer"], joins["condition"]):
        return f"hop 1 ({hops[0]['chapter_key']}) does not speak of {joins['condition']!r}, the condition the bridge names"
    return None
