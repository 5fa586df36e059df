"""Multi-hop rounds: a line of one chapter that names a condition another chapter is about (a differential
line, 'Bipolar disorder: a history of elevated mood ... points to the bipolar group', '抑郁障碍：...'),
joined with what that chapter says of the condition, found by
the FAISS index among that chapter's chunks only. The round's evidence is the two chunks, the bridge's
first; the row asks both hops in one question and answers each from its own span (ragtune.generate.hops
holds the per-hop checks). The plan's hash covers both chunks' text, so an edit of the other chapter
plans this chapter's rounds again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import zip_longest
from typing import Any

from ragtune.generate.answer_units import AnswerUnit, units_for_task
from ragtune.generate.qa_fit import DIFFERENTIAL_SECTION, ZH_SECTION_END, differential_head, differential_line
from ragtune.index.embedding import Embedder
from ragtune.index.vector_index import ChunkIndex
from ragtune.tasks import DEFAULT_TASK, STYLES
from ragtune.text import CJK_RUN

SECTION_LEAD = re.compile(r"^(?:(?:diagnostic )?criteria for|(?:signs and )?symptoms of|(?:clinical )?features of|treatment of)\s+", re.I)
ARTICLE = re.compile(r"^(?:an?|the)\s+", re.I)
NAME_PARTS = re.compile(r"\s+and\s+|\s+or\s+|\s*,\s*", re.I)
DIFFERENCE_TASK = next(s.name for s in STYLES if s.asks_difference)  # the style whose answers are differential lines
PARTNERS = 2  # chunks of the other chapter tried per line: each a round of its own


@lru_cache(maxsize=8192)
def _units(chunk_id: str, text: str, section_path: tuple[str, ...], task: str) -> tuple[AnswerUnit, ...]:
    return tuple(units_for_task({"chunk_id": chunk_id, "text": text, "section_path": list(section_path)}, task))


def units_of(chunk: dict[str, Any], task: str) -> tuple[AnswerUnit, ...]:
    """A chunk's answers for a task, worked out once: the planner tries every line against every other chapter."""
    return _units(chunk["chunk_id"], chunk["text"], tuple(chunk.get("section_path") or ()), task)


@dataclass(frozen=True)
class HopUnits:
    """A round's answers: `bridge` (a line of the round's first chunk) names `named`; `answers` are units of its
    second chunk, another chapter's, each with the condition it speaks of (`named`, or the chapter's condition
    `named` is a kind of), best first."""

    bridge: AnswerUnit
    named: str
    answers: tuple[tuple[AnswerUnit, str], ...]

    def condition_of(self, unit: AnswerUnit) -> str:
        return next(condition for answer, condition in self.answers if answer.unit_id == unit.unit_id)


def name_key(name: str) -> str:
    """A condition's name as names are compared: lower case, no article, singular ('Depressive Disorders' and
    'a depressive disorder' are one name)."""
    key = ARTICLE.sub("", name.strip().lower())
    return re.sub(r"\bdisorders\b", "disorder", key)


def _named(title: str) -> list[str]:
    """The names a heading gives: 'Bipolar and Related Disorders' -> ['bipolar disorder'], 'Feeding and Eating
    Disorders' -> ['feeding disorder', 'eating disorder'], 'Diagnostic Criteria for a Manic Episode' -> ['manic
    episode'], 'Panic Disorder and Agoraphobia' -> ['panic disorder', 'agoraphobia']; Chinese headings name
    themselves ('重性抑郁发作的诊断要点' -> ['重性抑郁发作'])."""
    if CJK_RUN.search(title):
        return [ZH_SECTION_END.sub("", title.strip())]
    words = SECTION_LEAD.sub("", title.strip())
    words = re.sub(r"\s+and\s+related\b", "", words, flags=re.I)
    parts = [p.strip() for p in NAME_PARTS.split(words) if p.strip()]
    tail = re.search(r"\b(disorders?|episodes?)$", parts[-1], re.I) if parts else None
    if tail:  # 'Feeding and Eating Disorders': the last part's noun is every part's
        parts = [p if re.search(r"\b(?:disorders?|episodes?)$", p, re.I) else f"{p.rstrip('-')} {tail.group(1)}" for p in parts]
    return [name_key(p) for p in parts if len(p) > 2]


def chapter_names(chunk: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(the names its chapter's title gives, the names its chapter's headings give): every heading of the
    chapter where the chunk carries them (`chapter_headings`, as bridge_evidence adds them), else its own."""
    path = chunk.get("section_path") or []
    title = chunk.get("chapter_title") or (path[0] if path else "")
    headings = chunk.get("chapter_headings") or path[1:]
    return _named(title), list(dict.fromkeys(n for heading in headings for n in _named(heading)))


def _names_one(named: str, chapter: list[str], section: list[str]) -> bool:
    """A line's condition is the other chapter's: its name is the chapter's or its section's, or a kind of the
    chapter's ('major depressive disorder' of 'depressive disorder'; 'obsessive-compulsive personality disorder'
    is no kind of 'obsessive-compulsive disorder')."""
    key = name_key(named)
    return key in chapter or key in section or bool(_kinds_of(key, chapter))


def _kinds_of(key: str, chapter: list[str]) -> list[str]:
    """The chapter's names of which this name is a kind ('depressive disorder' for 'major depressive disorder')."""
    return [name for name in chapter if " " in name and key.endswith(f" {name}")]


def _bridges(chunk: dict[str, Any], names: tuple[list[str], list[str]]) -> list[tuple[AnswerUnit, str]]:
    """The lines of `chunk` that name a condition of these names (chapter_names), with that name as the line gives it."""
    chapter, section = names
    found = []
    for unit in (u for u in units_of(chunk, DIFFERENCE_TASK) if differential_line(chunk, u)):
        parts = [re.sub(r"\s+with\s.*$", "", p) for p in NAME_PARTS.split(differential_head(unit.text)) if p]  # its kind's name
        named = next((p for p in parts if _names_one(p, chapter, section)), None)
        if named:
            found.append((unit, named))
    return found


def tells_of(unit: AnswerUnit, condition: str) -> bool:
    """The answer is about the condition: its first words name it ('Bipolar disorders are defined by ...',
    'Obsessive-compulsive and related disorders are marked by ...', '抑郁障碍的共同核心是...'). One that only speaks
    of it on the way ('Compulsions are ...', 'Specific phobias and separation anxiety usually start ...' for
    anxiety disorders, 'Cognitive behavioural therapy ... across the anxiety disorders') would join two
    questions that have little to do with each other."""
    if CJK_RUN.search(unit.text):
        return condition in unit.text[:12]
    opening = re.sub(r"\s+and\s+related\b", "", " ".join(unit.text.split()[:8]), flags=re.I)
    key = name_key(condition)
    return bool(re.search(rf"\b{re.escape(key)}s?\b", opening.lower()))


def _rank(unit: AnswerUnit) -> bool:
    """Definitions first."""
    return unit.kind != "definition"


def hop_units(evidence: list[dict[str, Any]]) -> HopUnits | None:
    """The round's bridge and the answers of the other chapter about its condition, or None: the first chunk's
    first line naming a condition the second chunk's chapter is about, with the second chunk's answers about it
    (tells_of), then those about the chapter's condition the name is a kind of ('depressive disorder' for 'major
    depressive disorder'), definitions first. Evidence of one chapter joins nothing."""
    if len(evidence) < 2 or evidence[0].get("chapter_key") == evidence[1].get("chapter_key"):
        return None
    first, second = evidence[0], evidence[1]
    names = chapter_names(second)
    units = units_of(second, DEFAULT_TASK)
    for bridge, named in _bridges(first, names):
        answers = []
        for condition in [named, *_kinds_of(name_key(named), names[0])]:  # the line's own name first
            told = {a.unit_id for a, _ in answers}
            answers += [(u, condition) for u in sorted(units, key=_rank) if u.unit_id not in told and tells_of(u, condition)]
        if answers:
            return HopUnits(bridge, named, tuple(answers))
    return None


def bridge_evidence(chapter_key: str, index: ChunkIndex, embedder: Embedder) -> list[list[dict[str, Any]]]:
    """Each bridge of a chapter as a round's evidence, [the chunk with the line, the other chapter's chunk]:
    for each line of the chapter that names a condition another chapter is about (its title's or one of its
    headings'), that chapter's chunk with an answer about the condition (a definition first), then one of the heading
    that names it, then the nearest to the name by the index; its second best too, as a later round (the best
    may hold no answer a question can be built for). Once per line and chapter. The other chapter's
    chunk carries its chapter's headings (`chapter_headings`): what its chapter is about is known from the
    round alone, so generation finds the same bridge."""
    chunks = [c.to_dict() for c in index.chunks]
    headings: dict[str, list[str]] = {}
    for chunk in chunks:
        headings.setdefault(chunk["chapter_key"], [])
        if chunk["section_path"][-1] not in headings[chunk["chapter_key"]]:
            headings[chunk["chapter_key"]].append(chunk["section_path"][-1])
    found: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}  # (line, other chapter) -> evidence per partner
    names = {key: chapter_names({**next(c for c in chunks if c["chapter_key"] == key), "chapter_headings": heads})
             for key, heads in headings.items() if key != chapter_key}  # what each other chapter is about
    for chunk in (c for c in chunks if c["chapter_key"] == chapter_key):
        for key, named in names.items():
            for bridge, condition in _bridges(chunk, named):
                if (bridge.text, key) in found:  # a line two chunks share (their overlap) bridges once
                    continue
                hits = index.search(embedder.encode([condition])[0], len(index.chunks))
                own = [{**h.chunk.to_dict(), "chapter_headings": headings[key]} for h in hits
                       if h.chunk.chapter_key == key and not DIFFERENTIAL_SECTION.search(h.chunk.section_path[-1])]  # what it is, not what it is not
                joined = [(c, units) for c in own if (units := hop_units([chunk, c]))]
                joined.sort(key=lambda cf: (cf[1].answers[0][1] != condition, _rank(cf[1].answers[0][0]),
                                            not _names_one(condition, [], [n for h in cf[0]["section_path"][1:] for n in _named(h)])))
                if joined:
                    found[(bridge.text, key)] = [[{**chunk, "score": 1.0}, {**partner, "score": 1.0}] for partner, _ in joined[:PARTNERS]]
    return [evidence for partners in zip_longest(*found.values()) for evidence in partners if evidence]  # each line's best partner first
