"""Answer-first generation: the answer is cut from the round's evidence (ragtune.generate.answer_units) and
the LLM writes only what a row needs around it: the question this answer answers, the case of a
vignette, the patient's turns of a counselling dialogue (the clinician's asking turn says the patient's
opening back, its informing turns are evidence, so a dialogue is grounded turn by turn). In hybrid mode
the LLM may rephrase the answer, and the groundedness gate then holds every content term to the evidence.

answer_mode per task: "extractive" (the embedded default), "hybrid", or "abstractive" (the
task's free-writing template in ragtune/prompts, for strong models).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ragtune.generate.answer_units import POINTER_HEADING, AnswerUnit, units_for_task
from ragtune.generate.built_questions import FRAMING_ZH, borrowed_question, built_question, differential_line, hop_questions, structured_question
from ragtune.generate.dialogue import ASK, INFORM, reflection
from ragtune.generate.evidence import EvidencePlan, EvidenceRound, per_plan
from ragtune.generate.hops import hop, joined_answer
from ragtune.generate.multi_hop import hop_units
from ragtune.generate.qa_fit import POPULATIONS as POPULATION_WORDS
from ragtune.generate.qa_fit import CONDITION_HEAD, ZH_SECTION_END, answer_subject, populations
from ragtune.llm.prompts import fenced, inline_title, render_messages
from ragtune.tasks import DEFAULT_TASK, TASK_STYLES, shape_of, task_style
from ragtune.text import chinese_words, content_terms

ANSWER_MODES = ("extractive", "hybrid", "abstractive")
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
MARKUP = r'<>{}\[\]|*#\n"\\'
PLAIN = f"[^{MARKUP}]"
# A free question is one question: its first question mark ends it. Without that the 1.5B went on after
# "...generalized anxiety disorder?" with the answer until max_tokens cut the JSON, or asked two at once
# ("What is the difference between ECT and TMS? How do they work, ...?"; NIMH, 2026-12-07).
ONE_QUESTION = f"[^{MARKUP}?？]"
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
# A dialogue's opening: the patient says in one sentence, in the first person, what they are going through.
# Its first words lead into what they feel or go through (the fit rule still reads the rest).
OPENING = {"en": f"^(I feel|I have been|I've been|I keep|I can't|I worry|I am worried|I get|Lately I|My)[ ,][^{MARKUP}?.!]{{8,}}[.!]$",
           "zh": f"^(我最近|我总是|我一直|我觉得|我感觉|我担心)[^{MARKUP}?？。！]{{4,}}[。！]$"}


def open_question_pattern(language: str = "en") -> str:
    return f"^[{START[language]}]{ONE_QUESTION}{{7,}}[?？]$"


def default_answer_modes() -> dict[str, str]:
    return dict.fromkeys(TASK_STYLES, "extractive")


def check_answer_modes(modes: dict[str, str]) -> None:
    bad = {task: mode for task, mode in modes.items() if task not in TASK_STYLES or mode not in ANSWER_MODES}
    if bad:
        raise ValueError(f"answer_mode {bad} is not valid: tasks are {', '.join(TASK_STYLES)}; modes are {', '.join(ANSWER_MODES)}")


def template_for(task: str, mode: str, language: str) -> str:
    if mode == "abstractive":
        return f"{language}/{task}"
    if task_style(task).joins_chapters:  # its answers are its hops' spans, never rephrased
        return f"{language}/answer_first_multi_hop"
    shape = shape_of(task)
    if shape != "pair":  # one answer-first template per shape
        return f"{language}/answer_first_{shape}"
    return f"{language}/{'hybrid' if mode == 'hybrid' else 'answer_first'}"


def round_units(plan: EvidencePlan, n: int, free_questions: bool = True) -> list[AnswerUnit]:
    """The answer(s) of round n: one unit (two for a dialogue) of the round's seed chunk (or, when it offers
    none for the task, of its other chunks of the chapter, own_passages). With free_questions, pair rounds
    take answers no earlier pair round took, those with a structure-built question first (_free_answers), and
    dialogue and vignette rounds of one task on one chunk take its units in turn. Without, pair and dialogue
    rounds take answers whose question their structure dictates, assigned plan-wide (_built_answers); none:
    the round makes no call."""
    planned = plan.rounds[n]
    shape = shape_of(planned.task)
    if shape == "abstention":
        return []
    if task_style(planned.task).joins_chapters:
        return _joined_answers(plan).get(n, [])
    if not free_questions and shape in ("pair", "dialogue"):
        return _built_answers(plan).get(n, [])
    if shape == "pair":
        return _free_answers(plan).get(n, [])
    turn = sum(1 for r in plan.rounds[:n] if r.task == planned.task and r.evidence[:1] == planned.evidence[:1])
    wanted = 2 if shape == "dialogue" else 1
    for chunk in own_passages(plan, planned):
        if shape == "vignette" and not section_condition(chunk["section_path"][-1]):
            continue  # a case's diagnosis is the condition its features' section names, never an overview's
        units = _preferred_units(plan, planned, chunk) if wanted == 1 else units_for_task(chunk, planned.task)
        if len(units) >= wanted:
            first = (turn * wanted) % len(units)
            if wanted == 1:
                return [units[first]]
            partner = next((units[(first + k) % len(units)] for k in range(1, len(units)) if not _overlap(units[first], units[(first + k) % len(units)])), None)
            if partner:  # a dialogue's second reply says something the first did not
                return [units[first], partner]
    return []


def _joined_answers(plan: EvidencePlan) -> dict[int, list[AnswerUnit]]:
    """Each multi-hop round's answers, worked out once per plan in round order: the other chapter's answer
    (multi_hop.hop_units, the best told first) whose hop has a built question, then the bridge line; a round whose
    two answers an earlier multi-hop round took asks nothing. Its question is built in either question mode
    (hop_questions): the model writes no hop, so each hop's question fits its own span as a built pair's does."""
    def assign() -> dict[int, list[AnswerUnit]]:
        taken: set[tuple[str, str]] = set()
        answers: dict[int, list[AnswerUnit]] = {}
        for n, planned in enumerate(plan.rounds):
            found = hop_units(planned.evidence) if task_style(planned.task).joins_chapters else None
            other = next((u for u, _ in found.answers if hop_questions(plan, planned, [u, found.bridge])), None) if found else None
            if other and (other.text, found.bridge.text) not in taken:
                answers[n] = [other, found.bridge]
                taken.add((other.text, found.bridge.text))
        return answers

    return per_plan("joined_answers", plan, assign)


def own_passages(plan: EvidencePlan, planned: EvidenceRound) -> list[dict[str, Any]]:
    """The round's passages of the plan's own chapter: a neighbour retrieved from another chapter is context,
    its answers are that chapter's rows (and a case's diagnosis that chapter's condition)."""
    return [c for c in planned.evidence if c.get("chapter_key", plan.chapter_key) == plan.chapter_key]


def _built_answers(plan: EvidencePlan) -> dict[int, list[AnswerUnit]]:
    """Each pair and dialogue round's answers when questions are built (no free_questions), worked out once
    per plan in round order, from the chapter's own passages (a neighbour retrieved from another chapter is
    context; its answers are that chapter's rows). A pair round takes the first answer of its passages (its
    seed passage's first) whose built question is about its task (a treatment round a treatment, a
    differential round a difference; a factual round prefers what neither of those would ask) and that no
    earlier round took: rounds of several tasks on overlapping passages would otherwise ask one
    question again. A dialogue round takes two such answers, not overlapping, neither of them a reply of an
    earlier dialogue (three dialogues of one pair with other openings are one dialogue; two that share a
    reply repeat half of it), those no pair row has first (a dialogue whose exchange is a pair row's asks its
    question again; where every answer is taken it still does: a chapter's few dialogues would be lost)."""
    return per_plan("built_answers", plan, lambda: _assign_built_answers(plan))


def _assign_built_answers(plan: EvidencePlan) -> dict[int, list[AnswerUnit]]:
    taken: set[str] = set()  # answers of rows so far, pair or dialogue
    answers: dict[int, list[AnswerUnit]] = {}
    replied: set[str] = set()  # dialogues' answers
    for n, planned in enumerate(plan.rounds):
        own = own_passages(plan, planned)
        if shape_of(planned.task) == "pair":
            for chunk in own:
                units = [u for u in _asked_units(plan, planned, chunk) if u.text not in taken]
                if units:
                    answers[n] = units[:1]
                    taken.add(units[0].text)
                    break
        elif shape_of(planned.task) == "dialogue":
            asked: dict[str, AnswerUnit] = {}  # one answer per question, the first
            for unit in (u for chunk in own for u in units_for_task(chunk, planned.task)):
                asked.setdefault(built_question(plan, planned, unit), unit)
            units = [u for question, u in asked.items() if question and u.text not in replied]
            pairs = [[a, b] for a in units for b in units if a is not b and not _overlap(a, b)]
            pairs.sort(key=lambda pair: sum(u.text in taken for u in pair))  # stable: answers no pair row has first
            if pairs:
                answers[n] = pairs[0]
                taken.update(u.text for u in pairs[0])
                replied.update(u.text for u in pairs[0])
    return answers


def _preferred_units(plan: EvidencePlan, planned: EvidenceRound, chunk: dict[str, Any]) -> list[AnswerUnit]:
    """A passage's answers for the round's task: those about its topic first, then those whose structure says
    what they answer before those the model must write a question for."""
    topic = task_style(planned.task).answer_topic
    return sorted(units_for_task(chunk, planned.task),
                  key=lambda u: (bool(topic and not topic.search(u.text)), structured_question(plan, planned, [u]) is None))


def _free_answers(plan: EvidencePlan) -> dict[int, list[AnswerUnit]]:
    """Each pair round's answer when the model may write questions (free_questions), worked out once per plan
    in round order: the first preferred answer of its own passages that no earlier pair round took, whatever
    that round's task. Rotating per task asked one answer once per task (NIMH ADHD pages, qwen2.5-coder-1.5b,
    2026-12-06: "Although there is no cure for ADHD ..." three times, kept three times, deduplicated later),
    paying a call for each; a round whose passages are all taken asks nothing, so a chapter is exhausted
    once every answer was asked."""
    def assign() -> dict[int, list[AnswerUnit]]:
        taken: set[str] = set()
        answers: dict[int, list[AnswerUnit]] = {}
        for n, planned in enumerate(plan.rounds):
            if shape_of(planned.task) != "pair":
                continue
            unit = next((u for chunk in own_passages(plan, planned) for u in _preferred_units(plan, planned, chunk) if u.text not in taken), None)
            if unit:
                answers[n] = [unit]
                taken.add(unit.text)
        return answers

    return per_plan("free_answers", plan, assign)


def _asked_units(plan: EvidencePlan, planned: EvidenceRound, chunk: dict[str, Any]) -> list[AnswerUnit]:
    """A passage's answers with a built question about the round's task, in the order the round prefers them."""
    def about(task: str, unit: AnswerUnit) -> bool:
        style = task_style(task)
        return not style.answer_topic or bool(style.answer_topic.search(unit.text)) or (style.asks_difference and differential_line(chunk, unit))

    units = [u for u in units_for_task(chunk, planned.task) if about(planned.task, u) and structured_question(plan, planned, [u])]
    if not task_style(planned.task).asks_difference:  # 'How is X told apart from Y?' is a differential round's question
        units = [u for u in units if not differential_line(chunk, u)]
    others = task_style(planned.task).yields_to
    return sorted(units, key=lambda u: any(about(task, u) for task in others))  # stable: the passage's own order otherwise


def _overlap(a: AnswerUnit, b: AnswerUnit) -> bool:
    return a.chunk_id == b.chunk_id and any(s < f and t < e for s, e in a.spans for t, f in b.spans)


def asks(plan: EvidencePlan, n: int, free_questions: bool, mode: str = "extractive") -> bool:
    """Whether round n has something to ask: an answer for its task, or (unanswerable) a question. Waves are
    made of such rounds only, so a wave of n rounds asks n questions."""
    if task_style(plan.rounds[n].task).joins_chapters and not hop_units(plan.rounds[n].evidence):
        return False  # the chapter has no line naming another chapter's condition: there is nothing to join
    if mode == "abstractive":
        return True
    if shape_of(plan.rounds[n].task) == "abstention":
        return free_questions or borrowed_question(plan, plan.rounds[n]) is not None  # the model's own, or one borrowed
    return bool(round_units(plan, n, free_questions))


def section_condition(section: str) -> str:
    """The condition a section's title names ('Anorexia Nervosa' of 'Diagnostic Criteria for Anorexia Nervosa'), or ''."""
    named = SECTION_LEAD.sub("", section).strip().rstrip("?？:").strip()
    named = ZH_SECTION_END.sub("", named)  # '重性抑郁发作的诊断要点' names 重性抑郁发作
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
    "patients someone option options help happen occur define defined mean means some any ways".split()
)  # no "most", "common", "first", "usually": they would make a claim the answer may not. "some" is there because
# without it a writer that starts "What are some" is held to the one word that begins so: qwen2.5-coder-1.5b wrote
# "What are someone who has ADHD may use ...?" and "What are someone of the forms ...?" (NIMH, 2026-12-06).
WORD = re.compile(r"^[A-Za-z][A-Za-z'\-]*$")
# The Chinese counterpart of ASKING; the answer's own words come from jieba's segmentation.
ASKING_ZH = (
    "什么 哪些 如何 怎样 怎么 是否 为什么 何时 多久 多少 几 哪种 哪个 应当 需要 可以 能否 会 有 的 是 在 和 与 或 及 对 时 中 "
    "患者 病人 医生 诊断 治疗 处理 症状 表现 特点 区别 鉴别 情况 方面 包括 呢".split()
)
HAN_WORD = re.compile(r"^[\u4e00-\u9fff]+$")


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
           fixed: str | tuple[str, str, str] | None = None, closed_vocabulary: bool = True) -> dict[str, Any]:
    """fixed: the question's own pattern when the answer's structure says what it must ask (structured_question),
    for a dialogue the three patient turns' patterns (structured_turns); closed_vocabulary: GenerationSettings'."""
    shape = shape_of(task)
    closed = closed_vocabulary and mode == "extractive" and shape not in ("vignette", "abstention")
    start = START[language]
    turn_patterns = fixed if isinstance(fixed, tuple) else None
    fixed = fixed if isinstance(fixed, str) else None
    pattern = fixed or (question_pattern(answer, topic, language) if closed else open_question_pattern(language))
    question = {"type": "string", "pattern": pattern}
    if shape == "dialogue":
        # The patient's two questions: one free pattern each. A grammar that forced the first person on them
        # ("I ..." or "... I ...") made the 135M model ramble or repeat to max_tokens (54 s a call, not 5): their
        # voice is left to the fit rule. The opening is one sentence, so its first stop ends it.
        opening, asked, follow_up = OPENING[language], f"^[{start}]{PLAIN}{{12,}}$", f"^[{start}]{PLAIN}{{12,}}$"
        if turn_patterns:
            opening, asked, follow_up = turn_patterns
        turns = {"type": "array", "prefixItems": [{"type": "string", "pattern": asked}, {"type": "string", "pattern": follow_up}],
                 "items": False, "minItems": 2}
        # The clinician's asking turn is never the model's (dialogue.reflection builds it): the 1.5B's own
        # reflections stated claims in 5 of 6 dialogues ("you're experiencing a major depressive episode, which is
        # the most common type ...") and ran to max_tokens in 2 of 8 calls (the depressive chapter, 2026-12-07).
        properties = {"opening": {"type": "string", "pattern": opening}, "patient_turns": turns}
        return {"type": "object", "properties": properties, "required": list(properties)}
    if shape == "vignette":
        case = {"type": "string", "pattern": f"^[{start}]{PLAIN}{{60,}}$"}
        return {"type": "object", "properties": {"case": case, "question": question}, "required": ["case", "question"]}
    if mode == "hybrid" and shape != "abstention" and not task_style(task).joins_chapters:
        answer = {"type": "string", "pattern": f"^{PLAIN}{{24,}}$"}
        return {"type": "object", "properties": {"question": question, "answer": answer}, "required": ["question", "answer"]}
    return {"type": "object", "properties": {"question": question}, "required": ["question"]}


def question_kind(task: str, language: str) -> str:
    """How the prompt names the question to write: the style's words, a pair's default for the other shapes."""
    return task_style(task).question_kind.get(language) or task_style(DEFAULT_TASK).question_kind[language]


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
        "question_kind": question_kind(planned.task, plan.language),
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
    section's heading asks. A heading that only points elsewhere ('For More Information') says where to
    read more, not 'the for more information of Feeding Eating'."""
    focus, chapter = inline_title(planned.focus), inline_title(plan.chapter_title)
    if plan.language != "en":
        return f"{chapter}：{focus}" if focus and focus not in chapter else chapter
    if POINTER_HEADING.search(focus):
        return f"where to read more about {chapter}"
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
    shape = shape_of(planned.task)
    if shape == "dialogue":
        said, opening = data.get("patient_turns"), data.get("opening")
        if not isinstance(said, list) or len(said) < 2 or not all(isinstance(t, str) and t.strip() for t in said[:2]):
            raise ValueError("model output has no two patient turns")
        if not isinstance(opening, str) or not opening.strip():
            raise ValueError("model output has no patient opening")
        asked = reflection(opening.strip(), language)
        turns = [
            {"role": "patient", "content": opening.strip()},
            {"role": "clinician", "content": asked, "act": ASK},
            {"role": "patient", "content": said[0].strip()},
            {"role": "clinician", "content": units[0].text, "act": INFORM, "cites": units[0].supporting_spans(chunk_texts[units[0].chunk_id])},
            {"role": "patient", "content": said[1].strip()},
            {"role": "clinician", "content": units[1].text, "act": INFORM, "cites": units[1].supporting_spans(chunk_texts[units[1].chunk_id])},
        ]
        return {"question": turns[2]["content"], "answer": units[0].text, "turns": turns, "supporting_spans": spans}
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("model output has no question")
    question = question.strip()
    if shape == "abstention":
        return {"question": question, "answer": UNANSWERABLE_ANSWER[language].format(topic=passage_topic(plan, planned)), "supporting_spans": []}
    if task_style(planned.task).joins_chapters:
        chunks = {e["chunk_id"]: e for e in planned.evidence}
        asked = hop_questions(plan, planned, units) or []
        hops = [hop(chunks[u.chunk_id], q, u.text, u.supporting_spans(chunk_texts[u.chunk_id])) for u, q in zip(units, asked)]
        found = hop_units(planned.evidence)
        joins = {"condition": found.condition_of(units[0]) if found else "", "chapters": [h["chapter_key"] for h in hops]}
        return {"question": question, "answer": joined_answer([u.text for u in units], language), "hops": hops, "joins": joins,
                "supporting_spans": spans}
    if shape == "vignette":
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
