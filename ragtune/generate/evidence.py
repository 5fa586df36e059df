"""Evidence plans: for each generation round of a chapter, its task, its focus section and the
chunks it is grounded on: one chunk of that section and its neighbours in the whole collection.

Planning is apart from generation so that a rebuilt index changes only the chapters whose
retrieved evidence changed (the plan's hash is the data version), and so that a whole
partition's prompts are known before the first call (one batch for vLLM). More rounds are
planned than a quota needs at the expected keep rate; generation draws top-up rounds from them.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

from ragtune.index.embedding import Embedder
from ragtune.index.vector_index import ChunkIndex, Hit
from ragtune.generate.multi_hop import bridge_evidence
from ragtune.ingest.document import Chapter
from ragtune.llm.prompts import detect_language
from ragtune.tasks import TASK_STYLES, default_task_mix, task_style

# What a round carries of each chunk into prompts (section path, text) and rows (ids, pages).
ROUND_FIELDS = ("chunk_id", "doc_id", "section_path", "pages", "text", "whole_section")


@dataclass
class EvidenceSettings:
    rounds: int = 240  # rounds planned per chapter; generation uses what its quota needs
    top_k: int = 3
    # Consecutive rounds of different tasks that share one evidence set: their prompts differ only
    # after the passages, so the engine's prefix cache reads the passages once for all of them.
    rounds_per_evidence: int = 2
    task_mix: dict[str, int] = field(default_factory=default_task_mix)  # relative weights; 0 turns a task off

    def __post_init__(self) -> None:
        for name in ("rounds", "top_k", "rounds_per_evidence"):
            if getattr(self, name) < 1:
                raise ValueError(f"chapter_evidence {name} must be at least 1, not {getattr(self, name)}")


@dataclass
class EvidenceRound:
    task: str
    focus: str  # the section this round is about
    evidence: list[dict[str, Any]]  # chunk rows (chunk_id, doc_id, chapter_key, section_path, pages, text) + score


@dataclass
class EvidencePlan:
    chapter_key: str
    chapter_title: str
    language: str
    rounds: list[EvidenceRound]

    def content_sha256(self) -> str:
        """Hash of what the rounds carry into prompts and rows: titles, tasks, focuses and each
        passage's text, section, ids and pages. A page shift changes it (the rows must show the new
        pages) while no prompt changes, so the rerun it triggers is answered from the cache."""
        seen = [[r.task, r.focus, [[e.get(k) for k in ROUND_FIELDS] for e in r.evidence]] for r in self.rounds]
        payload = json.dumps([self.chapter_key, self.chapter_title, self.language, seen], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def chapters_joined(self) -> list[str]:
        """The other chapters this chapter's multi-hop rounds join (none: its lines name no other chapter's condition)."""
        return sorted({r.evidence[1]["chapter_key"] for r in self.rounds if task_style(r.task).joins_chapters
                       and len(r.evidence) > 1 and r.evidence[1]["chapter_key"] != self.chapter_key})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvidencePlan":
        rounds = [EvidenceRound(**r) for r in data["rounds"]]
        return cls(data["chapter_key"], data["chapter_title"], data["language"], rounds)


_PER_PLAN: dict[tuple[str, int], tuple[weakref.ref, tuple, Any]] = {}
T = TypeVar("T")


def per_plan(name: str, plan: EvidencePlan, compute: Callable[[], T]) -> T:
    """Work done once per plan object (which answer each round takes, which question it borrows): generation
    asks for a round's answers several times (waves, requests, rows), and each needs the whole plan. Kept
    while the plan lives and its rounds hold the same tasks and passages."""
    fingerprint = tuple((r.task, r.focus, tuple(e["chunk_id"] for e in r.evidence)) for r in plan.rounds)
    held = _PER_PLAN.get((name, id(plan)))
    if held and held[0]() is plan and held[1] == fingerprint:
        return held[2]
    value = compute()
    for key in [k for k, (ref, _, _) in _PER_PLAN.items() if ref() is None]:
        del _PER_PLAN[key]  # plans gone since
    _PER_PLAN[(name, id(plan))] = (weakref.ref(plan), fingerprint, value)
    return value


def task_schedule(task_mix: dict[str, int]) -> list[str]:
    """Tasks interleaved in proportion to their weights (smooth weighted round robin)."""
    unknown = set(task_mix) - set(TASK_STYLES)
    if unknown:
        raise ValueError(f"unknown task(s) {sorted(unknown)} in task_mix; tasks are {', '.join(TASK_STYLES)}")
    unplanned = sorted(t for t, w in task_mix.items() if w > 0 and not TASK_STYLES[t].planned)
    if unplanned:
        raise ValueError(f"task_mix cannot plan rounds of {unplanned}: their rows are grown from seed tasks (seed_candidates' seeds_dir)")
    weights = {t: w for t, w in task_mix.items() if w > 0}
    if not weights:
        raise ValueError("task_mix turns every task off")
    credit = dict.fromkeys(weights, 0)
    schedule = []
    for _ in range(sum(weights.values())):
        for task, weight in weights.items():
            credit[task] += weight
        best = max(credit, key=lambda t: credit[t])
        credit[best] -= sum(weights.values())
        schedule.append(best)
    return schedule


def plan_chapter_evidence(chapter: Chapter, index: ChunkIndex, embedder: Embedder, settings: EvidenceSettings) -> EvidencePlan:
    """Each round is seeded with one chunk of its focus section (successive rounds on a section take
    its chunks in turn) and completed with that chunk's nearest neighbours in the whole collection,
    so every section gets covered and related passages from other chapters come along. A round of a style
    that joins chapters takes the chapter's bridges in turn (multi_hop.bridge_evidence: the line and the other
    chapter's passage); a chapter without one gives it an ordinary round, which asks nothing."""
    seeds = _section_rows(chapter, index)
    schedule = task_schedule(settings.task_mix)
    turn: Counter = Counter()
    rounds: list[EvidenceRound] = []
    joins = any(task_style(t).joins_chapters for t in schedule)
    bridges = bridge_evidence(chapter.chapter_key, index, embedder) if joins else []
    for i in range(settings.rounds):
        task = schedule[i % len(schedule)]
        style = task_style(task)
        if style.joins_chapters and bridges:
            evidence = bridges[turn[task] % len(bridges)]
            turn[task] += 1
            rounds.append(EvidenceRound(task, evidence[0]["section_path"][-1], evidence))
            continue
        preferred = [s for s in seeds if style.focus_sections and style.focus_sections.search(s)] or list(seeds)
        if rounds and i % settings.rounds_per_evidence and _shares(rounds[-1], task, preferred):
            rounds.append(EvidenceRound(task, rounds[-1].focus, rounds[-1].evidence))
            continue
        if not preferred:  # the chapter has no chunk in the index: retrieve by its title
            focus, vector = chapter.title, embedder.encode([f"{chapter.title}. {style.focus_query}"])[0]
            hits = index.search(vector, settings.top_k)
        else:
            focus = preferred[turn[task] % len(preferred)]
            turn[task] += 1
            rows = seeds[focus]
            seed = rows[turn[(task, focus)] % len(rows)]
            turn[(task, focus)] += 1
            hits = _around(index, seed, chapter.chapter_key, settings.top_k, other_chapter=style.asks_difference)
        rounds.append(EvidenceRound(task, focus, [{**h.chunk.to_dict(), "score": round(h.score, 4)} for h in hits]))
    return EvidencePlan(chapter.chapter_key, chapter.title, detect_language(chapter.text()), rounds)


def _shares(previous: EvidenceRound, task: str, preferred: list[str]) -> bool:
    """A round may take the previous round's evidence when its task likes that section; a
    differential or a multi-hop round never shares (it wants a passage from another chapter)."""
    apart = [task_style(t) for t in (task, previous.task)]
    return not any(s.asks_difference or s.joins_chapters for s in apart) and previous.focus in preferred


def _section_rows(chapter: Chapter, index: ChunkIndex) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(index.chunks):
        if chunk.chapter_key == chapter.chapter_key:
            rows.setdefault(chunk.section_path[-1], []).append(row)
    return rows


def _around(index: ChunkIndex, seed: int, chapter_key: str, top_k: int, other_chapter: bool) -> list[Hit]:
    """The seed chunk first, then its nearest neighbours; a differential gets the closest passage
    from another chapter (the condition it is told apart from) when the collection has one."""
    vector = index.index.reconstruct(seed)
    wide = [h for h in index.search(vector, top_k * 4 + 1) if h.chunk.chunk_id != index.chunks[seed].chunk_id]
    hits = [Hit(index.chunks[seed], 1.0)] + wide[: top_k - 1]
    if other_chapter and all(h.chunk.chapter_key == chapter_key for h in hits):
        other = next((h for h in wide if h.chunk.chapter_key != chapter_key), None)
        if other is not None:
            hits = hits[: top_k - 1] + [other]
    return hits[:top_k]
