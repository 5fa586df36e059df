"""Text shared by every stage. Content terms of a text and whether cited evidence supports them
(the unit the groundedness gate and the `unsupported_terms` rule reason in), and plain word matching.

English terms are stemmed with NLTK's Porter stemmer (so "depressed", "depression" and
"depressive" meet), numbers are normalised ("two" and "2" are one term), and words that carry no
claim of their own (function words, "patient", "likely") are left out. Chinese has no spaces:
its terms are the character bigrams of each CJK run.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nltk.stem.porter import PorterStemmer

CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
WIDE = "\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"  # CJK ideographs, punctuation and full-width forms
WIDE_CHAR = re.compile(f"[{WIDE}]")
WIDE_GAP = re.compile(rf"(?<=[{WIDE}]) (?=[{WIDE}])")  # a space Chinese text never has between two such characters
LATIN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)?")
FUNCTION_WORDS = frozenset(
    "a about above across after again against all almost also although always am among an and any anyone are around "
    "as at be because been before being below between both but by can cannot could did do does doing done down during "
    "each either else enough especially etc even ever every for from further get gets getting give given gives had has "
    "have having he her here hers herself him himself his how however i if in into is it its itself just least less let "
    "like made make makes many may me might more most much must my myself near nearly neither no nor not now of off "
    "often on once one's only onto or other others otherwise our ours out over own per perhaps quite rather really same "
    "several she should since so some something sometimes such than that the their theirs them themselves then there "
    "therefore these they thing things this those though through throughout thus to together too toward towards under "
    "unless until up upon us usually very via was we well were what whatever when where whether which while who whom "
    "whose why will with within without would yet you your yours yourself s t".split()
)
# Words a faithful answer uses to frame a fact it takes from the evidence; they make no claim.
FRAMING_WORDS = frozenset(
    "patient patients person persons people individual individuals someone clinician clinicians doctor answer question "
    "likely most include includes including included involve involves involved describe described describes called "
    "known refer refers referred mean means meant term terms case cases example examples feature features type types "
    "kind kinds form forms way ways important key main part parts general generally specific particular certain "
    "related according consider considered based".split()
)
NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "first": "1st", "second": "2nd", "third": "3rd",
    "twice": "2x", "half": "1/2", "quarter": "1/4", "once": "1x",
}
ROMAN_TYPE = re.compile(r"\b([Bb]ipolar|[Tt]ype|[Ss]tage|[Gg]rade|[Pp]hase|[Cc]luster|[Cc]lass)\s+(I{1,3}|IV|V)\b")
_STEMMER = PorterStemmer()
LIST_ITEM = re.compile(r"^(?:\(?([A-Za-z]|\d{1,2})[.)]|[•●▪◦‣∙·►▸▶■◆➢\-–]\.?)\s+")  # "•. " as web pages print bullets


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _STEMMER.stem(word)


def join_wrapped(text: str, line: str) -> str:
    """Append a wrapped line: a space between words, none where a Chinese line broke mid-sentence."""
    if not text or not line:
        return text or line
    return text + line if WIDE_CHAR.match(text[-1]) and WIDE_CHAR.match(line[0]) else f"{text} {line}"


def chinese_words(text: str) -> list[str]:
    """Chinese text cut into words by jieba (its bundled dictionary; loaded once, on first use)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba.lcut(text)


def is_chinese(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    return bool(letters) and sum(len(run) for run in CJK_RUN.findall(text)) / letters >= 0.3


def latin_terms(text: str, keep_framing: bool = False) -> list[tuple[str, str]]:
    """(surface word, normalised term) for each content word: numbers as digits, words stemmed,
    a type numeral kept ("bipolar I" and "bipolar II" differ)."""
    terms = []
    text = ROMAN_TYPE.sub(lambda m: f"{m.group(1)} roman{m.group(2).lower()}", text)
    for word in LATIN.findall(text.lower().replace("-", " ").replace("/", " ")):
        word = word.replace(",", "")
        if word in NUMBER_WORDS:
            terms.append((word, NUMBER_WORDS[word]))
        elif word[0].isdigit():
            terms.append((word, word.rstrip("0").rstrip(".") if "." in word else word))
        elif len(word) >= 3 and word not in FUNCTION_WORDS and (keep_framing or word not in FRAMING_WORDS):
            terms.append((word, stem(word)))
    return terms


def cjk_terms(text: str) -> list[tuple[str, str]]:
    return [(run[i : i + 2], run[i : i + 2]) for run in CJK_RUN.findall(text) for i in range(max(1, len(run) - 1))]


def content_terms(text: str) -> list[tuple[str, str]]:
    """Latin content words and CJK bigrams of a text, as (surface, normalised) pairs."""
    return latin_terms(text) + cjk_terms(text)


def term_set(text: str) -> set[str]:
    """Every normalised term of a text, framing words included (evidence side)."""
    return {t for _, t in latin_terms(text, keep_framing=True)} | {t for _, t in cjk_terms(text)}


def unsupported_terms(text: str, evidence: str) -> list[str]:
    """The surface forms of the text's content terms that the evidence does not contain, in order, once each."""
    known = term_set(evidence)
    missing = [surface for surface, term in content_terms(text) if term not in known]
    return list(dict.fromkeys(missing))


# Plain word matching, for the filter's length and duplicate rules, dedup and the lexical support
# score (which predates the term gate and is kept as an informative number).
WORD = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]")  # Latin words; each CJK character counts as a word
STOPWORDS = frozenset(
    "a an and are as at be been being but by can could did do does for from had has have how i if in into is it its "
    "may might more most no not of on or other our should so some such than that the their them then there these they "
    "this those to was were what when where which while who why will with would you your".split()
)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 2 or w >= "\u3400")]


def normalize_question(text: str) -> str:
    return " ".join(words(text))


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def support(answer: str, evidence_text: str) -> float:
    """Share of the answer's content words that occur in the evidence (prefix match tolerates inflection)."""
    answer_words = content_words(answer)
    if not answer_words:
        return 0.0
    evidence_words = set(content_words(evidence_text))
    stems = {w[:5] for w in evidence_words}
    hits = sum(1 for w in answer_words if w in evidence_words or w[:5] in stems)
    return hits / len(answer_words)


# Where a sentence may end: a stop with its closing quotes or brackets. A Latin stop ends a sentence only before
# whitespace or the text's end ('3.5 mg', 'i.e.', 'www.nimh.nih.gov' go on), and never after an abbreviation.
STOP = re.compile(r"[.!?。！？]+[\"'”’)）]*")
ABBREVIATION = re.compile(r"(?:^|[\s(])(?:e\.g|i\.e|vs|cf|al|approx|Dr|Mr|Mrs|Ms|Prof|Fig|Figs|No|St)$")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each sentence of text[start:end], its stop and closing quotes included, a trailing
    piece without a stop last; the spans cover the text (whitespace between sentences opens the next).
    NIMH's statistics page ('14.0 per 100,000 in 2021') had been cut at each decimal point."""
    end = len(text) if end is None else end
    spans, opened = [], start
    for stop in STOP.finditer(text, start, end):
        latin = stop.group(0)[0] in ".!?"
        if latin and stop.end() < end and not text[stop.end()].isspace():
            continue
        if stop.group(0)[0] == "." and ABBREVIATION.search(text, opened, stop.start()):
            continue
        spans.append((opened, stop.end()))
        opened = stop.end()
    if opened < end and text[opened:end].strip():
        spans.append((opened, end))
    return spans


def list_lead_in(item: str, texts: list[str]) -> str:
    """The line that introduces the list of which `item` is an item ('Several conditions can look like major
    depression and must be considered:'), read in the first of texts that holds item; '' when item is in no
    list or no text holds its lead-in. A list that chunking cut is followed into a text (an overlapping
    chunk) that holds the first item of the cut part: what a list's items are about is often said only there."""
    label = LIST_ITEM.match(item)  # an item quoted with its label ('1. Adjustment disorder: ...')
    for text in texts:
        at = text.find(item)
        if at < 0:
            continue
        at += label.end() if label else 0
        if lead := _lead_in_at(text, at):
            return lead
        opening = text.lstrip().split("\n", 1)[0]
        opens = LIST_ITEM.match(opening)
        if opens and at > 0:  # the text opens inside the list
            for other in texts:
                if other is not text and (start := other.find(opening)) > 0 and (lead := _lead_in_at(other, start + opens.end())):
                    return lead
    return ""


def _lead_in_at(text: str, at: int) -> str:
    """The lead-in of the list whose item's text starts at `at` (after its label), if this text holds it."""
    lines = [line.strip() for line in text[:at].split("\n")]
    k = len(lines) - 1
    if not LIST_ITEM.match(lines[k] + " "):  # the item's label ('3. ') ends where its text starts
        return ""
    k -= 1
    while k >= 0 and (not lines[k] or LIST_ITEM.match(lines[k])):
        k -= 1
    return lines[k] if k >= 0 and lines[k].endswith((":", "：")) else ""
