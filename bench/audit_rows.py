"""Independent audit of generated QA training rows (a second opinion next to the product's filter).

Deliberately self-contained: it imports nothing from ``ragtune`` and its rules are written from a plain
description of what a good row looks like, not from the filter's code, so the two can disagree.

Rules (a row "meets the rules" when it passes all of them):
  markup            no HTML/XML tags or entities, JSON debris or Markdown debris in any text the user sees
  self_contained    the question / patient turns do not refer to a source ("the chapter", "上文", ...)
  is_question       every task except counselling_dialogue ends its question with "?" / "？"
  vignette_has_case a clinical_vignette has >= 3 sentences, an age or a setting, and >= 3 case words
                    that also occur in the evidence
  supported_terms   every content term of the answer / clinician turns occurs in the cited evidence
                    (Chinese: >= 90 % of CJK bigrams); a clinician turn that ends in a question asks: its
                    statements may also use the patient's earlier words, its question is free;
                    unanswerable rows are exempt
  language          en: CJK < 5 % of letters; zh: CJK >= 30 % of letters (question, answer, turns)
  not_restating     answer/question content-word Jaccard < 0.7 and the answer is not inside the question
  spans_exact       each supporting span's text == evidence[chunk_id].text[start:end]
  question_fits     (English pair tasks) a comparison names two things, not the two halves of the chapter's
                    title, and the answer holds both (or is a "Condition: ..." line and the other is the
                    chapter's) and sets them apart; condition names and acronyms of the question are in the
                    answer or its section; the people the answer is about are in the question (unless it
                    asks who or when); a vignette's case does not give its diagnosis or mix an adult with
                    a child's words; no "a/an" before a plural, no doubled word
  hops_supported    a multi-hop row (one with "hops") has two hops or more from two chapters or more; each
                    hop's spans are exact text of its own chunk, its answer's terms are in that chunk alone
                    (not the other hop's), its answer is part of the row's, and the row's question asks
                    each hop's; every other rule reads each hop as a row of its own (its question, answer
                    and chunk)
A row whose question or answer is missing or empty also gets a "fields" failure.

Usage: python bench/audit_rows.py PATH [PATH ...] [--json OUT.json] [--show N] [--recursive]
PATH is a JSONL file or a folder (its *.jsonl files, skipping *.failures.jsonl). Exit code is always 0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

RULES = (
    "markup",
    "self_contained",
    "is_question",
    "vignette_has_case",
    "supported_terms",
    "language",
    "not_restating",
    "spans_exact",
    "question_fits",
    "hops_supported",
)
EXTRA_RULES = ("fields",)

# --------------------------------------------------------------------------------------------------
# Text utilities
# --------------------------------------------------------------------------------------------------

CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{CJK_CLASS}]")
CJK_RUN = re.compile(f"[{CJK_CLASS}]+")
# Kana and Hangul count as "not English" for the en language check too.
EAST_ASIAN_RE = re.compile(f"[{CJK_CLASS}\u3040-\u30ff\uac00-\ud7af]")

STOPWORDS = frozenset(
    """
    a about above across after afterwards again against all almost alone along already also although always
    am among an and another any anyone anything are around as at be became because become becomes been before
    being below beside besides between both but by can cannot could did do does doing done down during each
    either else enough etc even ever every few for from further had has have having he her here hers herself
    him himself his how however i if in into is it its itself just least less many may me might mine more
    most mostly much must my myself neither never nevertheless no nobody none nor not nothing now of off
    often on once only onto or other others otherwise our ours ourselves out over own per perhaps rather
    same several she should since so some somehow someone something sometimes still such than that the their
    theirs them themselves then there thereby therefore these they this those though through throughout thus
    to together too toward towards under until up upon us very via was we well were what whatever when
    whenever where whereas wherever whether which while who whoever whole whom whose why will with within
    without would yet you your yours yourself yourselves one ones
    """.split()
) | frozenset(
    # generic words that carry no checkable content in this domain
    """
    patient patients person persons people individual individuals someone somebody symptom symptoms sign signs
    also often usually typically generally commonly common important importantly main key various different
    certain particular specific overall likely unlikely include includes included including involve involves
    involving example examples like such thing things way ways kind kinds type types aspect aspects factor
    factors part parts based using use used uses known called help helps helping make makes made need needs
    needed time times important however therefore thus because since whether although though yes okay sure
    really quite able around given get gets getting got may might can could should would will shall
    many much lot lots bit little new take takes taken taking took keep keeps kept keeping put puts
    come comes go goes going
    """.split()
) | frozenset(
    # conversational fillers of clinician turns in counselling dialogues
    """
    hear heard sounds sound understand understandable thank thanks sorry let tell telling talk talking know
    think feel feeling feelings right good okay glad happy share sharing something anything everything
    """.split()
)

NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}
# "one" is left out on purpose: in prose it is far more often a pronoun ("one of the ...") than a count.

TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|[a-z]+(?:'[a-z]+)?")
THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}\b)")


def _prep(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return THOUSANDS_RE.sub("", text)


def tokens(text: str) -> list[str]:
    """Lower-case Latin words (possessive 's dropped, contractions dropped) and numbers as strings."""
    out = []
    for tok in TOKEN_RE.findall(_prep(text)):
        if "'" in tok:
            head, tail = tok.split("'", 1)
            if tail != "s":  # don't, it's-as-"it is", you're, I've ... are function words
                if tail in ("t", "re", "ve", "ll", "d", "m"):
                    continue
            tok = head
        out.append(tok)
    return out


IRREGULAR = {"children": "child", "women": "woman", "men": "man", "feet": "foot", "teeth": "tooth",
             "mice": "mouse", "lives": "life", "wives": "wife", "better": "good", "worse": "bad"}


def _spelling(word: str) -> str:
    # British / American variants that would otherwise never meet
    word = IRREGULAR.get(word, word)
    word = word.replace("iour", "ior").replace("iz", "is").replace("yz", "ys")
    word = re.sub(r"(?<=[a-z])ae(?=[a-z])", "e", word)  # anaemia, paediatric, haemorrhage
    return re.sub(r"^oe(?=s)", "e", word)  # oesophagus


_INFLECTIONAL = (
    ("ingly", ""), ("edly", ""), ("ies", "y"), ("ied", "y"), ("ily", "y"),
    ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh"),
    ("ing", ""), ("ed", ""), ("ly", ""), ("s", ""),
)
_MIN_REST = {"ed": 4, "ly": 4}
_DERIVATIONAL = (
    "ations", "ation", "ition", "nesses", "ness", "ities", "ity", "ments", "ment",
    "ically", "ical", "ions", "ion", "ives", "ive", "ism", "ist", "ous", "ic", "al", "is", "e", "y",
)


@lru_cache(maxsize=1 << 18)
def stem(word: str) -> str:
    """Crude suffix stripper: up to two inflectional suffixes, then one derivational suffix, then undouble."""
    w = _spelling(word.lower())
    if len(w) <= 3 or w.isdigit():
        return w
    for _ in range(2):  # feelings -> feeling -> feel; families -> family -> famy
        for suffix, repl in _INFLECTIONAL:
            if w.endswith(suffix):
                rest = len(w) - len(suffix)
                if suffix == "s" and w.endswith(("ss", "us", "is")):
                    continue
                if rest >= _MIN_REST.get(suffix, 3):
                    w = w[:rest] + repl
                    break
        else:
            break
    for suffix in _DERIVATIONAL:
        if w.endswith(suffix) and len(w) - len(suffix) >= (3 if suffix in ("e", "y") else 4):
            w = w[: -len(suffix)]
            break
    if len(w) > 4 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]  # stopped -> stopp -> stop
    return w


def _number(tok: str) -> str | None:
    if tok[0].isdigit():
        return tok
    if tok in NUMBER_WORDS:
        return str(NUMBER_WORDS[tok])
    return None


def content_terms(text: str) -> list[tuple[str, str]]:
    """(surface, key) for each content term: numbers keyed '#<digits>', words keyed by their stem."""
    out = []
    for tok in tokens(text):
        num = _number(tok)
        if num is not None:
            out.append((tok, "#" + num))
        elif len(tok) >= 3 and tok not in STOPWORDS:
            out.append((tok, stem(tok)))
    return out


def cjk_bigrams(text: str) -> list[str]:
    grams = []
    for run in CJK_RUN.findall(text):
        grams.extend(run[i : i + 2] for i in range(len(run) - 1))
    return grams


_CN_DIGITS = "零一二三四五六七八九"


def chinese_numerals(n: int) -> set[str]:
    """Spellings of 0..99 in Chinese numerals (两 for 2 as well)."""
    if n < 0 or n > 99:
        return set()
    if n < 10:
        forms = {_CN_DIGITS[n]}
        if n == 2:
            forms.add("两")
        return forms
    tens, ones = divmod(n, 10)
    head = "十" if tens == 1 else _CN_DIGITS[tens] + "十"
    return {head + (_CN_DIGITS[ones] if ones else "")}


class Evidence:
    """Everything the support checks need to know about a row's cited text."""

    def __init__(self, text: str):
        self.text = text
        self.numbers: set[str] = set()
        self.stems: set[str] = set()
        self.words: set[str] = set()
        for tok in set(tokens(text)):
            num = _number(tok)
            if num is not None:
                self.numbers.add(num)
            self.words.add(tok)
            self.stems.add(stem(tok))
        self.bigrams = set(cjk_bigrams(text))
        self._long_stems = [s for s in self.stems if len(s) >= 6]

    def has_key(self, key: str) -> bool:
        if key.startswith("#"):
            num = key[1:]
            if num in self.numbers:
                return True
            if num.isdigit():
                return any(form in self.text for form in chinese_numerals(int(num)))
            return False
        if key in self.stems:
            return True
        # fallback for stems the stripper left apart (diagnost-ic / diagnos-is): a long shared prefix
        if len(key) >= 6:
            for other in self._long_stems:
                n = _common_prefix(key, other)
                if n >= 6 and n >= min(len(key), len(other)) - 2:
                    return True
        return False


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|vs|dr|mr|mrs|ms|approx|cf|st|fig|al)\.", re.IGNORECASE)
_SENT_SPLIT = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|(?<=[。！？])")


def sentences(text: str) -> list[str]:
    protected = _ABBREV.sub(lambda m: m.group(1) + "\u2024", text)
    parts = [p.strip() for p in _SENT_SPLIT.split(protected)]
    return [p.replace("\u2024", ".") for p in parts if p and re.search(r"[^\W_]", p)]


def _short(items, limit: int = 12) -> str:
    items = list(items)
    text = ", ".join(items[:limit])
    return text + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _text(value) -> str:
    return value if isinstance(value, str) else ""


# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------

MARKUP_PATTERNS = [
    ("HTML/XML tag", re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")),
    ("HTML entity", re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,9}|#\d{1,7}|#x[0-9A-Fa-f]{1,6});")),
    ("JSON key", re.compile(r"\"[A-Za-z_][A-Za-z0-9_]{0,30}\"\s*:")),
    ("JSON brace/quote", re.compile(r"\{\s*\"|\"\s*\}|\[\s*\"|\"\s*\]")),
    ("curly brace", re.compile(r"[{}]")),
    ("escape sequence", re.compile(r"\\(?:[nrt\"\\/]|u[0-9A-Fa-f]{4})")),
    ("Markdown bold/underline", re.compile(r"\*\*|__")),
    ("Markdown heading", re.compile(r"##|(?:^|\n)\s*#\s")),
    ("Markdown code fence", re.compile(r"```|~~~")),
    ("Markdown link", re.compile(r"\[[^\]\n]+\]\([^)\s]+\)")),
    ("Markdown table", re.compile(r"\|\s*:?-{3,}|\|[^|\n]*\|")),
]


def _markup_issue(text: str) -> str | None:
    for name, pattern in MARKUP_PATTERNS:
        m = pattern.search(text)
        if m:
            return f"{name} {m.group(0).strip()[:30]!r}"
    # stray square brackets: unbalanced [ ] (a balanced "[1]" citation is left to the other rules)
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                return "stray ']'"
    if depth > 0:
        return "stray '['"
    return None


def visible_fields(row: dict) -> list[tuple[str, str]]:
    fields = [("question", _text(row.get("question"))), ("answer", _text(row.get("answer")))]
    for i, turn in enumerate(_turns(row)):
        fields.append((f"turn {i} ({turn['role']})", turn["content"]))
    return fields


def _turns(row: dict) -> list[dict]:
    out = []
    for turn in row.get("turns") or []:
        if isinstance(turn, dict):
            out.append({"role": str(turn.get("role", "")), "content": _text(turn.get("content"))})
    return out


def check_markup(row: dict) -> list[str]:
    issues = []
    for name, text in visible_fields(row):
        issue = _markup_issue(text)
        if issue:
            issues.append(f"{name}: {issue}")
    return issues


_SOURCE_NOUNS = (
    r"chapters?|passages?|text(?!\s+messag)|texts|excerpts?|extracts?|documents?|handbook|sections?|articles?|"
    r"paragraphs?|materials?|source\s+(?:text|material)|context(?!\s+of)"
)
SOURCE_EN = [
    re.compile(rf"\b(?:the|this|that|these|those|above|provided|given|preceding|previous)\s+(?:{_SOURCE_NOUNS})\b", re.I),
    re.compile(r"\b(?:(?:mentioned|described|listed|stated|noted|outlined|discussed|shown|presented|explained|"
               r"cited|quoted|defined|detailed|summari[sz]ed|given|as)\s+above|the\s+above|above[- ]mentioned|"
               r"(?<!or )(?<!and )above\s*[?.,;:])", re.I),
    re.compile(r"\bthe\s+following\b(?!\s+(?:day|days|morning|mornings|evening|night|week|weeks|month|months|"
               r"year|years|visit|appointment|session|consultation|review|weekend))", re.I),
    re.compile(r"\b(?:as|previously|earlier|already|above|the)\s+mentioned\b|\bmentioned\s+(?:above|earlier|"
               r"previously|before|here)\b|\baforementioned\b", re.I),
    re.compile(r"\baccording\s+to\s+(?:the\s+)?(?:author|authors|writer|guide)\b", re.I),
]
_CN_QUANT = "0-9０-９一二三四五六七八九十百千万两几半岁年月周天日次个时钟秒克度℃倍分项条种级型%及或"
SOURCE_ZH = [
    re.compile(r"本章|本节|本文|上文|下文|文中|原文|材料中|资料中|段落中|上述|如上所述|下列|如下"),
    re.compile(r"[该这]段(?!时间|日子|期间|经历|关系|感情|婚姻|路)"),
    re.compile(rf"(?<![{_CN_QUANT}])以上"),  # 以上 as "the above", not "65岁以上" (over 65)
]


def check_self_contained(row: dict) -> list[str]:
    texts = [("question", _text(row.get("question")))]
    for i, turn in enumerate(_turns(row)):
        if turn["role"] == "patient" and turn["content"] != texts[0][1]:
            texts.append((f"turn {i} (patient)", turn["content"]))
    issues = []
    for name, text in texts:
        for pattern in SOURCE_EN + SOURCE_ZH:
            m = pattern.search(text)
            if m:
                issues.append(f"{name} refers to its source: {m.group(0)!r}")
                break
    return issues


def check_is_question(row: dict) -> list[str]:
    if row.get("task") == "counselling_dialogue":
        return []
    question = _text(row.get("question")).rstrip().rstrip("\"'\u201d\u2019)]）」』").rstrip()
    if question.endswith(("?", "？")):
        return []
    tail = sentences(question)[-1] if sentences(question) else question
    return [f"last sentence is not a question: {tail[-60:]!r}"]


AGE_EN = re.compile(
    r"\b(?:years?|yrs?|months?|weeks?|days?)[- ]old\b|\baged?\s+(?:of\s+)?\d{1,3}\b|\bage\s+of\s+\d|"
    r"\b\d{1,3}\s*(?:y/?o|y\.o\.|yrs?)\b|"
    r"\bin\s+(?:his|her|their)\s+(?:early\s+|mid[- ]?|late\s+)?(?:teens|twenties|thirties|forties|fifties|"
    r"sixties|seventies|eighties|nineties|\d0s)\b|"
    r"\b(?:teen|teens|teenage|teenager|adolescent|toddler|infant|baby|newborn|neonate|child|schoolchild|boy|"
    r"girl|elderly|pensioner|retiree|retired|middle-aged|student|undergraduate|pupil|schoolboy|schoolgirl)\b|"
    r"\b(?:young|older|old)\s+(?:man|woman|adult|mother|father|person)\b",
    re.I,
)
SETTING_EN = re.compile(
    r"\b(?:clinic|clinics|emergency|a&e|primary\s+care|gp|general\s+practi(?:ce|tioner)|school|college|"
    r"university|hospital|ward|outpatient|inpatient|surgery|practice|care\s+home|nursing\s+home|prison|"
    r"presents?|presented|presenting|brought\s+(?:in|to|by)|attends?|attended|referred|admitted|consults?|"
    r"visits?|seen\s+(?:in|at|by)|appointment|consultation|review)\b",
    re.I,
)
AGE_ZH = re.compile(r"\d+\s*岁|[一二三四五六七八九十两]+岁|青少年|儿童|老年|老人|男孩|女孩|婴儿|幼儿|中年|学生|少年|青年")
SETTING_ZH = re.compile(r"门诊|急诊|就诊|医院|学校|病房|住院|来诊|诊所|社区|转诊|陪同|带来|前来|就医|看诊|复诊|咨询")
CASE_GENERIC = frozenset(
    """
    year years month months week weeks aged woman women man men male female girl boy child children clinic
    hospital department emergency presents presented presenting brought reports reported describes described
    says said states stated tells history visit visits appointment doctor service recently recent last past
    """.split()
)
CASE_GENERIC_ZH = frozenset("患者 病人 女性 男性 岁的 一名 一位 医生 就诊 门诊 近来 最近 可能 什么 诊断".split())


def check_vignette(row: dict, evidence: Evidence) -> list[str]:
    if row.get("task") != "clinical_vignette":
        return []
    question = _text(row.get("question"))
    sents = sentences(question)
    issues = []
    if len(sents) < 3:
        issues.append(f"only {len(sents)} sentence(s), a case needs at least 3")
    if not (AGE_EN.search(question) or SETTING_EN.search(question) or AGE_ZH.search(question)
            or SETTING_ZH.search(question)):
        issues.append("no age and no setting")
    case = " ".join(sents[:-1]) if len(sents) > 1 else question
    matched = set()
    for tok in tokens(case):
        if len(tok) > 3 and tok not in STOPWORDS and tok not in CASE_GENERIC and _number(tok) is None:
            key = stem(tok)
            if evidence.has_key(key):
                matched.add(key)
    matched |= {g for g in cjk_bigrams(case) if g in evidence.bigrams and g not in CASE_GENERIC_ZH}
    if len(matched) < 3:
        issues.append(f"{len(matched)} presenting feature(s) found in the evidence ({_short(sorted(matched))}), need 3")
    return issues


def _unsupported(text: str, evidence: Evidence) -> tuple[list[str], str | None]:
    """Unsupported Latin terms/numbers, and a note when the CJK bigram coverage is under 90 %."""
    missing, seen = [], set()
    for surface, key in content_terms(text):
        if key in seen:
            continue
        seen.add(key)
        if not evidence.has_key(key):
            missing.append(surface)
    note = None
    grams = cjk_bigrams(text)
    if grams:
        absent = [g for g in grams if g not in evidence.bigrams]
        coverage = 1 - len(absent) / len(grams)
        if coverage < 0.9:
            note = f"CJK bigram coverage {coverage:.0%} < 90% (missing {_short(dict.fromkeys(absent), 8)})"
    return missing, note


def check_supported(row: dict, evidence: Evidence) -> list[str]:
    if row.get("task") == "unanswerable":
        return []
    answer = _text(row.get("answer"))
    texts = [("answer", answer, evidence)]
    turns = _turns(row)
    for i, turn in enumerate(turns):
        if turn["role"] != "clinician" or turn["content"] == answer:
            continue
        if re.search(r"[?？]\s*$", turn["content"]):  # it asks: what it states may only say back the patient's words
            said = " ".join(t["content"] for t in turns[:i] if t["role"] == "patient")
            stated = " ".join(s for s in re.split(r"(?<=[.!?。！？])\s*", turn["content"]) if s and not re.search(r"[?？]\s*$", s))
            stated = re.sub(r"^(?:听起来|谢谢你告诉我|我能感受到)", "", stated).replace("你", "我")  # Chinese said back: 你 is the patient's 我
            texts.append((f"turn {i} (clinician, asking)", stated, Evidence(f"{evidence.text}\n{said}")))
        else:
            texts.append((f"turn {i} (clinician)", turn["content"], evidence))
    issues = []
    for name, text, cited in texts:
        missing, note = _unsupported(text, cited)
        if missing:
            issues.append(f"{name}: not in evidence: {_short(missing)}")
        if note:
            issues.append(f"{name}: {note}")
    return issues


def cjk_share(text: str) -> tuple[float, int]:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0, 0
    return sum(1 for ch in letters if EAST_ASIAN_RE.match(ch)) / len(letters), len(letters)


def check_language(row: dict) -> list[str]:
    lang = str(row.get("language") or "en").lower()
    zh = lang.startswith("zh")
    issues = []
    for name, text in visible_fields(row):
        share, n = cjk_share(text)
        if n == 0:
            continue
        if zh and share < 0.30:
            issues.append(f"{name}: CJK {share:.0%} of letters on a zh row (needs >= 30%)")
        elif not zh and share >= 0.05:
            issues.append(f"{name}: CJK {share:.0%} of letters on an {lang} row (needs < 5%)")
    return issues


def _norm_words(text: str) -> str:
    return " ".join(re.findall(rf"[^\W_]+|[{CJK_CLASS}]", text.lower()))


def _content_set(text: str) -> set[str]:
    return {key for _, key in content_terms(text)} | set(cjk_bigrams(text))


def check_not_restating(row: dict) -> list[str]:
    question, answer = _text(row.get("question")), _text(row.get("answer"))
    issues = []
    qs, as_ = _content_set(question), _content_set(answer)
    if qs and as_:
        jaccard = len(qs & as_) / len(qs | as_)
        if jaccard >= 0.7:
            issues.append(f"answer/question content-word Jaccard {jaccard:.2f} >= 0.70")
    na, nq = _norm_words(answer), _norm_words(question)
    # a one- or two-word pick from options named in the question ("Lithium.") is not a restatement
    if na and len(na.split()) >= 3 and f" {na} " in f" {nq} ":
        issues.append("answer is contained in the question")
    return issues


def check_spans(row: dict) -> list[str]:
    chunks: dict[str, list[str]] = {}
    for ev in row.get("evidence") or []:
        if isinstance(ev, dict) and ev.get("chunk_id") is not None:
            chunks.setdefault(str(ev["chunk_id"]), []).append(_text(ev.get("text")))
    issues = []
    for i, span in enumerate(row.get("supporting_spans") or []):
        if not isinstance(span, dict):
            issues.append(f"span {i}: not an object")
            continue
        cid = str(span.get("chunk_id"))
        start, end, text = span.get("start"), span.get("end"), span.get("text")
        if cid not in chunks:
            issues.append(f"span {i}: chunk {cid!r} is not in the row's evidence")
        elif not (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)):
            issues.append(f"span {i}: offsets {start!r}:{end!r} are not integers")
        elif not any(0 <= start <= end <= len(t) and t[start:end] == text for t in chunks[cid]):
            got = chunks[cid][0][start:end] if 0 <= start <= end else ""
            issues.append(f"span {i}: text != chunk[{start}:{end}] ({got[:30]!r} vs {_text(text)[:30]!r})")
    return issues


COMPARE = re.compile(r"\b(?:difference|differences|differ|differs|distinguish\w*|apart|versus|vs|compare\w*)\b", re.I)
PEOPLE = {
    "children": r"child|children|childhood|kids?",
    "adolescents": r"adolescen\w*|teens?|teenagers?|youth|young people",
    "older adults": r"older adults?|older people|elderly",
    "pregnancy": r"pregnan\w*|postpartum|perinatal|after childbirth",
    "women": r"wom[ae]n|females?|girls?",
    "men": r"\bmen\b|males?|boys?",
}
ASKS_FOR_PEOPLE = re.compile(r"(?:^|,\s*and\s+)(?:who|whom|when|at what age|in whom)\b|\b(?:which|what) (?:people|groups?|ages?|age group)\b", re.I)
CHILD_TALK = re.compile(r"\b(?:the child|child's|his parents|her parents|kindergarten)\b", re.I)
NAMED_CONDITION = re.compile(r"\b((?:[A-Za-z][\w\-/']*\s+){1,2})(disorder|nervosa|phobia|depression|mania|episode)\b", re.I)
CONDITION_FILLER = frozenset("a an the of for in with and or is are what which how does do between from about someone people person other".split())


def _keys(text: str) -> set[str]:
    return {key for _, key in content_terms(text)}


def _compared(question: str) -> list[str]:
    """The things a comparison question puts side by side."""
    body = question.rstrip(" ?？")
    for pattern in (r"(?:is|are|can)\s+(.+?)\s+(?:be\s+)?(?:told apart|distinguished|different|differ)\s+from\s+(.+)$",
                    r"between\s+(.+?)\s+and\s+(.+)$", r"tell\s+(.+?)\s+apart\s+from\s+(.+)$",
                    r"distinguish\w*\s+(.+?)\s+from\s+(.+)$", r"(?:do|does)\s+(.+?)\s+and\s+(.+?)\s+differ",
                    r"(.+?)\s+(?:versus|vs\.?|compared? (?:with|to))\s+(.+)$", r"(?:do|does)\s+(.+?)\s+differ\s+from\s+(.+)$"):
        found = re.search(pattern, body, re.I)
        if found:
            return [found.group(1), found.group(2)]
    return []


def _acronym_of(text: str) -> set[str]:
    words = [w for w in re.split(r"[\s\-/]+", re.sub(r"[^\w\s\-/]", " ", text)) if w]
    return {"".join(w[0] for w in words[i:j]).upper() for i in range(len(words)) for j in range(i + 2, min(len(words), i + 6) + 1)}


def _holds(text: str, thing: str) -> bool:
    want = _keys(thing) - {"disord", "relat", "condit"}
    if not want:
        return True
    caps = set(re.findall(r"\b[A-Z]{2,6}\b", thing))
    return len(want & _keys(text)) * 2 >= len(want) or bool(caps & (_acronym_of(text) | set(re.findall(r"\b[A-Z]{2,6}\b", text))))


def _apart(answer: str, things: list[str]) -> bool:
    """The answer compares: cut at its contrasts (';', whereas, while, but, rather than, unlike...), each
    compared thing has a part of its own."""
    parts = re.split(r";|\b(?:whereas|while|but|rather than|unlike|in contrast|instead of|than)\b", answer, flags=re.I)
    homes = [{k for k, part in enumerate(parts) if _holds(part, t)} for t in things]
    return len(parts) > 1 and all(homes) and any(a != b for a in homes[0] for b in homes[1])


SPEAKS_FOR_SELF = re.compile(r"\b(?:i|i'm|i've|i'd|my|me|myself|we|our)\b|我", re.I)
NOT_A_PATIENT = re.compile(r"\b(?:patients|the patient|a patient|clinician|clinicians|handbook|passage|chapter|criteria)\b|患者", re.I)
# What a helper says, not a person asking for help: advice to "you", an offer of help, a counsellor's reflection.
HELPER_TALK = re.compile(
    r"\b(?:i (?:would )?(?:recommend|suggest|advise)|you (?:should|need to|must|might want to)|(?:how|what) can i do for you|how can i help|"
    r"here to (?:help|support)|as an? (?:ai|assistant|doctor|therapist|counsellor|counselor)|it sounds like|i hear you|"
    r"thank you for (?:sharing|telling)|let me explain|your (?:symptoms|diagnosis|treatment|condition))\b|我建议|你应该|听起来|作为(?:医生|咨询师)",
    re.I)


def speaks_as_patient(said: str, k: int) -> bool:
    """Patient turn k speaks for the person seeking help: in the first person (a later turn may just ask),
    never in a clinician's, a document's or a helper's words."""
    own = SPEAKS_FOR_SELF.search(said) or (k and said.rstrip().endswith(("?", "？")))
    return bool(own) and not NOT_A_PATIENT.search(said) and not HELPER_TALK.search(said)


def patient_voice(rows) -> tuple[int, int]:
    """(patient turns, of them not speaking as a patient) over the dialogue rows."""
    said = [[_text(t.get("content")) for t in row.get("turns") or [] if isinstance(t, dict) and t.get("role") == "patient"]
            for row in rows if isinstance(row, dict) and row.get("task") == "counselling_dialogue"]
    return sum(map(len, said)), sum(not speaks_as_patient(s, k) for turns in said for k, s in enumerate(turns))


def check_patient_turns(row: dict) -> list[str]:
    """A counselling dialogue's patient speaks for themself, and their opening is about something."""
    turns = [t for t in (row.get("turns") or []) if isinstance(t, dict)]
    said = [_text(t.get("content")) for t in turns if t.get("role") == "patient"] or [_text(row.get("question"))]
    issues = [f"a patient turn not in the patient's own voice: {s[:50]!r}" for k, s in enumerate(said) if not speaks_as_patient(s, k)]
    first_reply = next((_text(t.get("content")) for t in turns if t.get("role") == "clinician"  # an asking turn (it ends in a question)
                        and not _text(t.get("content")).rstrip().endswith(("?", "？"))), _text(row.get("answer")))  # says the opening back
    if re.search(r"\b(?:this|that|it|them)\W*$", said[0], re.I) and not (_keys(said[0]) & _keys(first_reply)):
        issues.append("the opening asks about nothing it names")
    roots = lambda text: ({w[:4] for w in re.findall(r"[a-z]{4,}", text.lower())} - {"feel", "thin", "time", "make", "like", "know", "want", "that", "this", "have", "with", "what"}  # noqa: E731
                          | {text[i:i + 2] for i in range(len(text) - 1) if re.fullmatch(r"[\u4e00-\u9fff]{2}", text[i:i + 2])} - {"什么", "是否", "怎么", "如何", "我想", "一个", "问题"})  # Chinese: two-character words
    for k in range(0, len(turns) - 1, 2):
        asked, reply = _text(turns[k].get("content")), _text(turns[k + 1].get("content"))
        help_given = re.search(r"\bhelp|\btreat|\bcure\b|better\b", asked, re.I) and re.search(r"therap|treat|medic|\bcbt\b", reply, re.I)
        named = set(re.findall(r"\b[A-Z]{2,6}\b", asked)) & (set(re.findall(r"\b[A-Z]{2,6}\b", reply)) | _acronym_of(reply))  # 'what is OCD?'
        if turns[k].get("role") == "patient" and not (roots(asked) & roots(reply) or help_given or named):
            issues.append(f"clinician reply {k // 2 + 1} does not answer the patient turn before it")
    return issues


def _lead_line(row: dict, answer: str) -> str:
    """The nearest line ending in ':' above the answer in its passage ('The clinician distinguishes OCD from:'):
    what a list item is about is often said only there."""
    for ev in row.get("evidence") or []:
        text = _text(ev.get("text")) if isinstance(ev, dict) else ""
        at = text.find(answer[:60]) if answer else -1
        if at > 0:
            return next((line for line in reversed(text[:at].splitlines()) if line.strip().endswith(":")), "")
    return ""


def check_fits(row: dict) -> list[str]:
    if row.get("task") == "counselling_dialogue":
        return check_patient_turns(row)
    if row.get("task") == "unanswerable" or row.get("language", "en") != "en":
        return []
    question, answer = _text(row.get("question")), _text(row.get("answer"))
    chapter = _text(row.get("chapter_title"))
    sections = [_text(p) for e in (row.get("evidence") or [])[:1] if isinstance(e, dict) for p in (e.get("section_path") or [])]
    where = " ".join([chapter, _text(row.get("focus")), *sections, _lead_line(row, answer)])
    issues = []
    if (re.search(r"\b(?:a|an)\s+(?:\w+\s+)?\w+(?:ders|sodes|toms|tions|pies|ments)\b", question, re.I)
            or re.search(r"\b(\w{3,})\s+\1\b", question, re.I)
            or re.search(r"\btreatments? (?:for|of) (?:the )?[\w\s\-]*?(?:therapy|therapies|treatments?|medications?)\b", question, re.I)):
        issues.append("the question is not well formed")
    if row.get("task") == "clinical_vignette":
        diagnosis = answer.split(":", 1)[0] if ":" in answer else ""
        stated = diagnosis and (_keys(diagnosis) <= _keys(question) or bool(_acronym_of(diagnosis) & set(re.findall(r"\b[A-Z]{2,6}\b", question))))
        if stated:
            issues.append(f"the case gives away its diagnosis ({diagnosis})")
        ages = [int(a) for a in re.findall(r"\b(\d{1,3})[- ]year[- ]old\b", question)]
        if ages and min(ages) >= 18 and CHILD_TALK.search(question):
            issues.append("an adult patient is spoken of as a child")
        return issues
    if COMPARE.search(question):
        things = _compared(question)
        halves = [h for h in re.split(r"\s+and\s+", chapter, flags=re.I) if h]
        if len(things) < 2:
            issues.append("a comparison that names fewer than two things")
        elif len(halves) == 2 and all(_keys(t) <= _keys(chapter) for t in things):
            issues.append(f"the comparison is the chapter title {chapter!r} cut in two")
        else:
            label = answer.split(":", 1)[0] if re.match(r"^\s*(?:\d+\.\s*)?[^:]{3,80}:\s", answer) else ""
            absent = [t for t in things if not (_holds(answer, t) or (label and _holds(label, t)))]
            if len(absent) == 2 or (absent and not (label and _holds(where, absent[0]))):
                issues.append(f"the answer says nothing of {', '.join(absent)}")
            elif not absent and not label and not _apart(answer, things):
                issues.append("the answer describes but does not compare")
        return issues
    for found in NAMED_CONDITION.finditer(question):
        words = [w for w in found.group(1).split() if w.lower() not in CONDITION_FILLER]
        name = " ".join(words + [found.group(2)])
        if words and not _keys(" ".join(words)) <= _keys(answer) | _keys(where):
            issues.append(f"the question asks about {name}, the answer does not")
    for caps in set(re.findall(r"\b[A-Z]{2,6}\b", question)):
        if caps not in _acronym_of(answer + " " + where) and not re.search(rf"\b{caps}\b", answer + " " + where):
            issues.append(f"the question names {caps}, the answer does not")
    if not ASKS_FOR_PEOPLE.search(question):
        for people, pattern in PEOPLE.items():
            if re.search(rf"\b(?:{pattern})\b", answer, re.I) and not re.search(rf"\b(?:{pattern})\b", question + " " + where, re.I):
                issues.append(f"the answer is about {people}; the question does not say so")
    asked = {part for part, (in_question, _) in COURSE_PARTS.items() if re.search(in_question, question, re.I)}
    told = {part for part, (_, in_answer) in COURSE_PARTS.items() if re.search(in_answer, answer, re.I)}
    if asked and told - asked:
        issues.append(f"the question asks {' and '.join(sorted(asked))}; the answer also says {' and '.join(sorted(told - asked))}")
    return issues


# Two parts of a condition's course, as a question asks for each and as an answer states it: a question asking one,
# answered by a sentence that states both, asks less than it is told.
COURSE_PARTS = {
    "when it begins": (r"\b(?:when\b|at what age|how old|onset|begins?\b|starts?\b)", r"\b(?:begins?|began|starts?|onset)\b"),
    "how common it is": (r"\b(?:how (?:common|prevalent|often|many)|prevalen|percentage|proportion|(?:more|less) common|in whom)",
                         r"\d\s*(?:%|percent)|\bper ?cent\b|\b(?:more|less|as) common\b|\bprevalen"),
}


def evidence_text(row: dict) -> str:
    parts = []
    for ev in row.get("evidence") or []:
        if isinstance(ev, dict):
            parts.append(_text(ev.get("text")))
        elif isinstance(ev, str):
            parts.append(ev)
    return "\n".join(parts)


def hop_parts(row: dict) -> list[dict]:
    """Each hop of a multi-hop row as a row of its own: its question and answer, only its own chunk as evidence."""
    parts = []
    for hop in row.get("hops") or []:
        if not isinstance(hop, dict):
            continue
        own = [e for e in row.get("evidence") or [] if isinstance(e, dict) and e.get("chunk_id") == hop.get("chunk_id")]
        parts.append({"task": "factual_recall", "language": row.get("language", "en"), "question": _text(hop.get("question")),
                      "answer": _text(hop.get("answer")), "chapter_title": _text(hop.get("chapter_title")), "evidence": own,
                      "supporting_spans": hop.get("cites") or [], "focus": _text((hop.get("section_path") or [""])[-1])})
    return parts


def check_hops(row: dict) -> list[str]:
    hops = [h for h in row.get("hops") or [] if isinstance(h, dict)]
    if len(hops) < 2:
        return [f"{len(hops)} hop(s); a multi-hop row needs two or more"]
    issues = []
    if len({h.get("chapter_key") for h in hops}) < 2:
        issues.append("every hop is from one chapter")
    answer, question_keys = _text(row.get("answer")), {key for _, key in content_terms(_text(row.get("question")))}
    for n, (hop, part) in enumerate(zip(hops, hop_parts(row)), 1):
        if not part["evidence"]:
            issues.append(f"hop {n}: its chunk is not in the row's evidence")
            continue
        if not part["supporting_spans"] or any(str(c.get("chunk_id")) != str(hop.get("chunk_id")) for c in part["supporting_spans"] if isinstance(c, dict)):
            issues.append(f"hop {n}: cites no span, or a span of another chunk")
        issues += [f"hop {n}: {issue}" for issue in check_spans(part) + check_supported(part, Evidence(evidence_text(part)))]
        if part["answer"] not in answer:
            issues.append(f"hop {n}: its answer is not in the row's answer")
        unasked = [word for word, key in content_terms(part["question"]) if key not in question_keys]
        if unasked:
            issues.append(f"hop {n}: the row's question does not ask {_short(unasked)}")
    return issues


def audit_row(row: dict) -> list[tuple[str, str]]:
    """Every rule the row fails, as (rule, detail); an empty list means the row meets the rules. A multi-hop
    row is read hop by hop (hop_parts) by every rule but markup, language and hops_supported."""
    parts = hop_parts(row)
    if parts:
        found = [(rule, detail) for rule, detail in _audit_one(row, whole=True)]
        for n, part in enumerate(parts, 1):
            found += [(rule, f"hop {n}: {detail}") for rule, detail in _audit_one(part, whole=False)]
        return found
    return _audit_one(row, whole=False)


def _audit_one(row: dict, whole: bool) -> list[tuple[str, str]]:
    """The rules on one row; `whole`: a multi-hop row itself, held to the rules that read it whole."""
    if whole:
        checks = (("markup", lambda: check_markup(row)), ("language", lambda: check_language(row)),
                  ("is_question", lambda: check_is_question(row)), ("hops_supported", lambda: check_hops(row)))
        return [(rule, "; ".join(issues)) for rule, check in checks if (issues := check())]
    evidence = Evidence(evidence_text(row))
    found: list[tuple[str, str]] = []
    missing = [f for f in ("question", "answer") if not _text(row.get(f)).strip()]
    if missing:
        found.append(("fields", f"empty or missing: {', '.join(missing)}"))
    checks = (
        ("markup", lambda: check_markup(row)),
        ("self_contained", lambda: check_self_contained(row)),
        ("is_question", lambda: check_is_question(row)),
        ("vignette_has_case", lambda: check_vignette(row, evidence)),
        ("supported_terms", lambda: check_supported(row, evidence)),
        ("language", lambda: check_language(row)),
        ("not_restating", lambda: check_not_restating(row)),
        ("spans_exact", lambda: check_spans(row)),
        ("question_fits", lambda: check_fits(row)),
    )
    for rule, check in checks:
        issues = check()
        if issues:
            found.append((rule, "; ".join(issues)))
    return found


def _row_id(row: dict, index: int) -> str:
    return str(row.get("qa_id") or row.get("id") or f"row {index}")


def audit(rows) -> dict:
    """Audit an iterable of rows: {"rows", "passing", "share", "by_rule", "patient_turns", "patient_turns_not_as_patient",
    "multi_hop_rows", "multi_hop_rows_meeting", "failures": [{qa_id, rules, question}]}."""
    rows = list(rows)
    n = passing = joined = joined_passing = 0
    by_rule: Counter = Counter({rule: 0 for rule in RULES})
    failures = []
    for i, row in enumerate(rows):
        n += 1
        if not isinstance(row, dict):
            found = [("fields", f"row is a {type(row).__name__}, not an object")]
            row = {}
        else:
            found = audit_row(row)
        joined += bool(row.get("hops"))
        if not found:
            passing += 1
            joined_passing += bool(row.get("hops"))
            continue
        for rule in dict.fromkeys(rule for rule, _ in found):
            by_rule[rule] += 1
        failures.append({
            "qa_id": _row_id(row, i),
            "rules": [{"rule": rule, "detail": detail} for rule, detail in found],
            "question": _text(row.get("question")),
        })
    turns, not_patient = patient_voice(rows)
    return {
        "rows": n,
        "passing": passing,
        "share": passing / n if n else 0.0,
        "by_rule": dict(by_rule),
        "patient_turns": turns,
        "patient_turns_not_as_patient": not_patient,
        "multi_hop_rows": joined,
        "multi_hop_rows_meeting": joined_passing,  # every hop supported by its own chunk and fitting its question
        "failures": failures,
    }


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def input_files(paths, recursive: bool = False) -> list[Path]:
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.rglob("*.jsonl") if recursive else path.glob("*.jsonl"))
            files.extend(f for f in found if f.is_file() and not f.name.endswith(".failures.jsonl"))
        elif path.is_file():
            files.append(path)
        else:
            print(f"warning: {path} does not exist", file=sys.stderr)
    return files


def read_rows(files) -> tuple[list, list[str]]:
    rows, bad = [], []
    for file in files:
        with open(file, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    bad.append(f"{file}:{lineno}: {exc.msg}")
    return rows, bad


def report(result: dict, show: int) -> str:
    n, k = result["rows"], result["passing"]
    lines = [f"rows: {n}", f"meeting all rules: {k} ({100 * result['share']:.1f}%)",
             f"dialogue patient turns: {result['patient_turns']}, not speaking as a patient: {result['patient_turns_not_as_patient']}",
             "failing rows per rule:"]
    width = max(len(r) for r in result["by_rule"]) if result["by_rule"] else 10
    for rule, count in result["by_rule"].items():
        share = f"{100 * count / n:.1f}%" if n else "-"
        lines.append(f"  {rule:<{width}}  {count:>6}  {share:>6}")
    if show > 0 and result["failures"]:
        lines.append(f"first {min(show, len(result['failures']))} failing rows:")
        for failure in result["failures"][:show]:
            lines.append(f"- {failure['qa_id']}  | {failure['question'][:100]!r}")
            for item in failure["rules"]:
                lines.append(f"    {item['rule']}: {item['detail']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="JSONL files or folders of them")
    parser.add_argument("--json", dest="json_out", help="write the full result as JSON here")
    parser.add_argument("--show", type=int, default=10, help="print the first N failing rows (default 10)")
    parser.add_argument("--recursive", action="store_true", help="search folders recursively")
    args = parser.parse_args(argv)

    files = input_files(args.paths, args.recursive)
    rows, bad = read_rows(files)
    result = audit(rows)
    print(f"files: {len(files)}")
    if bad:
        print(f"unreadable lines: {len(bad)} (first: {bad[0]})")
    print(report(result, args.show))
    if args.json_out:
        out = dict(result)
        out["failures"] = [{"qa_id": f["qa_id"], "rules": f["rules"]} for f in result["failures"]]
        out["files"] = [str(f) for f in files]
        out["unreadable_lines"] = len(bad)
        Path(args.json_out).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    try:
        main()
    except SystemExit as exc:  # argparse errors: still report, still exit 0 as promised
        if exc.code not in (0, None):
            print("usage error (see --help)", file=sys.stderr)
    sys.exit(0)
