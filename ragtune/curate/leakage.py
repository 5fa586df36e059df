"""What a train row may not show: the text of a validation or test chunk.

Chunks overlap their neighbours (the splitter repeats up to 32 tokens of whole sentences), and a
book can repeat a passage elsewhere, so excluding held-out chunk ids is not enough. A chunk is
sealed when it is held out, when it is a held-out chunk's neighbour in the same section (the
overlap, however short), or when it shares a 13-word window with held-out text (the usual
contamination window; each CJK character counts as a word; shorter shared phrases are the book's
boilerplate, e.g. "cause clinically significant distress or impairment"). No train row is asked
about a sealed chunk, answers from it or shows it (evidence, RAFT input, distractor), and no text
of a train row shares a window with held-out text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ragtune.generate.dialogue import QUESTION_END
from ragtune.text import normalize_question, words

GRAM = 13


def grams(text: str, n: int = GRAM) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _same_section(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["doc_id"] == b["doc_id"] and a["section_path"] == b["section_path"]


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a record (nested lists and dicts), which is what an export shows a trainer."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


@dataclass
class HeldOutText:
    """The n-grams of the held-out chunks, each pointing at the chunks it came from."""
    chunk_ids: set[str]
    owners: dict[tuple[str, ...], set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, held_out: Iterable[str], passages: Iterable[tuple[str, str]]) -> "HeldOutText":
        """held_out: the chunk ids; passages: (chunk id, text) pairs, several texts per id allowed."""
        owners: dict[tuple[str, ...], set[str]] = {}
        for chunk_id, text in passages:
            for gram in grams(text):
                owners.setdefault(gram, set()).add(chunk_id)
        return cls(set(held_out), owners)

    def sources(self, text: str) -> set[str]:
        """The held-out chunks whose text overlaps this text."""
        found: set[str] = set()
        for gram in grams(text):
            found |= self.owners.get(gram, set())
        return found

    def sealed(self, chunks: dict[str, dict[str, Any]]) -> set[str]:
        """Held-out chunks, their neighbours (chunks are in book order; a neighbour is the chunk
        before or after in the same document and section) and every chunk whose text overlaps one."""
        order = list(chunks)
        found = set(self.chunk_ids)
        for i, chunk_id in enumerate(order):
            if chunk_id in self.chunk_ids:
                here = chunks[chunk_id]
                for j in (i - 1, i + 1):
                    if 0 <= j < len(order) and _same_section(here, chunks[order[j]]):
                        found.add(order[j])
        return found | {c for c, chunk in chunks.items() if c not in found and self.sources(chunk["text"])}

    def leaks_in(self, record: dict[str, Any]) -> set[str]:
        """Held-out chunks whose text a record shows, anywhere in it."""
        found: set[str] = set()
        for text in strings_in(record):
            found |= self.sources(text)
        return found


QUESTION_WORDS_IN_TEXT = 6  # a held-out question this long counts when it appears inside a longer text
CJK_CHARACTERS_IN_TEXT = 12  # ... a Chinese one this many characters long (each counts as a word)
TURN_WORDS = 4  # a dialogue's later user turn counts from this long ("Thank you." may recur anywhere)
USER_ROLES = ("user", "patient")  # dialogue rows store patient / clinician turns


def held_out_question_texts(row: dict[str, Any]) -> list[str]:
    """What a held-out row asks: its question and, for a dialogue, every patient (user) turn that asks and
    is long enough to be its own. A patient's statement is no question a model could be tested on, and a
    built opening ('I have been worried about panic disorder lately.') recurs in dialogues of every split."""
    turns = [t["content"] for t in row.get("turns") or [] if t.get("role") in USER_ROLES and QUESTION_END.search(t["content"])]
    return [row["question"], *(text for text in turns if len(words(text)) >= TURN_WORDS)]


def _long_enough_inside(key: str) -> bool:
    tokens = key.split()
    return len(tokens) >= (CJK_CHARACTERS_IN_TEXT if any(t >= "\u3400" for t in tokens) else QUESTION_WORDS_IN_TEXT)


@dataclass
class HeldOutQuestions:
    """The questions of the held-out rows, which no training input may contain: a record string that
    is such a question, or a longer text holding one of QUESTION_WORDS_IN_TEXT words or more
    (CJK_CHARACTERS_IN_TEXT characters in Chinese; a short question such as "What is OCD?" may occur
    in the book's own text, and the whole-string match still finds it as a prompt)."""
    owners: dict[str, str] = field(default_factory=dict)  # question key -> qa id
    long: list[tuple[str, str]] = field(default_factory=list)  # the keys that count inside a longer text

    @classmethod
    def of(cls, rows: Iterable[dict[str, Any]]) -> "HeldOutQuestions":
        owners: dict[str, str] = {}
        for row in rows:
            for text in held_out_question_texts(row):
                if normalize_question(text):
                    owners.setdefault(normalize_question(text), row["qa_id"])
        return cls(owners, [(key, qa_id) for key, qa_id in owners.items() if _long_enough_inside(key)])

    def found_in(self, record: dict[str, Any]) -> set[str]:
        """The qa ids of the held-out questions a record shows, anywhere in it."""
        long = self.long
        found: set[str] = set()
        for text in strings_in(record):
            key = normalize_question(text)
            if key in self.owners:
                found.add(self.owners[key])
            padded = f" {key} "
            found |= {qa_id for question, qa_id in long if f" {question} " in padded}
        return found
