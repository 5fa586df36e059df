"""Questions an answer's structure dictates, so no model has to guess them: a differential line is asked how its
condition is told apart from the one its list contrasts with, a defining sentence what (when, how) its condition
is, a statement ('X includes ...', 'X helps people ...', 'X are the first-line medicines') what it says, a
glossary line ('Bulimia nervosa: ...') what it names, a question heading's whole section by its heading. Each is a pattern (one_of) the writer's grammar must follow; an unanswerable round borrows another
passage's built question, and a dialogue's patient asks its replies' built questions.
"""

from __future__ import annotations

import re
from typing import Any

from ragtune.generate.answer_units import PRONOUN_OPENING, AnswerUnit, units_for_task
from ragtune.generate.evidence import EvidencePlan, EvidenceRound, per_plan
from ragtune.generate.qa_fit import (AND_BEGINS, AND_SHARE, CONDITION_HEAD, DIFFERENTIAL_SECTION, course_breadth, differential_head,
                                     differential_line, populations)
from ragtune.tasks import DEFAULT_TASK, shape_of, task_style
from ragtune.text import list_lead_in

FRAMING_ZH = frozenset("概述 要点 简介 摘要 概要 总结 以下 列出".split())  # section-title words a question must not lean on

CLASS_OF_CONDITIONS = re.compile(r"^(?:depressive|anxiety|eating|feeding|trauma|stressor|stress|mood|psychotic|personality|sleep|substance)", re.I)


def chapter_condition(title: str) -> str:
    """The condition a chapter's title names, as a question names it: 'bipolar disorder' of 'Bipolar and Related
    Disorders', 'an eating disorder' of 'Feeding and Eating Disorders', 'a depressive disorder' of 'Depressive Disorders'."""
    words = re.sub(r"\s+and\s+related\b", "", title.strip(), flags=re.I)
    named = words != title.strip()  # "X and Related Disorders": X is one named disorder
    parts = re.split(r"\s+and\s+", words, flags=re.I)
    words = f"{parts[-2]} or {parts[-1]}" if len(parts) > 1 and parts[-2].endswith("-") else parts[-1]  # 'Trauma- and Stressor-Related
    words = re.sub(r"\bdisorders\b", "disorder", words, flags=re.I)
    phrase = words[:1].lower() + words[1:].lower() if not words[1:2].isupper() else words
    if named or not CLASS_OF_CONDITIONS.match(phrase) or not phrase.endswith("disorder"):
        return phrase
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


# The words before a condition in a list's lead-in that are no part of its name ('look like', 'before diagnosing').
NOT_A_NAME = r"(?!(?:the|a|an|like|from|of|and|or|with|before|after|than|as|to|can|may|must|look|looks|other|each|some|several|conditions?)\b|\w+ing\b|\w+es\b)"
LEAD_CONDITION = re.compile(rf"\b(?:{NOT_A_NAME}[A-Za-z][\w\-/]*\s+){{0,3}}{CONDITION_HEAD.pattern}", re.I)


def told_apart_from(plan: EvidencePlan, planned: EvidenceRound, unit: AnswerUnit) -> str:
    """What a differential line is told apart from: the condition its list's lead-in names ('Several conditions
    can look like major depression and must be considered:'), else its own chapter's (unit_condition). A chapter
    holds several conditions, and its differential list is often one condition's ('... before diagnosing
    posttraumatic stress disorder:'), which its title does not say."""
    own = next(e for e in planned.evidence if e["chunk_id"] == unit.chunk_id)
    section = [e["text"] for r in plan.rounds for e in r.evidence if e["section_path"] == own["section_path"] and e is not own]
    lead = list_lead_in(unit.text, [own["text"], *dict.fromkeys(section)])  # an earlier chunk of the section may hold a cut list's lead-in
    found = LEAD_CONDITION.search(re.split(r"(?<=[.!?])\s+", lead)[-1])  # its last sentence
    return as_named(found.group(0)) if found else unit_condition(plan, planned, unit)


def unit_condition(plan: EvidencePlan, planned: EvidenceRound, unit: AnswerUnit) -> str:
    """The condition a unit's own chapter (or document) is about, as a question names it: its passage's
    first title when that is a condition's name, else the plan's chapter when the passage is the chapter's
    own; '' otherwise. Never simply the plan's chapter: a round's passages may come from other chapters."""
    chunk = next(e for e in planned.evidence if e["chunk_id"] == unit.chunk_id)
    own = titled_condition(chunk["section_path"][0]) if chunk.get("section_path") else ""
    return own or (titled_condition(plan.chapter_title) if chunk.get("chapter_key", plan.chapter_key) == plan.chapter_key else "")


def structured_question(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit]) -> str | None:
    """The question an answer's structure dictates, as a pattern the model must follow: a differential
    line ('Body dysmorphic disorder: ...' in a differential section) is asked as how that condition is told
    apart from the one its list is about (told_apart_from), never as a difference between the halves of the
    chapter's title; a sentence that defines a condition is asked what (or when, how) it is; a statement,
    a glossary line or a treatment sentence what it says; a question heading's whole section is asked by
    that heading; an unanswerable round borrows such a question (borrowed_question)."""
    if shape_of(planned.task) == "abstention":
        return borrowed_question(plan, planned)
    if task_style(planned.task).joins_chapters:
        asked = hop_questions(plan, planned, units)
        return one_of(joined_question(asked, plan.language)[:-1], end=_end(plan.language)) if asked else None
    if not units or shape_of(planned.task) in ("dialogue", "vignette"):
        return None
    if units[0].kind == "section":  # the section's whole text answers its question heading
        heading = next(e["section_path"][-1] for e in planned.evidence if e["chunk_id"] == units[0].chunk_id).strip()
        return one_of(heading.rstrip("?？").strip(), end=_end(plan.language))
    chunk = next(e for e in planned.evidence if e["chunk_id"] == units[0].chunk_id)
    if plan.language == "zh":  # a differential line is told apart from what its chapter (its list) is about
        if differential_line(chunk, units[0]) and differential_head(units[0].text) != chunk["section_path"][0]:
            named, other = differential_head(units[0].text), chunk["section_path"][0]
            return one_of(f"如何鉴别{named}与{other}", f"{named}与{other}如何鉴别", end="？")
        return statement_question_zh(units[0].text)
    if plan.language != "en":
        return None
    if not differential_line(chunk, units[0]):
        glossary = term_question(units[0].text) if units[0].kind in ("sentence", "definition") else None  # a table row's first cell is no term
        return (definition_question(units[0].text) or statement_question(units[0].text) or course_question(units[0].text) or glossary
                or treatment_question(units[0].text, unit_condition(plan, planned, units[0])))
    other = told_apart_from(plan, planned, units[0])
    if not other:
        return None
    condition = as_named(differential_head(units[0].text))
    return one_of(f"How {'are' if _plural(condition) else 'is'} {condition} told apart from {other}", f"What distinguishes {condition} from {other}",
                  f"How can {condition} be distinguished from {other}")


def hop_questions(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit]) -> list[str] | None:
    """A multi-hop row's question per hop, in the order the row asks them (units: the other chapter's answer,
    then the bridge line, ragtune.generate.multi_hop): each the question its own structure dictates, read on
    its own passage ('How are bipolar disorders defined?', then 'How is bipolar disorder told apart from
    major depression?'); None when a hop has none, or both ask one thing."""
    if len(units) < 2:
        return None
    asked = []
    for unit in units[:2]:
        own = next(e for e in planned.evidence if e["chunk_id"] == unit.chunk_id)
        asked.append(built_question(plan, EvidenceRound(DEFAULT_TASK, own["section_path"][-1], [own]), unit))
    return asked if all(asked) and asked[0] != asked[1] else None


def joined_question(asked: list[str], language: str) -> str:
    """One question asking each hop's: 'How are bipolar disorders defined, and how is bipolar disorder told
    apart from major depression?'."""
    if language == "zh":
        return "，".join(q[:-1] for q in asked) + asked[-1][-1]
    return ", and ".join([asked[0][:-1], *(as_named(q[:-1]) for q in asked[1:])]) + asked[-1][-1]


# What troubles a patient about the condition, in their own voice: a built dialogue's opening turn.
PATIENT_TROUBLE = {
    "en": ["I have been worried about {condition} lately.", "I think I might have {condition}, and it scares me.",
           "Someone in my family may have {condition}, and I feel lost.", "I keep reading about {condition} and I feel anxious."],
    "zh": ["我最近一直在担心{condition}的问题。", "我怀疑自己可能有{condition}，心里很不安。", "我的家人可能有{condition}，我觉得很无助。"],
}
PATIENT_OPENING = {  # no '.' (see one_of): the opening leads into the question with a comma
    "en": ["I have a question,", "Something has been worrying me,", "I would like to understand this better,", "I keep wondering,"],
    "zh": ["我想请教一个问题，", "有件事一直让我担心，", "我想把这件事弄明白，"],
}


def built_question(plan: EvidencePlan, planned: EvidenceRound, unit: AnswerUnit) -> str:
    """The first question a unit's structure dictates, spelled out ('' if none), whatever the round's task."""
    pattern = structured_question(plan, EvidenceRound(DEFAULT_TASK, planned.focus, planned.evidence), [unit])
    return questions_of(pattern)[0] if pattern else ""


def structured_turns(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit]) -> tuple[str, str, str] | None:
    """A dialogue's three patient turns when both replies' structure dictates their questions: the patient says
    what troubles them about the condition ('I think I might have panic disorder, and it scares me.'), asks the
    first reply's question ('I have a question, how is panic disorder treated?'), then the second's. Patterns,
    as structured_question's; None when either reply has no such question."""
    if shape_of(planned.task) != "dialogue" or len(units) < 2:
        return None
    first, second = (built_question(plan, planned, u) for u in units[:2])
    if not first or not second or first == second:
        return None
    at = next((i for i, r in enumerate(plan.rounds) if r is planned), 0)
    leads, troubles = (PATIENT_OPENING.get(plan.language, PATIENT_OPENING["en"]), PATIENT_TROUBLE.get(plan.language, PATIENT_TROUBLE["en"]))
    condition = plan.chapter_title if plan.language == "zh" else unit_condition(plan, planned, units[0]) or chapter_condition(plan.chapter_title)
    # Chosen by the replies, not the round: dialogue rounds fall at like positions of a plan (5 of the handbook's
    # 7 kept dialogues opened with one trouble when it went by the round, 2026-12-07).
    trouble = troubles[int(units[0].unit_id, 16) % len(troubles)].format(condition=condition)
    end = _end(plan.language)
    asked = first[:-1] if plan.language == "zh" else f" {as_named(first[:-1])}"  # 'I have a question, how is ...'
    patterns = (one_of(trouble[:-1], end="[.]" if trouble.endswith(".") else trouble[-1]), one_of(f"{leads[at % len(leads)]}{asked}", end=end), one_of(second[:-1], end=end))
    return patterns if all(patterns) else None


def question_source(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit]) -> str:
    """'structure' when the answer's structure dictated the row's question (or a dialogue's patient turns), else 'model'."""
    return "structure" if structured_question(plan, planned, units) or structured_turns(plan, planned, units) else "model"


def as_named(phrase: str) -> str:
    """A sentence's opening noun phrase as a question names it: lower-case unless an acronym or a name."""
    return phrase if phrase[1:2].isupper() else phrase[:1].lower() + phrase[1:]


def _end(language: str) -> str:
    """How a built question of this language ends, as one_of writes it."""
    return "？" if language == "zh" else "[?]"


def one_of(*questions: str, end: str = "[?]") -> str | None:
    """A pattern accepting exactly these questions (with '?', or `end`); None if a question holds pattern syntax.
    Nothing is escaped: llama.cpp's schema-to-grammar converter copies a '\\.' into its grammar, which then fails to parse."""
    if any(re.search(r"[\\^$*+?{}\[\]|.()]", q) for q in questions):
        return None
    return "^(" + "|".join(questions) + f"){end}$"


def questions_of(pattern: str) -> list[str]:
    """The questions (or a built opening's sentences) a one_of pattern accepts, spelled out (its inverse)."""
    found = re.fullmatch(r"\^\((.*)\)(\[\?\]|？|\[\.\]|。)\$", pattern)
    if not found:
        return []
    end = found.group(2).strip("[]")
    return [q + end for q in found.group(1).split("|")]


CONDITION_PHRASE = re.compile(r"((?:[\w\-/]+\s+){0,2})\b(" + CONDITION_HEAD.pattern[2:-2] + r"|asd|dmdd|bpd)\b", re.I)
NOT_DISTINCTIVE = frozenset({"disorder", "disorders", "the", "a", "an", "of", "and", "or", "with", "what", "how", "is", "are", "does", "do", "causes", "treated"})


def borrowed_question(plan: EvidencePlan, planned: EvidenceRound) -> str | None:
    """An unanswerable round's question: one that another passage of the chapter's plan dictates by its
    structure ('How is social anxiety disorder diagnosed?'), about a condition none of this round's passages
    names, so it is well formed and truly unanswered there. Rounds take the candidates in turn (from their own
    place in the plan), each a question no earlier unanswerable round of the plan borrowed (one question
    asked of many passages is one row again and again); none left: the round asks nothing."""
    at = next((i for i, r in enumerate(plan.rounds) if r is planned), None)
    if at is None:  # a round outside the plan borrows from the plan's passages alone
        return _borrow(plan, planned, 0, set())
    return per_plan("borrowed_questions", plan, lambda: _borrowed_questions(plan)).get(at)


def _borrowed_questions(plan: EvidencePlan) -> dict[int, str]:
    taken: set[str] = set()
    borrowed: dict[int, str] = {}
    for at, planned in enumerate(plan.rounds):
        if shape_of(planned.task) == "abstention" and (pattern := _borrow(plan, planned, at, taken)):
            borrowed[at] = pattern
            taken.add(pattern)
    return borrowed


def _lendable(plan: EvidencePlan) -> dict[str, list[str]]:
    """Each passage of the plan and the questions its answers' structure dictates (differential sections lend
    none: a difference has two sides, one of which the borrowing passages may well speak of)."""
    lent: dict[str, list[str]] = {}
    for chunk in (e for r in plan.rounds for e in r.evidence):
        if chunk["chunk_id"] in lent:
            continue
        lender = EvidenceRound(DEFAULT_TASK, chunk["section_path"][-1], [chunk])
        skip = DIFFERENTIAL_SECTION.search(chunk["section_path"][-1])
        patterns = [] if skip else (structured_question(plan, lender, [u]) for u in units_for_task(chunk, DEFAULT_TASK))
        lent[chunk["chunk_id"]] = list(dict.fromkeys(questions_of(p)[0] for p in patterns if p))
    return lent


def _borrow(plan: EvidencePlan, planned: EvidenceRound, at: int, taken: set[str]) -> str | None:
    if plan.language not in ("en", "zh"):
        return None
    here = " ".join(e["text"] for e in planned.evidence).lower()
    own = {e["chunk_id"] for e in planned.evidence}
    lent = per_plan("lendable_questions", plan, lambda: _lendable(plan))
    chunk_ids = dict.fromkeys(e["chunk_id"] for r in plan.rounds[at + 1 :] + plan.rounds[:at] for e in r.evidence if e["chunk_id"] not in own)
    end = _end(plan.language)
    unnamed = _unnamed_here_zh if plan.language == "zh" else _unnamed_here
    found: list[str] = []
    for question in (q for chunk_id in chunk_ids for q in lent.get(chunk_id, [])):
        if question not in found and one_of(question[:-1], end=end) not in taken and unnamed(question, here):
            found.append(question)
    return one_of(found[at % len(found)][:-1], end=end) if found else None


def _unnamed_here(question: str, passages: str) -> bool:
    """The question names a condition and no distinctive word of that condition's name is in the passages. An
    acronym ('PTSD') tells nothing: the passages may spell the condition out ('posttraumatic stress disorder')."""
    found = CONDITION_PHRASE.search(question)
    if not found or re.search(r"\b[A-Z]{2,}s?\b", found.group(0)):
        return False
    words = [w.lower() for w in re.findall(r"[\w\-/]+", found.group(0)) if w.lower() not in NOT_DISTINCTIVE]
    return bool(words) and not any(re.search(rf"\b{re.escape(w)}\b", passages) for w in words)


CONDITION_ZH = re.compile(r"[\u4e00-\u9fff]{1,6}?(?:障碍|症|发作)")


def _unnamed_here_zh(question: str, passages: str) -> bool:
    """A Chinese question names a condition (…障碍, …症, …发作) whose own part (惊恐 of 惊恐发作) the passages never write."""
    found = CONDITION_ZH.search(re.sub("什么是|是什么|包括哪些|包括什么", "", question))
    return bool(found) and re.sub("(?:障碍|症|发作)$", "", found.group(0)) not in passages


NOT_A_KIND = ("the common rare frequent often more less also not very among likely seen found first further two three twice several many "
              "at in on of for with to from by as").split()
# "<condition> is a ...", "... are diagnosed when", "... are defined by", "... describes": one sentence of
# at least DEFINITION_WORDS words whose subject names a condition (or obsessions, compulsions).
DEFINED = re.compile(
    r"^(?P<x>[A-Z][\w\-/']*(?: [\w\-/']+){0,6}?) (?:(?P<be>is|are) (?:(?P<how>diagnosed when|defined by|marked by)|"
    r"(?<=is )an? (?!alternative\b|option\b|lifelong\b|common\b|rare\b)|(?<=are )(?!\w+ed\b|\w+ly\b|(?:" + "|".join(NOT_A_KIND) + r")\b)\w+\b)"
    r"|(?P<verb>describes|refers to)\b)"
)
DEFINITION_WORDS = 10
PEOPLE = r"(?:People|Person|Someone|Children|Adults|Adolescents|Women|Men|Patients|Individuals)\b"  # a subject that is people, not a condition
DEFINED_THING = re.compile(rf"{CONDITION_HEAD.pattern}|\b(?:obsessions|compulsions|panic attacks?|asd|dmdd|bpd)\b", re.I)


def definition_question(answer: str) -> str | None:
    """'Hoarding disorder is a lasting difficulty ...' -> 'What is hoarding disorder?'; 'Panic disorder is
    diagnosed when ...' -> 'When is panic disorder diagnosed?'. A ranking ('is the most common ...'), an
    option ('are further options') or a short claim ('is a lifelong condition') is no definition."""
    found = DEFINED.match(answer)
    if not found or len(answer.split()) < DEFINITION_WORDS or len(re.findall(r"[.!?](?:\s|$)", answer)) > 1:
        return None
    x = found.group("x")
    if not DEFINED_THING.search(x) or re.search(r"\b(?:with|that|which|who)\b", x) or re.match(
            r"(?:For|In|With|When|If|While|Although|Though|Because|Since|Unless|Even|The|This|These|Those|It|They|Most|Some|Many)\b|" + PEOPLE, x):
        return None  # 'People with eating disorders are at risk ...' defines no one
    thing, be = as_named(x), found.group("be")
    if found.group("verb"):  # 'X describes ...' says what X is; 'What does X describe?' read stiffly in the demo
        return one_of(f"What is {thing}", f"What does {thing} {'describe' if found.group('verb') == 'describes' else 'refer to'}")
    how = found.group("how")
    if how == "diagnosed when":
        return one_of(f"When {be} {thing} diagnosed")
    if how == "defined by":
        return one_of(f"How {be} {thing} defined", f"What defines {thing}")
    if how == "marked by":
        return one_of(f"What marks {thing}", f"What characterizes {thing}")
    return one_of(f"What {be} {thing}")


# What a therapy or a medicine is called: the subject of 'X helps people ...' or 'X works by ...'.
TREATMENT_THING = re.compile(
    r"\b(?:therapy|therapies|psychotherapy|treatment|treatments|medication|medications|antidepressants?|antipsychotics?|"
    r"stimulants?|mood stabilizers?|CBT|DBT|ECT|counseling|intervention|interventions)\b", re.I,
)
NOUN_PHRASE = r"[A-Z][\w\-/']*(?: [\w\-/'’]+){0,7}?"
ADVERB = r"(?:usually|typically|often|generally|commonly|also|mainly|primarily)"
INCLUDES = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?:(?P<adverb>{ADVERB}) |(?P<modal>may|can) )?(?P<verb>include|includes|involve|involves)\b")
HELPS = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?:(?P<modal>may|can) )?helps? (?P<who>people|patients|individuals|children|adolescents|adults|a person|someone)\b")
WORKS_BY = re.compile(rf"^(?P<x>{NOUN_PHRASE}) works? by\b")
FOCUSES = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?:(?P<adverb>{ADVERB}) |(?P<modal>may|can) )?(?P<verb>focus|focuses) on\b")
DIAGNOSE_BY = re.compile(
    r"^(?P<who>(?:Health care|Mental health) (?:providers|professionals)|Doctors|Clinicians|Psychiatrists) (?P<verb>diagnose|treat) "
    r"(?P<x>[\w\-/' ]{2,60}?) (?:by|with|based on|using)\b"
)
DIAGNOSED_AT = re.compile(rf"^(?P<x>{NOUN_PHRASE}) can (?:(?:also|usually|often) )?be (?:reliably )?diagnosed (?:at|by the age|when|after|before|in)\b")
# A subject that holds a verb or ends in 'to' is no noun phrase: 'DBT also teaches skills to (help people)',
# 'Assertive community treatment is designed to (help individuals)', 'Nutritional counseling to (help people)'.
NOT_A_NOUN_PHRASE = re.compile(
    r"\b(?:is|are|was|were|be|been|also|teach|teaches|designed|available|used|can|may|will|should|must|this|these|that|those|it|they|such)\b"
    r"|\b(?:to|and|or|but)$"  # ... nor one cut at a conjunction ('GAD develops gradually and (usually starts ...)')
)  # ... nor one that points elsewhere ('Examples of this kind of treatment')
OPENS_WITH_A_GROUP = re.compile(r"(?:Other|Some|Many|Most|Several|Common|Certain|Such|Each|Both|All|A|An|The|While|Although|Though|Because|Since|If|When|Unless|Even)\b")


def _one_sentence(answer: str, min_words: int) -> bool:
    """The answer is one sentence on one line of at least min_words words: a built question asks what it says."""
    return len(re.findall(r"[.!?](?:\s|$)", answer)) <= 1 and "\n" not in answer and len(answer.split()) >= min_words


def _names_on_its_own(x: str) -> bool:
    """A sentence's subject is a noun phrase that names something by itself: not a group ('Other symptoms'), no
    clause ('which ...'), no verb or pointer (NOT_A_NOUN_PHRASE)."""
    return not (OPENS_WITH_A_GROUP.match(x) or re.search(r"\b(?:which|that|who|when|if|because)\b", x) or NOT_A_NOUN_PHRASE.search(x))


def statement_question(answer: str) -> str | None:
    """The question one English sentence's structure asks: 'Treatment of psychosis usually includes ...' ->
    'What does treatment of psychosis usually include?', 'Exposure therapy helps people ...' -> 'How does
    exposure therapy help people?', 'Health care providers diagnose ASD by ...' -> 'How do health care
    providers diagnose ASD?'. Its subject must name a condition or a treatment on its own ('Other symptoms
    include ...' names neither), and the sentence must be the whole answer."""
    if not _one_sentence(answer, 8):
        return None
    if found := DIAGNOSE_BY.match(answer):
        x = found.group("x")
        return one_of(f"How do {as_named(found.group('who'))} {found.group('verb')} {x}") if DEFINED_THING.search(x) else None
    for pattern in (INCLUDES, HELPS, WORKS_BY, DIAGNOSED_AT, FOCUSES):
        found = pattern.match(answer)
        if found:
            break
    else:
        return None
    x = found.group("x")
    if not _names_on_its_own(x):
        return None
    generic = re.sub(r"\b(?:therapy|therapies|treatment|treatments|medication|medications|intervention|interventions|counseling)\b", "", x, flags=re.I)
    named = DEFINED_THING.search(x) or (TREATMENT_THING.search(x) and generic.strip(" ,-"))  # 'Interventions' alone names nothing
    if not named or (pattern is not INCLUDES and not TREATMENT_THING.search(x) and pattern is not DIAGNOSED_AT):
        return None
    thing, does = as_named(x), "do" if _plural(x) else "does"
    if pattern is DIAGNOSED_AT:
        return one_of(f"When can {thing} be diagnosed") if DEFINED_THING.search(x) else None
    if pattern is WORKS_BY:
        return one_of(f"How {does} {thing} work")
    if pattern is HELPS:
        verb = f"{found.group('modal')} {thing} help" if found.group("modal") else f"{does} {thing} help"
        return one_of(f"How {verb} {found.group('who')}")
    verb = found.group("verb")
    root = {"includes": "include", "involves": "involve", "focuses": "focus"}.get(verb, verb) + (" on" if pattern is FOCUSES else "")
    if found.group("modal"):
        return one_of(f"What {found.group('modal')} {thing} {root}")
    adverb = f" {found.group('adverb')}" if found.group("adverb") else ""
    return one_of(f"What {does} {thing}{adverb} {root}")


# How common a condition is, when it begins, which of its kind is the most common: 'Bipolar disorders affect
# roughly one to two percent of people ...', 'Symptoms of PTSD usually begin within ...', 'X is the most common eating disorder in adults.'
AFFECTS = re.compile(rf"^(?P<x>{NOUN_PHRASE}) affects? (?:about |roughly |around |nearly |close to |up to |an estimated |approximately |"
                     r"more than |over |some )?(?:\d|one|two|three|four|five|six|seven|eight|nine|ten)\b")
BEGINS = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?:(?P<adverb>usually|typically|often|generally|commonly|most often) )?(?:begins?|starts?) "
                    r"(?:in|during|before|after|between|by|around|at|within)\b")
MOST_COMMON = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?:is|are) the most common (?P<kind>[\w\- ]{{3,40}}?)(?: (?P<where>(?:in|among) [\w\- ]{{3,40}}))?\.$")


def course_question(answer: str) -> str | None:
    """The question one English sentence about a condition's frequency or onset asks: 'Bipolar disorders affect
    roughly one to two percent of people ...' -> 'How common are bipolar disorders?', 'Anxiety disorders usually
    begin in ...' -> 'When do anxiety disorders usually begin?', 'Binge-eating disorder is the most common eating
    disorder in adults.' -> 'Which eating disorder is the most common in adults?'. The subject (and a kind)
    must name a condition; the sentence must be the whole answer."""
    if not _one_sentence(answer, 6):
        return None
    found = AFFECTS.match(answer) or BEGINS.match(answer) or MOST_COMMON.match(answer)
    if not found:
        return None
    x = found.group("x")
    if not _names_on_its_own(x) or not DEFINED_THING.search(x):
        return None
    plural = _plural(x)
    if found.re is MOST_COMMON:
        kind, where = found.group("kind"), found.group("where")
        if not DEFINED_THING.search(kind):
            return None
        return one_of(f"Which {kind} {'are' if plural else 'is'} the most common{f' {where}' if where else ''}")
    they, be, do = ("they", "are", "do") if plural else ("it", "is", "does")
    clause = re.split(r",|;| although | while | whereas | but ", answer[found.end():])[0]  # the main clause's remainder
    joined = None
    if found.re is AFFECTS:
        question = f"How common {be} {as_named(x)}"
        joined = AND_BEGINS.search(clause)
        if joined:  # '... affect roughly one to two percent of people and usually begin in ...' says both
            adverb = re.search(r"(?<=and )\w+(?: often| commonly)?(?= (?:begin|start|first))", joined.group(0))
            question += f", and when {do} {they}{f' {adverb.group(0)}' if adverb else ''} begin"
    else:
        adverb = f" {found.group('adverb')}" if found.group("adverb") else ""
        question = f"When {do} {as_named(x)}{adverb} begin"
        joined = AND_SHARE.search(clause)
        if joined and joined.group("who") and re.search(r"\b(?:more|as)\b", joined.group(0)):  # '... and are more common in women'
            question += f", and in whom {be} {they} more common"
        else:
            joined = None
    # a second predicate the question does not ask ('... begin in childhood and are chronic') says more than asked
    others = [m for m in SECOND_PREDICATE.finditer(clause) if not (joined and m.start() == joined.start())]
    return None if others or course_breadth(question + "?", answer) else one_of(question)


# A second verb of a sentence's subject, joined by 'and': '... begin in childhood and are chronic'.
SECOND_PREDICATE = re.compile(r"\band (?:(?:usually|typically|often|generally|commonly|mostly|most often|tend to|can|may) )?"
                              r"(?:is|are|has|have|tends?|runs?|lasts?|persists?|affects?|begins?|starts?|occurs?|becomes?|goes|go)\b")


def _plural(phrase: str) -> bool:
    """Whether a noun phrase takes 'do': two things joined by 'and', or a plural head (the word before 'of'/'for'/'in'/'with', else the last)."""
    words = re.split(r" (?:of|for|in|with|among|during|after|to) ", phrase, maxsplit=1)[0]
    head = words.split()[-1]
    return " and " in words or (head.endswith("s") and not head.endswith(("ss", "sis", "us")) and not head.isupper())


# A Chinese statement "X是…" / "X包括…" (X a noun phrase of 2-16 characters, the sentence the whole answer).
STATEMENT_ZH = re.compile(r"^([\u4e00-\u9fff]{2,16}?)(是|包括)(?!否|最)[^。！？]+。$")
# A rank and a kind of treatment after 是: '多数焦虑障碍的首选心理治疗' (the Chinese RANKED).
RANKED_ZH = re.compile(r"^([\u4e00-\u9fff]{0,16}(?:首选|一线|二线)[\u4e00-\u9fff]{0,6}(?:治疗|药物|疗法|方法))(?=[，。])")


def statement_question_zh(answer: str) -> str | None:
    """The question a one-sentence Chinese statement answers: '抑郁障碍的共同核心是…。' is asked as
    '抑郁障碍的共同核心是什么？', '这一类别包括…' never (its subject is a pointer, see PRONOUN_OPENING)."""
    found = STATEMENT_ZH.match(answer)
    if not found or found.group(1) in FRAMING_ZH or PRONOUN_OPENING.match(found.group(1)):
        return None
    subject = found.group(1)
    ranked = RANKED_ZH.match(answer[found.end(2):])
    if found.group(2) == "是" and ranked:  # 'X是多数焦虑障碍的首选心理治疗，…' answers which treatment, not what X is
        return "^(" + ranked.group(1) + "是什么)？$"
    forms = (f"{subject}是什么", f"什么是{subject}") if found.group(2) == "是" else (f"{subject}包括哪些", f"{subject}包括什么")
    return "^(" + "|".join(forms) + ")？$"


# A treatment's rank and kind: 'the first-line medicines', 'the usual first-choice medicines', 'the psychological
# treatment of choice', 'the first-line psychological treatment'.
RANK = r"(?:usual |preferred )?(?:first-line|first-choice|second-line|main)"
KIND = r"(?:psychological |drug |talking |medical )?(?:treatments?|medicines?|medications?|therap(?:y|ies)|options?|approach(?:es)?)"
CONDITION_AT_END = r"(?P<y>(?:the )?[\w\-/' ]{3,60}?)"
RANKED = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?P<be>is|are) the (?P<d>{RANK} {KIND}(?: of choice)?|{KIND} of choice)"
                    rf"(?: (?:for|across|in) {CONDITION_AT_END})?(?: because [^.;]+|, (?:usually|typically|often|given|taken) [^.;]+)?\.$")
RANKED_ALONE = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?P<be>is|are) (?P<d>first-line|first-choice|second-line) (?:for|in) {CONDITION_AT_END}\.$")
TREATED_WITH = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?P<be>is|are) (?:usually |often |mainly |commonly |first )?treated (?:with|by|using)\b")
BEST_AMONG = re.compile(r"^[A-Z][^.;]{3,150}? (?P<verb>has|have) the (?P<how>best|strongest) evidence among (?P<kind>[\w\- ]{3,40}?)\.$")
BEST_EVIDENCE = re.compile(r"^For (?P<who>[^,]{3,80}), [^.;]{3,200}?,? (?:has|have) the (?P<how>best|strongest) evidence\.$")
RECOMMENDED = re.compile(rf"^(?P<x>{NOUN_PHRASE}) (?P<be>is|are) (?:usually |strongly |generally )?recommended (?:after|during|when|once|until|before)\b")


def titled_condition(title: str) -> str:
    """The condition a chapter's title names, as a question names it ('an anxiety disorder', 'bipolar disorder'),
    or '' for a title that is more than a condition's name ('Generalized Anxiety Disorder: When Worry Gets Out of Control')."""
    if re.search(r"[:?!.,;]", title) or len(title.split()) > 6 or not CONDITION_HEAD.search(title):
        return ""
    return chapter_condition(title)


def treatment_question(answer: str, condition: str = "") -> str | None:
    """The question one English treatment sentence's structure asks: 'X are the first-line medicines.' -> 'What
    are the first-line medicines for <condition>?' (the condition the sentence names, else its chapter's),
    'X are first-line for PTSD.' -> 'Which therapies are first-line for PTSD?', 'Acute mania is treated with
    ...' -> 'How is acute mania treated?', 'For <people with a condition>, X has the best evidence.' -> 'What
    treatment has the best evidence for <them>?', 'X is recommended after ...' -> 'When is X recommended for
    <condition>?'. A sentence whose condition is neither said nor the chapter's gets none."""
    if not _one_sentence(answer, 6):
        return None
    if found := BEST_EVIDENCE.match(answer):
        who = found.group("who")
        named = DEFINED_THING.search(who) or populations(who)
        return one_of(f"What treatment has the {found.group('how')} evidence for {as_named(who)}") if named else None
    if (found := BEST_AMONG.match(answer)) and condition and re.search(rf"{KIND}$", found.group("kind")):
        return one_of(f"Which {found.group('kind')} {found.group('verb')} the {found.group('how')} evidence for {condition}")
    for pattern in (RANKED, RANKED_ALONE, TREATED_WITH, RECOMMENDED):
        if found := pattern.match(answer):
            break
    else:
        return None
    x, be = found.group("x"), found.group("be")
    if not _names_on_its_own(x) or re.match(PEOPLE, x):
        return None
    if pattern is TREATED_WITH:
        return one_of(f"How {be} {as_named(x)} treated") if DEFINED_THING.search(x) else None
    if pattern is RECOMMENDED:
        if not TREATMENT_THING.search(x) or not condition or DEFINED_THING.search(x):
            return None
        return one_of(f"When {be} {as_named(x)} recommended for {condition}")
    y = found.group("y") or condition
    if not y or not DEFINED_THING.search(y):
        return None
    if pattern is RANKED_ALONE:
        head = x.split()[-1]
        asked = f"Which {head.lower()}" if re.fullmatch(KIND, head.lower()) else "What"
        return one_of(f"{asked} {be} {found.group('d')} for {y}")
    return one_of(f"What {be} the {found.group('d')} for {y}")


CLAUSE_VERB = re.compile(r"\b(?:is|are|was|were|be|has|have|had|share|shares|include|includes|involve|involves|cause|causes|affect|affects|"
                         r"mean|means|describe|describes|show|shows|look|looks|need|needs|make|makes|begin|begins|lead|leads|can|may|must|should|will|do|does)\b", re.I)


def term_question(answer: str) -> str | None:
    """A line that names a condition or a treatment and then describes it ('Bulimia nervosa: People with bulimia
    nervosa regularly binge eat ...', 'Interpersonal therapy (IPT): IPT focuses on ...'), outside a differential
    section, is asked what the named thing is; a head that names neither ('Biology: ...') gives none."""
    head = re.sub(r"\s*\([^)]*\)", "", differential_head(answer)).strip()  # 'Interpersonal therapy (IPT)' -> 'Interpersonal therapy'
    if not head or len(head.split()) > 5 or "\n" in answer or not (DEFINED_THING.search(head) or TREATMENT_THING.search(head)):
        return None
    if CLAUSE_VERB.search(head):
        return None  # 'Depressive disorders share one core experience: ...' is a sentence, not a term
    if re.search(r"\b(?:and|or|with|for|of|in|other|some|types?|causes?|risk|symptoms?|signs?)\b", head, re.I):
        return None  # 'Medical causes of weight loss', 'Other types': no one thing
    if sum(w[:1].isupper() for w in head.split()) >= 3:
        return None  # 'Attention Deficit Hyperactivity Disorder: Diagnosis and Treatment ...': a title, not a term
    return one_of(f"What {'are' if _plural(head) else 'is'} {as_named(head)}")
