"""Answers taken from the evidence itself, for answer-first generation: a sentence (or two), a
definition, a criteria list with its labels and lead-in, a table row with its headers, the whole
text of a section headed by a question, each cut from a chunk's parsed structure with exact offsets
into the chunk's text. A question, a link, an address, a crisis line or a pointer at a table or figure
is never an answer.

A chunk's text is its section's blocks, one per line (paragraphs, "A. "-labelled list items,
"cell | cell" table rows), as ragtune.index.chunking renders them; chunk edges may cut a block, so a
line that does not start or end like a whole one is not used.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ragtune.generate.qa_fit import differential_head
from ragtune.generate.row_rules import MARKUP, SOURCE_REFERENCE
from ragtune.generate.synonyms import glued_words
from ragtune.tasks import task_style
from ragtune.text import LIST_ITEM, content_terms, sentence_spans

DANGLING_LABEL = re.compile(r"^\(?(?:[A-Za-z]|\d{1,2})[.)]?$")  # "9." alone: the chunk ends inside the list
DEFINITION = re.compile(
    r"^(?!(?:The|It|This|These|Those|That|When|If|Without|With|In|A|An|Risk|There|Most|Some|Many)\b)[A-Z][\w\-/']*(?: [\w\-/']+){0,5} "
    r"(?:is an?|is the|are|means|refers to|is defined as|are defined by|describes|is called|are marked by)\b|^.{2,30}?(?:是指|是一种|指的是)"
)
MIN_TERMS, MAX_WORDS, MAX_LIST_ITEMS, MAX_SECTION_WORDS = 5, 70, 10, 160
PRONOUN_OPENING = re.compile(r"^(?:(?:They|It|This|These|Those|He|She|Its|Their|Both|Such|However|Also|Therefore|Thus|Moreover|Instead|Otherwise|Similarly|But|Yet|In addition|For example|For instance)\b|它|这|该|其(?!他)|此(?!外)|两者|以下|本章|本节)")  # 以下/本章: the document speaking of itself


@dataclass
class AnswerUnit:
    kind: str  # "sentence" | "definition" | "criteria_list" | "table_row" | "section" (all a question heading's text)
    chunk_id: str
    text: str  # the answer as a row shows it
    spans: list[tuple[int, int]] = field(default_factory=list)  # exact offsets into the chunk's text

    @property
    def unit_id(self) -> str:
        return hashlib.sha256(f"{self.chunk_id}\n{self.spans}".encode()).hexdigest()[:12]

    def supporting_spans(self, chunk_text: str) -> list[dict[str, Any]]:
        return [{"chunk_id": self.chunk_id, "start": s, "end": e, "text": chunk_text[s:e], "overlap": 1.0} for s, e in self.spans]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unit_id": self.unit_id}


def _lines(text: str) -> list[tuple[int, int]]:
    spans, offset = [], 0
    for line in text.split("\n"):
        start = offset + len(line) - len(line.lstrip())
        end = offset + len(line.rstrip())
        if end > start:
            spans.append((start, end))
        offset += len(line) + 1
    return spans


def _label_kind(line: str) -> str:
    """'1' for a numbered item, 'A' (or 'a') for a lettered one, '' for anything else: items of one kind make a list."""
    marker = LIST_ITEM.match(line)
    label = marker.group(1) if marker else None
    if not label:
        return ""
    return "1" if label.isdigit() else ("A" if label.isupper() else "a")


CONTACT = re.compile(  # a link, an address or a crisis line is no clinical answer
    r"https?://|\bwww\.|\S@\S|\b\d{3}-\d{3}-\d{4}\b|\btoll-free\b|\b988\b|\bcall or text\b|\bhotline\b|\blifeline\b", re.I
)
# A line a web page closes a section with: where to read or ask more, not part of the answer.
POINTER_LINE = re.compile(
    r"^(?:learn more|read more|find (?:tips|more|out more)|for more information|for tips|visit|see also|you can (?:also )?(?:learn|find|read)|"
    r"information (?:about|on) )\b|\b(?:provides?|has|offers?) (?:basic |more )?information\b", re.I
)
# A heading a reader would ask as it stands: it names a condition or a medicine (an acronym counts), points at nothing.
HEADING_TOPIC = re.compile(
    r"disorder|depress|anxiety|phobia|mania|psychos|schizo|autism|panic|trauma|grief|anorexia|bulimia|binge|eating|"
    r"antidepress|antipsychot|stimulant|stabilizer|anti-anxiety|medication|\b[A-Z]{2,5}\b|障碍|抑郁|焦虑|症",
)
# A heading that only points elsewhere ('For More Information', 'Where can I learn more?'): a title, so anywhere in it.
POINTER_HEADING = re.compile(r"\b(?:for more information|learn more|read more|find out more)\b", re.I)
POINTING_HEADING = re.compile(r"\b(?:this|these|that|those|it|they|them|you know|where can|clinical trials?|learn more)\b", re.I)


# A paper's section heading run into its first sentence by text extraction ('Results We explored ...',
# 'Background: Functional electrical stimulation ...', a research article's rows, 2026-12-06).
RUN_IN_HEADING = re.compile(r"^(?:Background|Objectives?|Aims?|Introduction|Methods?|Results|Discussion|Conclusions?|Abstract)(?::\s*|\s+)(?=[A-Z])")


def _readable(text: str) -> bool:
    """No markup, no words that lost their spaces ('such aspsychotherapyandbrain stimulation'), no heading
    run into the text, enough content."""
    return not MARKUP.search(text) and not glued_words(text) and not RUN_IN_HEADING.match(text) and len(content_terms(text)) >= MIN_TERMS


# The publisher speaking of its pages, not of mental health: NIMH's reprint notice ('The information in this
# publication is in the public domain ... you may not reuse or copy images') was kept as a dialogue's reply
# and asked about three times by the 1.5B (2026-12-07).
PUBLISHER_NOTICE = re.compile(r"\b(?:public domain|without permission|reus(?:e|ed|ing)|reprint\w*|copyright\w*|all rights reserved|as the source)\b"
                              r"|\b(?:this|our) (?:publication|publications|website|brochure|booklet|fact sheet)\b", re.I)


# A sentence that sends the reader elsewhere: 'For more information, please see the National Institute on Drug
# Abuse (NIDA) webpage on ...' was kept as the reply to 'Could you please explain why they occur together?'
# in two dialogues and answered a differential row of the 1.5B; 'Learn more about mental health
# medications.' closed a treatment answer (2026-12-07). A closing line of a section is POINTER_LINE's.
# Only as an instruction to the reader: 'researchers learn more about a disease' and 'children with intellectual
# disability learn more slowly' are statements.
POINTER_SENTENCE = re.compile(r"^(?:for more information|(?:to |you can (?:also )?)?(?:learn|read|find out) more)\b"
                              r"|\b(?:see|visit)\b[^.]{0,80}\b(?:webpage|web page|website|web site|page)\b", re.I)


# A line of a reference list, cut into sentences: '(2025). Web-based Injury Statistics Query and Reporting System
# (WISQARS).' answered 'According to the WISQARS, what percentage of U.S. adults have thoughts about suicide?' in
# the NIMH suicide test split (2026-12-07).
# The whole line is the reference: no sentence of it is an answer.
CITATION = re.compile(r"\((?:19|20)\d{2}[a-z]?\)[.,](?:\s|$)|\bRetrieved (?:from|on)\b|\bdoi(?::\s*|\.org/)10\.", re.I)


def _clean(text: str) -> bool:
    """Usable as an answer: readable, no reference to the source or notice of its publisher, no pointer
    elsewhere, no citation, no link or address, not too long."""
    return (
        _readable(text)
        and not SOURCE_REFERENCE.search(text)
        and not PUBLISHER_NOTICE.search(text)
        and not POINTER_SENTENCE.search(text)
        and not CITATION.search(text)
        and not CONTACT.search(text)
        and len(text.split()) <= MAX_WORDS * (3 if "\n" in text else 1)
        and text.count("(") == text.count(")")
    )


def _whole_start(text: str) -> bool:
    return bool(text) and (text[0].isupper() or text[0].isdigit() or "\u3400" <= text[0] <= "\u9fff")


def _sentences(chunk_text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    for s, e in sentence_spans(chunk_text, start, end):
        while s < e and chunk_text[s].isspace():
            s += 1
        while e > s and chunk_text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans


def answer_units(chunk: dict[str, Any]) -> list[AnswerUnit]:
    """Every answer the chunk offers, in reading order."""
    text, chunk_id = chunk["text"], chunk["chunk_id"]
    lines = _without_heading(text, _lines(text), chunk)
    units: list[AnswerUnit] = []
    n = 0
    while n < len(lines):
        start, end = lines[n]
        line = text[start:end]
        if " | " in line:  # a table: the first row read is its header
            table = [lines[n]]
            while n + 1 < len(lines) and " | " in text[lines[n + 1][0] : lines[n + 1][1]]:
                n += 1
                table.append(lines[n])
            units.extend(_table_rows(text, chunk_id, table))
        elif kind := _label_kind(line):
            items = [lines[n]]
            while n + 1 < len(lines) and _label_kind(text[lines[n + 1][0] : lines[n + 1][1]]) == kind:
                n += 1
                items.append(lines[n])
            cut = n + 1 < len(lines) and DANGLING_LABEL.match(text[lines[n + 1][0] : lines[n + 1][1]])
            cut = cut or (n + 1 == len(lines) and not re.search(r"[.!?。！？]$", text[lines[n][0] : lines[n][1]]))
            cut = cut or text[lines[n][0] : lines[n][1]].endswith((":", "："))  # its last item leads into a sub-list: the list goes on after it
            if LIST_ITEM.match(line).group(1) in ("1", "A", "a") and not cut:  # a list the chunk holds whole (criteria A, B, C ...)
                units.extend(_criteria_list(text, chunk_id, _lead(text, lines, n - len(items)), items))
            for k, (s, e) in enumerate(items):  # each item is an answer too ("1. Bipolar disorder: ... points to ...")
                last = k == len(items) - 1 and (cut or n + 1 == len(lines))
                units.extend(_sentence_units(text, chunk_id, s + LIST_ITEM.match(text[s:e]).end(), e, first_line=False, last_line=last))
        else:
            body = start + (LIST_ITEM.match(line).end() if LIST_ITEM.match(line) else 0)
            units.extend(_sentence_units(text, chunk_id, body, end, first_line=n == 0, last_line=n == len(lines) - 1))
        n += 1
    return units


def _without_heading(text: str, lines: list[tuple[int, int]], chunk: dict[str, Any]) -> list[tuple[int, int]]:
    """The chunk's lines without its section's heading where text extraction ran the heading into the first
    sentence ('Cognitive training Cognitive training approaches involve ...', 'Medication Stimulants are
    ...' on the NIMH pages): cut with it, an answer opens with words that belong to no sentence."""
    heading = chunk["section_path"][-1].strip() if chunk.get("section_path") else ""
    if not lines or not heading or heading.endswith(("?", "？")):  # a question heading: section_unit reads it
        return lines
    first = text[lines[0][0] : lines[0][1]]
    if not re.match(re.escape(heading) + r"\s+(?=[A-Z0-9\u4e00-\u9fff])", first):
        return lines
    start = lines[0][0] + len(heading)
    start += len(text[start : lines[0][1]]) - len(text[start : lines[0][1]].lstrip())
    return [(start, lines[0][1])] + lines[1:]


def section_unit(chunk: dict[str, Any]) -> AnswerUnit | None:
    """A section headed by a question ('How is panic disorder diagnosed?') that the chunk holds whole is
    answered by its text, up to the closing links and pointers: that heading is then the row's question
    and asks neither more nor less than its answer says. A pointer or link inside the text, a heading that
    names no condition ('How can I find help?') or points at another ('Is it normal stress ...?') gives none."""
    heading = chunk["section_path"][-1].strip() if chunk.get("section_path") else ""
    if not chunk.get("whole_section") or not heading.endswith(("?", "？")) or not HEADING_TOPIC.search(heading) or POINTING_HEADING.search(heading):
        return None
    text = chunk["text"]
    lines = _lines(text)
    if lines and text[lines[0][0] : lines[0][1]].startswith(heading):  # the body repeats its heading ('How is X treated? ...')
        start = lines[0][0] + len(heading)
        start += len(text[start : lines[0][1]]) - len(text[start : lines[0][1]].lstrip())
        lines[0] = (start, lines[0][1])
        lines = [span for span in lines if span[1] > span[0]]
    used = [span for span in lines if not _closing(text[span[0] : span[1]])]
    if not used or used != lines[: len(used)]:  # something closing-like stands between two parts of the answer
        return None
    start, end = used[0][0], used[-1][1]
    body = text[start:end]
    if not _whole_start(body) or not re.search(r"[.!?。！？][\"'”’)）]*$", body) or body.rstrip().endswith(("?", "？")):
        return None
    if not _readable(body) or len(body.split()) > MAX_SECTION_WORDS:
        return None
    return AnswerUnit("section", chunk["chunk_id"], body, [(start, end)])


def _closing(line: str) -> bool:
    """A line that points elsewhere (a link, a crisis line, 'Learn more about ...', a table or figure)."""
    body = line[LIST_ITEM.match(line).end():] if LIST_ITEM.match(line) else line
    return bool(CONTACT.search(line) or SOURCE_REFERENCE.search(line) or POINTER_LINE.search(body) or not body.strip(" •.►"))


def _statement(sentence: str) -> bool:
    """Not a lead-in ('The clinician considers:', whose list is another unit), a heading or link title
    ('Treatment (National Institute on Drug Abuse)') or a question: alone or as the second of a pair."""
    return not (sentence.endswith(":") or not re.search(r"[.!?。！？][\"'”’)）]*$", sentence) or re.search(r"[?？][\"'”’)）]*$", sentence))


def _sentence_units(text: str, chunk_id: str, start: int, end: int, first_line: bool, last_line: bool) -> list[AnswerUnit]:
    if CITATION.search(text[start:end]):
        return []  # a line of a reference list
    sentences = _sentences(text, start, end)
    if first_line and sentences and not _whole_start(text[sentences[0][0] : sentences[0][1]]):
        sentences = sentences[1:]  # the chunk starts inside a sentence
    if last_line and sentences and not re.search(r"[.!?。！？][\"'”’)）]*$", text[sentences[-1][0] : sentences[-1][1]]):
        sentences = sentences[:-1]  # the chunk ends inside one
    units = []
    for k, (s, e) in enumerate(sentences):
        sentence = text[s:e]
        if not _statement(sentence):
            continue
        kind = "definition" if DEFINITION.match(sentence) else "sentence"
        if _clean(sentence) and not PRONOUN_OPENING.match(sentence):  # 'They take two to four weeks': alone, its 'they' is no one
            units.append(AnswerUnit(kind, chunk_id, sentence, [(s, e)]))
        if k + 1 < len(sentences) and _statement(text[slice(*sentences[k + 1])]):  # a claim and its qualifier, read together
            pair = text[s : sentences[k + 1][1]]
            if _clean(pair) and len(pair.split()) <= MAX_WORDS:
                units.append(AnswerUnit("sentence", chunk_id, pair, [(s, sentences[k + 1][1])]))
    return units


def _lead(text: str, lines: list[tuple[int, int]], n: int) -> tuple[int, int] | None:
    """The sentence that introduces a list ("... the following symptoms:"), without its own label."""
    if n < 0 or not text[lines[n][0] : lines[n][1]].endswith(":"):
        return None
    start, end = lines[n]
    label = LIST_ITEM.match(text[start:end])
    sentences = _sentences(text, start + (label.end() if label else 0), end)
    return sentences[-1] if sentences else None


def _criteria_list(text: str, chunk_id: str, lead: tuple[int, int] | None, items: list[tuple[int, int]]) -> list[AnswerUnit]:
    """A numbered or lettered list, labels kept, with its lead-in line when it has one ("... the following:")."""
    if len(items) < 2 or len(items) > MAX_LIST_ITEMS:
        return []
    start = lead[0] if lead else items[0][0]
    body = text[start : items[-1][1]]
    if not _readable(body):  # "the following:" alone is how a list is introduced
        return []
    return [AnswerUnit("criteria_list", chunk_id, body, [(start, items[-1][1])])]


def _table_rows(text: str, chunk_id: str, table: list[tuple[int, int]]) -> list[AnswerUnit]:
    """Each body row as "Header: cell; Header: cell.", spans on the header and the row."""
    header = [cell.strip() for cell in text[table[0][0] : table[0][1]].split(" | ")]
    units = []
    for start, end in table[1:]:
        cells = [cell.strip() for cell in text[start:end].split(" | ")]
        if len(cells) != len(header) or not all(cells):
            continue
        rendered = "; ".join(f"{h}: {c}" for h, c in zip(header, cells)) + "."
        if _clean(rendered):
            units.append(AnswerUnit("table_row", chunk_id, rendered, [table[0], (start, end)]))
    return units


def _list_item(text: str, start: int) -> bool:
    """The unit starts a labelled list item ("A. Restriction of energy intake ..."): a criterion, often no sentence."""
    line_start = text.rfind("\n", 0, start) + 1
    return bool(LIST_ITEM.fullmatch(text[line_start:start]))


def units_for_task(chunk: dict[str, Any], task: str) -> list[AnswerUnit]:
    """The chunk's answers that suit a task, the preferred kinds and topics first. A clinician's reply in a
    dialogue is said aloud, and a vignette's diagnosis needs its criteria together, so neither is a list
    item cut from a criteria list."""
    style = task_style(task)
    kinds, topic = style.answer_kinds, style.answer_topic
    units = [u for u in answer_units(chunk) if u.kind in kinds]
    whole = section_unit(chunk) if "section" in kinds else None
    if whole and style.shape == "vignette" and not re.search(r"\b(?:signs?|symptoms?)\b", chunk["section_path"][-1], re.I):
        whole = None  # a case is built on a section that lists a condition's signs
    units = [whole] + units if whole else units
    if style.shape in ("dialogue", "vignette"):  # a reply, or a case's diagnosis, rests on more than one criterion
        units = [u for u in units if u.kind == "criteria_list" or not _list_item(chunk["text"], u.spans[0][0])]
    if style.shape == "dialogue":  # 'Bulimia nervosa: People with ...' is a glossary's line, not what a clinician says
        units = [u for u in units if not differential_head(u.text)]
    return sorted(units, key=lambda u: (not (topic is None or topic.search(u.text)), kinds.index(u.kind)))
