"""Supporting spans (for each answer sentence, the evidence sentence that shares most of its content
words, with chunk id and offsets, so a reader can check every claim) and the groundedness gate (is
every content term of the answer in its cited evidence, and does each answer sentence agree with
the evidence it aligns to in numbers, negation and direction). The groundedness score curation
ranks by is ragtune.curate.groundedness.

The gate was chosen by measurement against tests/data/grounding_labels.jsonl (bench/grounding.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ragtune.generate.dialogue import informing_text
from ragtune.generate.hops import hop_rows
from ragtune.generate.synonyms import frequency, related_words
from ragtune.tasks import shape_of
from ragtune.text import CJK_RUN, LIST_ITEM, NUMBER_WORDS, content_terms, content_words, sentence_spans, stem, term_set

DIAGNOSIS_LABEL = re.compile(r"^([^:：\n]{2,80})[:：]\s*")  # a vignette's answer: '<diagnosis>: <its features>'


def _tokens(text: str) -> set[str]:
    """Content words cut to 5 letters, as the filter's support score matches them (tolerates inflection)."""
    return {w[:5] for w in content_words(text)}


def _sentences(text: str) -> list[tuple[int, int]]:
    spans = []
    for start, end in sentence_spans(text):
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


def sentence_texts(text: str) -> list[str]:
    return [text[start:end].strip() for start, end in _sentences(text)] or ([text.strip()] if text.strip() else [])


NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|without|cannot|unlikely|absent|lack|lacks|lacking|rarely)\b|n't|不|没有|无|未|非", re.I)
# Words whose swap for their opposite turns a supported sentence into a contradiction.
OPPOSITES = [
    ("increase", "decrease"), ("increases", "decreases"), ("increased", "decreased"), ("raise", "lower"), ("higher", "lower"),
    ("more", "less"), ("more", "fewer"), ("most", "least"), ("often", "rarely"), ("common", "rare"), ("commonly", "rarely"),
    ("before", "after"), ("early", "late"), ("earlier", "later"), ("mild", "severe"), ("better", "worse"), ("longer", "shorter"),
    ("above", "below"), ("men", "women"), ("male", "female"), ("boys", "girls"), ("children", "adults"), ("younger", "older"),
    ("always", "never"), ("first", "last"), ("minimum", "maximum"), ("least", "most"), ("over", "under"), ("high", "low"),
]
OPPOSITE: dict[str, set[str]] = {}
for _a, _b in OPPOSITES:
    OPPOSITE.setdefault(_a, set()).add(_b)
    OPPOSITE.setdefault(_b, set()).add(_a)
TOKEN = re.compile(r"[a-z]+")
ANAPHOR = re.compile(r"^(?:It|They|This|These|Such|He|She|Its|Their|Both|Either|Neither)\b|^(?:它|其|他们|这些|该)")


@dataclass
class GateSettings:
    max_unsupported: int = 0  # content words of the answer the whole cited evidence may lack
    # Chinese is matched by character bigrams, which a faithful rewording breaks at its seams:
    # the share of an answer's bigrams the evidence may lack.
    max_unsupported_bigram_share: float = 0.1
    aligned: bool = True  # each answer sentence's terms must sit in one window of adjacent evidence sentences
    window: int = 1  # evidence sentences in a window (1 measured best: a fact is stated within one sentence)
    check_negation: bool = True  # an answer sentence negated where its evidence sentence is not (or the reverse)
    check_opposites: bool = True  # "men" where the evidence sentence says "women", "rarely" for "often"
    # The answer's terms in the order its evidence states them: a swap of two entities ("men twice as
    # often as women" from "women twice as often as men", two drugs' roles exchanged) keeps every word.
    check_order: bool = True
    # A paraphrase's word counts as supported when it is a WordNet synonym or derived form of an
    # evidence word in one of the word's this-many most frequent senses (0: exact terms only).
    synonym_senses: int = 0
    clause_rotation: bool = False  # term order also read with leading clauses moved to the end
    # Everyday words (SemCor frequency >= common_frequency, no numbers) a rewording may add, per sentence.
    max_common_words: int = 0
    common_frequency: int = 50


@dataclass
class GateVerdict:
    grounded: bool
    reason: str = ""
    unsupported: list[str] = field(default_factory=list)


def _windows(evidence_texts: list[str], size: int) -> list[tuple[str, list[str]]]:
    """(window text, its sentences): runs of up to `size` adjacent sentences within one passage."""
    windows = []
    for text in evidence_texts:
        sentences = [line for part in text.splitlines() for line in sentence_texts(part)]
        for start in range(len(sentences)):
            # A sentence that opens with a pronoun ("It requires ...") is read with the one before it.
            first = start - 1 if start and ANAPHOR.match(sentences[start]) else start
            for width in range(1, size + 1):
                if start + width <= len(sentences):
                    chosen = sentences[first : start + width]
                    windows.append((" ".join(chosen), chosen))
    return windows


def _inversions(terms: list[str], source: list[str]) -> int:
    """How often the answer's terms step back in the source: each term is read at its next
    occurrence after the previous one (a verbatim copy never steps back), else at its first."""
    where: dict[str, list[int]] = {}
    for position, term in enumerate(source):
        where.setdefault(term, []).append(position)
    steps, last = 0, -1
    for term in terms:
        positions = where.get(term)
        if not positions:
            continue
        after = [p for p in positions if p > last]
        if not after:
            steps += 1
            last = positions[0]
        else:
            last = after[0]
    return steps


CLAUSE_BREAK = re.compile(r"[,;:]")


def _order_broken(sentence: str, source: list[str], rotation: bool) -> bool:
    """The sentence's Latin terms step back in the source's order. With rotation, a sentence whose
    leading clauses were moved behind the rest ("In GAD, worry covers many concerns" from "many
    concerns ... in GAD") is read in the source's clause order too; a swap of two entities inside
    the sentence's clauses still steps back in every reading."""
    latin = lambda text: [term for _, term in content_terms(text) if not CJK_RUN.fullmatch(term)]  # noqa: E731
    readings = [latin(sentence)]
    if rotation:
        cuts = [m.end() for m in CLAUSE_BREAK.finditer(sentence)]
        readings += [latin(sentence[cut:]) + latin(sentence[:cut]) for cut in cuts]
    return all(_inversions(terms, source) for terms in readings)


def _negated(text: str) -> bool:
    return bool(NEGATION.search(text))


def _supported(surface: str, term: str, known: set[str], settings: GateSettings) -> bool:
    """The term, or (English) a WordNet synonym or derived form of its word, is among the known terms."""
    if term in known:
        return True
    if not settings.synonym_senses or CJK_RUN.fullmatch(term) or surface[0].isdigit():
        return False
    return any(stem(word) in known for word in related_words(surface, settings.synonym_senses))


def _too_many_missing(terms: list[tuple[str, str]], known: set[str], settings: GateSettings) -> list[str]:
    """The missing terms when they are more than the settings allow, else []."""
    missing = list(dict.fromkeys(surface for surface, term in terms if not _supported(surface, term, known, settings)))
    words = [m for m in missing if not CJK_RUN.fullmatch(m)]
    if settings.max_common_words:
        common = [w for w in words if w not in NUMBER_WORDS and not w[0].isdigit() and frequency(w) >= settings.common_frequency]
        if len(common) <= settings.max_common_words:
            words = [w for w in words if w not in common]
    bigrams = [t for _, t in terms if CJK_RUN.fullmatch(t)]
    lacking = sum(1 for t in bigrams if t not in known)
    if len(words) > settings.max_unsupported or (bigrams and lacking / len(bigrams) > settings.max_unsupported_bigram_share):
        return missing
    return []


def assess_answer(answer: str, evidence_texts: list[str], context: str = "", settings: GateSettings | None = None) -> GateVerdict:
    """Is every claim of `answer` in its evidence? context: words the evidence shows beside its
    text (section titles). Returns the first reason it is not, with the terms concerned."""
    settings = settings or GateSettings()
    everything = "\n".join([context, *evidence_texts])
    missing = _too_many_missing(content_terms(answer), term_set(everything), settings)
    if missing:
        return GateVerdict(False, f"terms the cited evidence does not support: {', '.join(missing[:12])}", missing)
    if not (settings.aligned or settings.check_negation or settings.check_opposites or settings.check_order):
        return GateVerdict(True)
    context_terms = term_set(context)
    windows = [(term_set(text) | context_terms, sentences) for text, sentences in _windows(evidence_texts, settings.window)]
    # Split as the evidence is (_windows), a list item's label aside: '1.' alone would be matched to any sentence saying 'one'.
    for sentence in (s for line in answer.splitlines() for s in sentence_texts(LIST_ITEM.sub("", line, count=1))):
        terms = content_terms(sentence)
        if not terms or not windows:
            continue
        covered, sentences = max(windows, key=lambda w: (sum(t in w[0] for _, t in terms), -len(w[1])))
        outside = _too_many_missing(terms, covered, settings)
        if settings.aligned and outside:
            return GateVerdict(False, f"terms not stated together in one evidence passage: {', '.join(outside[:12])}", outside)
        best = max(sentences, key=lambda s: len({t for _, t in terms} & term_set(s)))
        if settings.check_negation and _negated(sentence) != _negated(" ".join(sentences)) and _negated(sentence) != _negated(best):
            return GateVerdict(False, f"negation differs from the evidence: {best[:120]!r}")
        if settings.check_opposites:
            said, source = set(TOKEN.findall(sentence.lower())), set(TOKEN.findall(" ".join(sentences).lower()))
            flipped = sorted(w for w in said - source if OPPOSITE.get(w, set()) & source)
            if flipped:
                said_instead = sorted(OPPOSITE[flipped[0]] & source)[0]
                return GateVerdict(False, f"{flipped[0]!r} where the evidence says {said_instead!r}", flipped)
        if settings.check_order:
            # Latin terms only: a faithful Chinese rewording reorders its character bigrams (no labels measure CJK here).
            source = [term for _, term in content_terms(" ".join(sentences)) if not CJK_RUN.fullmatch(term)]
            if _order_broken(sentence, source, settings.clause_rotation):
                return GateVerdict(False, f"terms in another order than the evidence states them (a swap?): {' '.join(sentences)[:120]!r}")
    return GateVerdict(True)


def grounding_verdict(row: dict[str, Any], settings: GateSettings | None = None) -> GateVerdict:
    """The gate for one QA row: its answer (a dialogue's informing clinician turns, a multi-hop row's hops one by
    one) against its cited evidence. An unanswerable row's answer says what the evidence lacks, so it passes."""
    if shape_of(row.get("task")) == "abstention":
        return GateVerdict(True)
    for n, part in enumerate(hop_rows(row), 1):  # a multi-hop row: each hop against its own chunk alone
        verdict = grounding_verdict(part, settings)
        if not verdict.grounded:
            return GateVerdict(False, f"hop {n} ({part['chapter_key']}): {verdict.reason}", verdict.unsupported)
    if row.get("hops"):
        return GateVerdict(True)
    answer = informing_text(row)
    context = "\n".join(" ".join(e.get("section_path", [])) for e in row.get("evidence", []))
    if shape_of(row.get("task")) == "vignette" and (found := DIAGNOSIS_LABEL.match(answer)):
        label, features = found.group(1), answer[found.end():]
        if {term for _, term in content_terms(label)} <= term_set(context):
            answer = features  # 'Generalized anxiety disorder: <criterion>': the label is the section's, the rest is gated
    return assess_answer(answer, [e["text"] for e in row.get("evidence", [])], context, settings)
