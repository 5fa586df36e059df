"""Answer-first generation: the answer is cut from the round's evidence (ragtune.generate.answer_units) and
the LLM writes only what a row needs around it: the question this answer answers, the case of a
vignette, the patient's turns of a counselling dialogue (clinician turns are evidence, so a
dialogue is grounded turn by turn). In hybrid mode the LLM may rephrase the answer, and the
groundedness gate then holds every content term to the evidence.

answer_mode per task: "extractive" (the embedded default), "hybrid", or "abstractive" (the
task's free-writing template in ragtune/prompts, for strong models).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ragtune.generate.answer_units import PRONOUN_OPENING, TASK_UNITS, AnswerUnit, units_for_task
from ragtune.generate.evidence import EvidencePlan, EvidenceRound
from ragtune.generate.qa_fit import POPULATIONS as POPULATION_WORDS
from ragtune.generate.qa_fit import CONDITION_HEAD, answer_subject, differential_head, populations
from ragtune.llm.prompts import TASKS, fenced, inline_title, render_messages
from ragtune.text import chinese_words, content_terms

ANSWER_MODES = ("extractive", "hybrid", "abstractive")
DIALOGUE, VIGNETTE, UNANSWERABLE = "counselling_dialogue", "clinical_vignette", "unanswerable"
QUESTION_KIND = {
    "en": {
        "factual_recall": "a factual question",
        "treatment_management": "a question about treatment",
        "differential_diagnosis": "a question about how to tell two conditions apart",
    },
    "zh": {"factual_recall": "医生应当能够回答的事实性问题", "treatment_management": "关于治疗或处理的问题", "differential_diagnosis": "关于如何鉴别这些疾病的问题"},
}
UNANSWERABLE_ANSWER = {
    "en": "The cited passages do not answer this question; they are about {topic}.",
    "zh": "所引用的段落没有回答这个问题；它们讲的是{topic}。",
}
# The condition (from the section's title), then its features as the evidence states them: no word of the
# answer is the template's own.
DIAGNOSIS_ANSWER = {"en": "{diagnosis}: {features}", "zh": "{diagnosis}：{features}"}
SECTION_LEAD = re.compile(
    r"^(?:what are (?:the )?)?(?:(?:diagnostic )?criteria for|(?:signs and )?symptoms of|clinical features of|features of|"
    r"presentation of|signs of|how is|what is)\s+(?:an?\s+|the\s+)?",
    re.I,
)
CONDITION = re.compile(
    r"disorder|episode|depress|anxiety|phobia|mania|manic|psychos|schizo|autism|adhd|ptsd|ocd|anorexia|bulimia|binge|"
    r"dysmorph|hoarding|panic|grief|trauma|障碍|抑郁|焦虑|症",
    re.I,
)
# Grammar-enforced text: no markup characters, no quote or backslash (inside a JSON string they
# would let a small model close the string and write debris), a question ends with a question mark.
PLAIN = r'[^<>{}\[\]|*#\n"\\]'
# How a case may open; rounds take them in turn, so a small model that copies the example still varies.
CASE_OPENINGS = {
    "en": ["A 34-year-old man is seen in the clinic.", "A 19-year-old student is brought to the emergency department.",
           "A 52-year-old woman attends her primary care appointment.", "A 15-year-old girl is referred by her school.",
           "A 67-year-old retired teacher is seen as an outpatient.", "A 28-year-old mother presents to her general practitioner."],
    "zh": ["一名34岁男性在门诊就诊。", "一名19岁学生被送到急诊科。", "一名52岁女性到社区医院就诊。", "一名15岁女孩由学校转诊。"],
}
REWRITE = {
    "en": "\nAn earlier question for this answer was rejected: {rejected}. Write a better one that the answer fully and exactly answers.",
    "zh": "\n之前为这段答案写的问题不合格：{rejected}。请重写一个这段答案能完整、准确回答的问题。",
}
START = {"en": "A-Z\u4e00-\u9fff", "zh": "\u4e00-\u9fff"}  # a Chinese row's text opens in Chinese, not in English


def open_question_pattern(language: str = "en") -> str:
    return f"^[{START[language]}]{PLAIN}{{7,}}[?？]$"


def default_answer_modes() -> dict[str, str]:
    return dict.fromkeys(TASKS, "extractive")


def check_answer_modes(modes: dict[str, str]) -> None:
    bad = {task: mode for task, mode in modes.items() if task not in TASKS or mode not in ANSWER_MODES}
    if bad:
        raise ValueError(f"answer_mode {bad} is not valid: tasks are {', '.join(TASKS)}; modes are {', '.join(ANSWER_MODES)}")


def template_for(task: str, mode: str, language: str) -> str:
    if mode == "abstractive":
        return f"{language}/{task}"
    if task == UNANSWERABLE:
        return f"{language}/answer_first_unanswerable"
    if task == DIALOGUE:
        return f"{language}/answer_first_dialogue"
    if task == VIGNETTE:
        return f"{language}/answer_first_vignette"
    return f"{language}/{'hybrid' if mode == 'hybrid' else 'answer_first'}"


PAIR_TASKS = ("factual_recall", "treatment_management", "differential_diagnosis")


def round_units(plan: EvidencePlan, n: int, free_questions: bool = True) -> list[AnswerUnit]:
    """The answer(s) of round n: one unit (two for a dialogue) of the round's seed chunk (or, when
    it offers none for the task, of its other chunks). Rounds of one task on one chunk take its
    units in turn, those with a structure-built question first, so a chapter's rows do not share an
    answer until a chunk runs out. Without free_questions a pair task takes only answers whose question
    its structure dictates (none: the round makes no call)."""
    planned = plan.rounds[n]
    if planned.task == UNANSWERABLE:
        return []
    turn = sum(1 for r in plan.rounds[:n] if r.task == planned.task and r.evidence[:1] == planned.evidence[:1])
    wanted = 2 if planned.task == DIALOGUE else 1
    if planned.task == DIALOGUE and not free_questions:
        return _asked_replies(plan, planned, turn)
    for chunk in planned.evidence:
        if planned.task == VIGNETTE and not section_condition(chunk["section_path"][-1]):
            continue  # a case's diagnosis is the condition its features' section names, never an overview's
        units = units_for_task(chunk, planned.task)
        if wanted == 1:  # an answer whose structure says what it answers is asked before one the model must guess for
            topic = TASK_UNITS.get(planned.task, TASK_UNITS["factual_recall"])[1]
            units.sort(key=lambda u: (bool(topic and not topic.search(u.text)), structured_question(plan, planned, [u]) is None))
            if not free_questions and planned.task in PAIR_TASKS:
                units = [u for u in units if structured_question(plan, planned, [u])]
        if len(units) >= wanted:
            first = (turn * wanted) % len(units)
            if wanted == 1:
                return [units[first]]
            partner = next((units[(first + k) % len(units)] for k in range(1, len(units)) if not _overlap(units[first], units[(first + k) % len(units)])), None)
            if partner:  # a dialogue's second reply says something the first did not
                return [units[first], partner]
    return []


def _asked_replies(plan: EvidencePlan, planned: EvidenceRound, turn: int) -> list[AnswerUnit]:
    """A dialogue's two replies when the patient's turns are built (no free_questions): answers of the round's
    passages from the chapter itself whose structure dictates a question, one per question, not overlapping."""
    asked: dict[str, AnswerUnit] = {}
    for chunk in planned.evidence:
        if chunk.get("chapter_key", plan.chapter_key) == plan.chapter_key:
            for unit in units_for_task(chunk, DIALOGUE):
                asked.setdefault(built_question(plan, planned, unit), unit)
    units = [unit for question, unit in asked.items() if question]
    for k in range(len(units)):
        first = units[(turn * 2 + k) % len(units)]
        partner = next((u for u in units if u is not first and not _overlap(first, u)), None)
        if partner:
            return [first, partner]
    return []


def _overlap(a: AnswerUnit, b: AnswerUnit) -> bool:
    return a.chunk_id == b.chunk_id and any(s < f and t < e for s, e in a.spans for t, f in b.spans)


def asks(plan: EvidencePlan, n: int, free_questions: bool, mode: str = "extractive") -> bool:
    """Whether round n has something to ask: an answer for its task, or (unanswerable) a question. Waves are
    made of such rounds only, so a wave of n rounds asks n questions."""
    if mode == "abstractive":
        return True
    if plan.rounds[n].task == UNANSWERABLE:
        return free_questions or borrowed_question(plan, plan.rounds[n]) is not None  # the model's own, or one borrowed
    return bool(round_units(plan, n, free_questions))


def section_condition(section: str) -> str:
    """The condition a section's title names ('Anorexia Nervosa' of 'Diagnostic Criteria for Anorexia Nervosa'), or ''."""
    named = SECTION_LEAD.sub("", section).strip().rstrip("?？:").strip()
    named = re.sub(r"的(?:诊断要点|诊断标准|临床表现|主要症状)$", "", named)  # '重性抑郁发作的诊断要点' names 重性抑郁发作
    generic = re.fullmatch(r"(?:(?:other|related|and|specified|unspecified|disorders?)\s*)+", named, re.I)  # 'Related Disorders' names none
    return named if CONDITION.search(named) and not generic else ""


def diagnosis_name(planned: EvidenceRound, unit: AnswerUnit, chapter_title: str) -> str:
    """The condition a unit's features belong to: the title of the section its chunk is from when that
    names one (not the round's focus: the unit may come from another of the round's passages), else the chapter's."""
    section = next((e["section_path"][-1] for e in planned.evidence if e["chunk_id"] == unit.chunk_id), planned.focus)
    return section_condition(section) or chapter_title


VERB = re.compile(
    r"\s(?:is|are|was|were|has|have|can|may|might|must|should|will|would|does|do|requires?|includes?|involves?|lasts?|"
    r"begins?|starts?|means|describes|affects?|causes?|helps?|reduces?|increases?|needs?|shows?|points?|remains?)\b"
)


def subject(answer: str, focus: str) -> str:
    """What a question about this answer asks about (the Chinese prompt names it): the words before its first verb
    ("Acute mania" of "Acute mania is treated with ..."), else the section title."""
    first_line = answer.split("\n")[0]
    head = VERB.split(first_line, maxsplit=1)[0].strip(" ,;:")
    head = re.sub(r"^(?:\d+\.|[A-Z]\.)\s*", "", head)
    words = head.split()
    return head if 1 <= len(words) <= 6 and head[:1].isupper() else inline_title(focus)


def feature_words(text: str, n: int = 6) -> list[str]:
    """The first distinct content words of a vignette's features, for the case to use."""
    return list(dict.fromkeys(surface for surface, _ in content_terms(text) if not surface[0].isdigit()))[:n]


QUESTION_WORDS = ("What", "Which", "How", "When", "Why", "Who", "Is", "Are", "Does", "Can", "In")
# Words a question may use beside the answer's own: how questions are built, never what they claim.
ASKING = (
    "what which how when why who whom whose is are was were does do did can could should would will may might must the a an "
    "of for in on to with and or by from than as at about its their his her this these that those it they be been being has "
    "have had not no used use there other another kind type "
    "treat treated treatment treatments manage managed management diagnosis diagnosed diagnostic symptom symptoms sign signs "
    "feature features criteria difference differ between distinguish tell apart from cause causes risk people person patient "
    "patients someone option options help happen occur define defined mean means".split()
)  # no "most", "common", "first", "usually": they would make a claim the answer may not
WORD = re.compile(r"^[A-Za-z][A-Za-z'\-]*$")
# The Chinese counterpart of ASKING; the answer's own words come from jieba's segmentation.
ASKING_ZH = (
    "什么 哪些 如何 怎样 怎么 是否 为什么 何时 多久 多少 几 哪种 哪个 应当 需要 可以 能否 会 有 的 是 在 和 与 或 及 对 时 中 "
    "患者 病人 医生 诊断 治疗 处理 症状 表现 特点 区别 鉴别 情况 方面 包括 呢".split()
)
HAN_WORD = re.compile(r"^[\u4e00-\u9fff]+$")
FRAMING_ZH = frozenset("概述 要点 简介 摘要 概要 总结 以下 列出".split())  # section-title words a question must not lean on


def question_pattern(answer: str | None, topic: str = "", language: str = "en") -> str:
    """Answer-first questions are decoded from a closed vocabulary: in English a question word, then
    only words of the answer, of its topic (chapter and section titles) and of ASKING; in Chinese only
    characters of the answer, the topic and ASKING_ZH. A question so made cannot invent a term, point at
    "the passage", drift to what its answer does not speak of, or slip into another language."""
    if not answer:
        return open_question_pattern(language)
    if language == "zh":
        words = "|".join(sorted({w for w in chinese_words(f"{answer} {topic}") if HAN_WORD.match(w) and w not in FRAMING_ZH} | set(ASKING_ZH)))
        return f"^({words})({words}|，){{2,}}？$"
    own = {w.strip("'-") for w in re.split(r"[\s,;:.()]+", f"{answer} {topic}")}
    vocabulary = sorted({w for w in own | set(ASKING) if WORD.match(w)} | {w.lower() for w in own if WORD.match(w)})
    if len(own) < 3:
        return open_question_pattern(language)
    return f"^({'|'.join(QUESTION_WORDS)})( ({'|'.join(vocabulary)}),?)+[?]$"


def schema(task: str, mode: str, answer: str | None = None, topic: str = "", language: str = "en",
           fixed: str | tuple[str, str] | None = None) -> dict[str, Any]:
    """fixed: the question's own pattern when the answer's structure says what it must ask (structured_question),
    for a dialogue the two patient turns' patterns (structured_turns)."""
    closed = mode == "extractive" and task not in (VIGNETTE, UNANSWERABLE)
    start = START[language]
    turn_patterns = fixed if isinstance(fixed, tuple) else None
    fixed = fixed if isinstance(fixed, str) else None
    pattern = fixed or (question_pattern(answer, topic, language) if closed else open_question_pattern(language))
    question = {"type": "string", "pattern": pattern}
    if task == DIALOGUE:
        # One free turn pattern. A grammar that forced the first person ("I ..." or "... I ...") made the 135M model
        # ramble or repeat to max_tokens (54 s a call, not 5): the patient's voice is left to the fit rule.
        opening = follow_up = f"^[{start}]{PLAIN}{{12,}}$"
        if turn_patterns:
            opening, follow_up = turn_patterns
        turns = {"type": "array", "prefixItems": [{"type": "string", "pattern": opening}, {"type": "string", "pattern": follow_up}],
                 "items": False, "minItems": 2}
        return {"type": "object", "properties": {"patient_turns": turns}, "required": ["patient_turns"]}
    if task == VIGNETTE:
        case = {"type": "string", "pattern": f"^[{start}]{PLAIN}{{60,}}$"}
        return {"type": "object", "properties": {"case": case, "question": question}, "required": ["case", "question"]}
    if mode == "hybrid" and task != UNANSWERABLE:
        answer = {"type": "string", "pattern": f"^{PLAIN}{{24,}}$"}
        return {"type": "object", "properties": {"question": question, "answer": answer}, "required": ["question", "answer"]}
    return {"type": "object", "properties": {"question": question}, "required": ["question"]}


DIFFERENTIAL_SECTION = re.compile(r"differential|distinguish|told apart", re.I)
CLASS_OF_CONDITIONS = re.compile(r"^(?:depressive|anxiety|eating|feeding|trauma|stressor|stress|mood|psychotic|personality|sleep|substance)", re.I)


def chapter_condition(title: str) -> str:
    """What a differential line of this chapter is told apart from: 'bipolar disorder' of 'Bipolar and Related
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


def structured_question(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit]) -> str | None:
    """The question an answer's structure dictates, as a pattern the model must follow: a differential
    line ('Body dysmorphic disorder: ...' in a differential section) is asked as how that condition is told
    apart from the chapter's own, never as a difference between the halves of the chapter's title; a
    sentence that defines a condition is asked what (or when, how) it is; a question heading's whole
    section is asked by that heading; an unanswerable round borrows such a question (borrowed_question)."""
    if planned.task == UNANSWERABLE:
        return borrowed_question(plan, planned)
    if not units or planned.task in (DIALOGUE, VIGNETTE):
        return None
    if units[0].kind == "section":  # the section's whole text answers its question heading
        heading = next(e["section_path"][-1] for e in planned.evidence if e["chunk_id"] == units[0].chunk_id).strip()
        return one_of(heading.rstrip("?？").strip(), end="？" if plan.language == "zh" else "[?]")
    if plan.language == "zh":
        return statement_question_zh(units[0].text)
    if plan.language != "en":
        return None
    head = differential_head(units[0].text) if units[0].kind != "criteria_list" else ""  # 'The clinician considers:' leads a list
    if not head or not DIFFERENTIAL_SECTION.search(planned.focus):
        return definition_question(units[0].text) or statement_question(units[0].text)
    other = chapter_condition(plan.chapter_title)
    condition = as_named(head)
    return one_of(f"How {'are' if _plural(condition) else 'is'} {condition} told apart from {other}", f"What distinguishes {condition} from {other}",
                  f"How can {condition} be distinguished from {other}")


PATIENT_OPENING = {  # no '.' (see one_of): the opening leads into the question with a comma
    "en": ["I have a question,", "Something has been worrying me,", "I would like to understand this better,", "I keep wondering,"],
    "zh": ["我想请教一个问题，", "有件事一直让我担心，", "我想把这件事弄明白，"],
}


def built_question(plan: EvidencePlan, planned: EvidenceRound, unit: AnswerUnit) -> str:
    """The first question a unit's structure dictates, spelled out ('' if none), whatever the round's task."""
    pattern = structured_question(plan, EvidenceRound("factual_recall", planned.focus, planned.evidence), [unit])
    return questions_of(pattern)[0] if pattern else ""


def structured_turns(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit]) -> tuple[str, str] | None:
    """A dialogue's two patient turns when both replies' structure dictates their questions: the patient opens
    in the first person and asks the first ('I have a question, how is panic disorder treated?'), then asks
    the second. Patterns, as structured_question's; None when either reply has no such question."""
    if planned.task != DIALOGUE or len(units) < 2:
        return None
    first, second = (built_question(plan, planned, u) for u in units[:2])
    if not first or not second or first == second:
        return None
    openings = PATIENT_OPENING.get(plan.language, PATIENT_OPENING["en"])
    opening = openings[next((i for i, r in enumerate(plan.rounds) if r is planned), 0) % len(openings)]
    end = "？" if plan.language == "zh" else "[?]"
    asked = first[:-1] if plan.language == "zh" else f" {as_named(first[:-1])}"  # 'I have a question, how is ...'
    patterns = (one_of(f"{opening}{asked}", end=end), one_of(second[:-1], end=end))
    return patterns if all(patterns) else None


def question_source(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit]) -> str:
    """'structure' when the answer's structure dictated the row's question (or a dialogue's patient turns), else 'model'."""
    return "structure" if structured_question(plan, planned, units) or structured_turns(plan, planned, units) else "model"


def as_named(phrase: str) -> str:
    """A sentence's opening noun phrase as a question names it: lower-case unless an acronym or a name."""
    return phrase if phrase[1:2].isupper() else phrase[:1].lower() + phrase[1:]


def one_of(*questions: str, end: str = "[?]") -> str | None:
    """A pattern accepting exactly these questions (with '?', or `end`); None if a question holds pattern syntax.
    Nothing is escaped: llama.cpp's schema-to-grammar converter copies a '\\.' into its grammar, which then fails to parse."""
    if any(re.search(r"[\\^$*+?{}\[\]|.()]", q) for q in questions):
        return None
    return "^(" + "|".join(questions) + f"){end}$"


def questions_of(pattern: str) -> list[str]:
    """The questions a one_of pattern accepts, spelled out (its inverse)."""
    found = re.fullmatch(r"\^\((.*)\)(\[\?\]|？)\$", pattern)
    if not found:
        return []
    end = "?" if found.group(2) == "[?]" else "？"
    return [q + end for q in found.group(1).split("|")]


CONDITION_PHRASE = re.compile(r"((?:[\w\-/]+\s+){0,2})\b(" + CONDITION_HEAD.pattern[2:-2] + r"|asd|dmdd|bpd)\b", re.I)
NOT_DISTINCTIVE = frozenset({"disorder", "disorders", "the", "a", "an", "of", "and", "or", "with", "what", "how", "is", "are", "does", "do", "causes", "treated"})


def borrowed_question(plan: EvidencePlan, planned: EvidenceRound) -> str | None:
    """An unanswerable round's question: one that another passage of the chapter's plan dictates by its
    structure ('How is social anxiety disorder diagnosed?'), about a condition none of this round's passages
    names, so it is well formed and truly unanswered there. Rounds take the candidates in turn (from their own
    place in the plan), so they borrow different questions."""
    if plan.language not in ("en", "zh"):
        return None
    here = " ".join(e["text"] for e in planned.evidence).lower()
    own = {e["chunk_id"] for e in planned.evidence}
    at = next((i for i, r in enumerate(plan.rounds) if r is planned), 0)
    chunks = {e["chunk_id"]: e for r in plan.rounds[at + 1 :] + plan.rounds[:at] for e in r.evidence if e["chunk_id"] not in own}
    found: list[str] = []
    for chunk in chunks.values():
        if DIFFERENTIAL_SECTION.search(chunk["section_path"][-1]):
            continue  # a difference has two sides, one of which these passages may well speak of
        lender = EvidenceRound("factual_recall", chunk["section_path"][-1], [chunk])
        for unit in units_for_task(chunk, "factual_recall"):
            pattern = structured_question(plan, lender, [unit])
            question = questions_of(pattern)[0] if pattern else ""
            unnamed = _unnamed_here_zh if plan.language == "zh" else _unnamed_here
            if question and question not in found and unnamed(question, here):
                found.append(question)
    return one_of(found[at % len(found)][:-1], end="？" if plan.language == "zh" else "[?]") if found else None


def _unnamed_here(question: str, passages: str) -> bool:
    """The question names a condition and no distinctive word of that condition's name is in the passages."""
    found = CONDITION_PHRASE.search(question)
    if not found:
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
            r"(?:For|In|With|When|If|While|Although|Though|Because|Since|Unless|Even|The|This|These|Those|It|They|Most|Some|Many|People|Person|Someone|Children|Adults|Adolescents|"
            r"Women|Men|Patients|Individuals)\b", x):  # 'People with eating disorders are at risk ...' defines no one
        return None
    thing, be = as_named(x), found.group("be")
    if found.group("verb"):
        return one_of(f"What does {thing} {'describe' if found.group('verb') == 'describes' else 'refer to'}")
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
DIAGNOSE_BY = re.compile(
    r"^(?P<who>(?:Health care|Mental health) (?:providers|professionals)|Doctors|Clinicians|Psychiatrists) (?P<verb>diagnose|treat) "
    r"(?P<x>[\w\-/' ]{2,60}?) (?:by|with|based on|using)\b"
)
DIAGNOSED_AT = re.compile(rf"^(?P<x>{NOUN_PHRASE}) can (?:(?:also|usually|often) )?be (?:reliably )?diagnosed (?:at|by the age|when|after|before|in)\b")
# A subject that holds a verb or ends in 'to' is no noun phrase: 'DBT also teaches skills to (help people)',
# 'Assertive community treatment is designed to (help individuals)', 'Nutritional counseling to (help people)'.
NOT_A_NOUN_PHRASE = re.compile(
    r"\b(?:is|are|was|were|be|been|also|teach|teaches|designed|available|used|can|may|will|should|must|this|these|that|those|it|they|such)\b|\bto$"
)  # ... nor one that points elsewhere ('Examples of this kind of treatment')
OPENS_WITH_A_GROUP = re.compile(r"(?:Other|Some|Many|Most|Several|Common|Certain|Such|Each|Both|All|A|An|The|While|Although|Though|Because|Since|If|When|Unless|Even)\b")


def statement_question(answer: str) -> str | None:
    """The question one English sentence's structure asks: 'Treatment of psychosis usually includes ...' ->
    'What does treatment of psychosis usually include?', 'Exposure therapy helps people ...' -> 'How does
    exposure therapy help people?', 'Health care providers diagnose ASD by ...' -> 'How do health care
    providers diagnose ASD?'. Its subject must name a condition or a treatment on its own ('Other symptoms
    include ...' names neither), and the sentence must be the whole answer."""
    if len(re.findall(r"[.!?](?:\s|$)", answer)) > 1 or "\n" in answer or len(answer.split()) < 8:
        return None
    if found := DIAGNOSE_BY.match(answer):
        x = found.group("x")
        return one_of(f"How do {as_named(found.group('who'))} {found.group('verb')} {x}") if DEFINED_THING.search(x) else None
    for pattern in (INCLUDES, HELPS, WORKS_BY, DIAGNOSED_AT):
        found = pattern.match(answer)
        if found:
            break
    else:
        return None
    x = found.group("x")
    if OPENS_WITH_A_GROUP.match(x) or re.search(r"\b(?:which|that|who|when|if|because)\b", x) or NOT_A_NOUN_PHRASE.search(x):
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
    root = found.group("verb").removesuffix("s") if found.group("verb") != "includes" else "include"
    if found.group("modal"):
        return one_of(f"What {found.group('modal')} {thing} {root}")
    adverb = f" {found.group('adverb')}" if found.group("adverb") else ""
    return one_of(f"What {does} {thing}{adverb} {root}")


def _plural(phrase: str) -> bool:
    """Whether a noun phrase takes 'do': two things joined by 'and', or a plural head (the word before 'of'/'for'/'in'/'with', else the last)."""
    words = re.split(r" (?:of|for|in|with|among|during|after|to) ", phrase, maxsplit=1)[0]
    head = words.split()[-1]
    return " and " in words or (head.endswith("s") and not head.endswith(("ss", "sis", "us")) and not head.isupper())


# A Chinese statement "X是…" / "X包括…" (X a noun phrase of 2-16 characters, the sentence the whole answer).
STATEMENT_ZH = re.compile(r"^([\u4e00-\u9fff]{2,16}?)(是|包括)(?!否|最)[^。！？]+。$")


def statement_question_zh(answer: str) -> str | None:
    """The question a one-sentence Chinese statement answers: '抑郁障碍的共同核心是…。' is asked as
    '抑郁障碍的共同核心是什么？', '这一类别包括…' never (its subject is a pointer, see PRONOUN_OPENING)."""
    found = STATEMENT_ZH.match(answer)
    if not found or found.group(1) in FRAMING_ZH or PRONOUN_OPENING.match(found.group(1)):
        return None
    subject = found.group(1)
    forms = (f"{subject}是什么", f"什么是{subject}") if found.group(2) == "是" else (f"{subject}包括哪些", f"{subject}包括什么")
    return "^(" + "|".join(forms) + ")？$"


def must_name(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit]) -> str:
    """What the question has to name for this answer to answer it: the people the answer is about and
    its condition (a criteria list: the condition of its section)."""
    if plan.language != "en" or not units:
        return ""
    text = units[0].text
    spotted = [re.search(rf"\b(?:{POPULATION_WORDS[name]})\b", text, re.I) for name in populations(text)]
    named = [found.group(0) for found in sorted((f for f in spotted if f), key=lambda f: f.start())]
    subject = answer_subject(text) or (diagnosis_name(planned, units[0], plan.chapter_title) if units[0].kind == "criteria_list" else "")
    named += [subject] if subject else []
    return ", ".join(dict.fromkeys(named))


def render(plan: EvidencePlan, n: int, units: list[AnswerUnit], mode: str, passages: str, rejected: str = "") -> list[dict[str, str]]:
    """The round's messages; `rejected` (a rewrite) says which earlier question was rejected and why."""
    planned = plan.rounds[n]
    values = {
        "passages": passages,
        "chapter_title": inline_title(plan.chapter_title),
        "focus": inline_title(planned.focus),
        "answer": fenced(units[0].text) if units else "",
        "second_answer": fenced(units[1].text) if len(units) > 1 else "",
        "question_kind": QUESTION_KIND[plan.language].get(planned.task, QUESTION_KIND[plan.language]["factual_recall"]),
        "feature_words": ", ".join(feature_words(units[0].text)) if units else "",
        "answer_words": ", ".join(feature_words(units[0].text, 4)) if units else "",  # a dialogue's patient turn takes up its reply
        "second_answer_words": ", ".join(feature_words(units[1].text, 4)) if len(units) > 1 else "",
        "subject": subject(units[0].text, planned.focus) if units else "",
        "case_opening": CASE_OPENINGS[plan.language][n % len(CASE_OPENINGS[plan.language])],
        "must_name": f" It must name {named}." if (named := must_name(plan, planned, units)) else "",
    }
    messages = render_messages(template_for(planned.task, mode, plan.language), **values)
    if rejected:
        messages[-1]["content"] += REWRITE[plan.language].format(rejected=fenced(rejected))
    return messages


def passage_topic(plan: EvidencePlan, planned: EvidenceRound) -> str:
    """What the cited passages are about, said in a sentence: a section that names its condition alone
    ('Diagnostic Criteria for Generalized Anxiety Disorder'), else the section of the chapter ('the
    overview of Bipolar and Related Disorders', not 'what they cover is Overview'), or the question a
    section's heading asks."""
    focus, chapter = inline_title(planned.focus), inline_title(plan.chapter_title)
    if plan.language != "en":
        return f"{chapter}：{focus}" if focus and focus not in chapter else chapter
    if focus.endswith("?"):  # a question heading: 'the question "What is depression?"', not 'about What is depression?'
        return f'the question "{focus}"'
    if not focus or CONDITION_HEAD.search(focus):
        return focus or chapter
    said = " ".join(w.lower() if w[1:].islower() else w for w in focus.split())  # 'Course and Prognosis' -> 'course and prognosis'; PTSD stays
    return f"the {said} of {chapter}"


def parse(plan: EvidencePlan, planned: EvidenceRound, units: list[AnswerUnit], mode: str, text: str) -> dict[str, Any]:
    """The row's question, answer (turns) and supporting spans from the model's output; ValueError if unusable."""
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON from the model: {error}") from error
    if not isinstance(data, dict):
        raise ValueError("model output is not a JSON object")
    chunk_texts = {e["chunk_id"]: e["text"] for e in planned.evidence}
    spans = [span for unit in units for span in unit.supporting_spans(chunk_texts[unit.chunk_id])]
    language = plan.language
    if planned.task == DIALOGUE:
        said = data.get("patient_turns")
        if not isinstance(said, list) or len(said) < 2 or not all(isinstance(t, str) and t.strip() for t in said[:2]):
            raise ValueError("model output has no two patient turns")
        turns = [
            {"role": "patient", "content": said[0].strip()},
            {"role": "clinician", "content": units[0].text},
            {"role": "patient", "content": said[1].strip()},
            {"role": "clinician", "content": units[1].text},
        ]
        return {"question": turns[0]["content"], "answer": units[0].text, "turns": turns, "supporting_spans": spans}
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("model output has no question")
    question = question.strip()
    if planned.task == UNANSWERABLE:
        return {"question": question, "answer": UNANSWERABLE_ANSWER[language].format(topic=passage_topic(plan, planned)), "supporting_spans": []}
    if planned.task == VIGNETTE:
        case = data.get("case")
        if not isinstance(case, str) or not case.strip():
            raise ValueError("model output has no case")
        separator = "" if language == "zh" else " "
        answer = DIAGNOSIS_ANSWER[language].format(diagnosis=diagnosis_name(planned, units[0], plan.chapter_title), features=units[0].text)
        return {"question": f"{case.strip()}{separator}{question}", "answer": answer, "case": case.strip(), "supporting_spans": spans}
    if mode == "hybrid":
        answer = data.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError("model output has no answer")
        return {"question": question, "answer": answer.strip(), "supporting_spans": spans}
    return {"question": question, "answer": units[0].text, "supporting_spans": spans}
