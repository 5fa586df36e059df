"""Task styles: one record per kind of row the generator writes (a factual question, a case, a dialogue...).

A style says what its rounds retrieve (the sections it prefers, the words of its fallback query), how often
it is asked, which answers suit it (answer unit kinds, best first, and what they should be about), how the
prompt names the question it wants, what shape its rows take, and which row rules it is exempt from.
Adding a style is one record here plus its prompt files, ragtune/prompts/<language>/<name>.txt (the
abstractive template; the answer-first templates are per shape). Every stage reads the record: no module
names a task but this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

# pair: a question and its answer; vignette: a case and its diagnosis; dialogue: patient and clinician turns;
# abstention: a question the evidence does not answer, and an answer that says so.
Shape = Literal["pair", "vignette", "dialogue", "abstention"]
SHAPES: tuple[Shape, ...] = ("pair", "vignette", "dialogue", "abstention")

# What an answer is about (answer units are preferred for a style when they match its topic).
CONTRAST = re.compile(r"\b(?:distinguish\w*|differ\w*|whereas|rather than|unlike|points? to|suggests?|separates?|instead)\b|区别|不同于|鉴别", re.I)
TREATMENT = re.compile(r"\b(?:treat\w*|therap\w*|medication\w*|psychotherap\w*|antidepress\w*|dose\w*|manag\w*|recommend\w*|first step|cbt)\b|治疗|药物|心理治疗", re.I)
FEATURE = re.compile(r"\b(?:symptom\w*|sign\w*|feature\w*|criteri\w*|present\w*|experienc\w*|feel\w*|mood|sleep|worry|fear|panic|episode)\b|症状|表现|标准", re.I)


@dataclass(frozen=True)
class TaskStyle:
    name: str
    shape: Shape  # what its rows hold, and so its answer-first template (prompts/<language>/answer_first_<shape>.txt but for a pair) and shape rules
    weight: int  # default share of a chapter's rounds (EvidenceSettings.task_mix); 0 leaves it off
    answer_kinds: tuple[str, ...] = ()  # answer unit kinds that suit it, best first (ragtune.generate.answer_units)
    answer_topic: re.Pattern | None = None  # what its answers should be about; None: anything
    focus_sections: re.Pattern | None = None  # sections it prefers as a round's focus; None: it cycles all
    focus_query: str = ""  # words added to the chapter title when the chapter has no chunk in the index
    question_kind: dict[str, str] = field(default_factory=dict)  # language -> how the prompt names the question to write
    yields_to: tuple[str, ...] = ()  # styles whose answers it leaves to them (a factual round, treatment and difference answers)
    asks_difference: bool = False  # its rounds retrieve a passage of another chapter, and its answers contrast two conditions
    joins_chapters: bool = False  # its rounds join a line of the chapter to another chapter's passage (ragtune.generate.multi_hop): a row per hop
    exempt_from: frozenset[str] = frozenset()  # checks its rows are not held to, from EXEMPTIONS
    planned: bool = True  # asked by planned rounds; False: its rows come from elsewhere (seed tasks) and task_mix cannot weigh it

    def __post_init__(self) -> None:
        unknown = set(self.exempt_from) - EXEMPTIONS
        if unknown:
            raise ValueError(f"task style {self.name!r}: no check may be exempted by the name(s) {sorted(unknown)}; names are {sorted(EXEMPTIONS)}")

    def exempt(self, rule: str) -> bool:
        return rule in self.exempt_from


# The checks a style may be exempt from (where each asks the style): question_not_answered and
# not_a_question (ragtune.generate.row_rules), authors_voice (row_rules.not_self_contained, for the
# question), answer_repeated and fit_judge (ragtune.generate.qa_filter).
EXEMPTIONS = frozenset({"question_not_answered", "not_a_question", "authors_voice", "answer_repeated", "fit_judge"})


# A patient's opening is not its reply's topic; an unanswerable question misfits on purpose.
NOT_ITS_ANSWERS_TOPIC = frozenset({"question_not_answered", "fit_judge"})
STYLES: tuple[TaskStyle, ...] = (
    TaskStyle("factual_recall", "pair", 3, ("section", "definition", "criteria_list", "sentence", "table_row"),
              question_kind={"en": "a factual question", "zh": "医生应当能够回答的事实性问题"},
              yields_to=("treatment_management", "differential_diagnosis")),
    TaskStyle("clinical_vignette", "vignette", 2, ("criteria_list", "section"), FEATURE,  # a diagnosis rests on a set of features
              focus_sections=re.compile(r"criteria|symptom|present|feature|sign", re.I),
              focus_query="symptoms, presentation and diagnostic criteria",
              exempt_from=frozenset({"question_not_answered"})),
    TaskStyle("differential_diagnosis", "pair", 1, ("sentence", "criteria_list"), CONTRAST,
              focus_sections=re.compile(r"differential|distinguish", re.I),
              focus_query="differential diagnosis, distinguishing features",
              question_kind={"en": "a question about how to tell two conditions apart", "zh": "关于如何鉴别这些疾病的问题"},
              asks_difference=True),
    TaskStyle("treatment_management", "pair", 2, ("section", "table_row", "sentence", "definition", "criteria_list"), TREATMENT,  # "X is the first-line ..." reads as a definition
              focus_sections=re.compile(r"treat|manag|therap|medic|care", re.I),
              focus_query="treatment and management",
              question_kind={"en": "a question about treatment", "zh": "关于治疗或处理的问题"}),
    # One question over two chapters: a line of this chapter that names a condition another chapter is about
    # (a differential line), and what that chapter says of it; each hop answered by its own span. A held-out
    # multi-hop row seals its other chapter's passage too, which the split draw counts (curation._freeze).
    TaskStyle("multi_hop", "pair", 1, ("definition", "sentence"),
              focus_sections=re.compile(r"differential|distinguish|鉴别", re.I),
              question_kind={"en": "a question that joins what two chapters say", "zh": "把两个章节的内容联系起来的问题"},
              joins_chapters=True),
    TaskStyle("counselling_dialogue", "dialogue", 1, ("sentence", "definition", "section"),
              exempt_from=NOT_ITS_ANSWERS_TOPIC | {"not_a_question", "authors_voice"}),  # a dialogue opens with the patient's story
    # Its answer is a template ('The cited passages do not answer this question; they are about ...'): one
    # answer for every unanswerable row of a section, so the cap on rows per answer does not apply.
    TaskStyle("unanswerable", "abstention", 1, exempt_from=NOT_ITS_ANSWERS_TOPIC | {"answer_repeated"}),
    # Questions grown from a user's seed tasks and answered from retrieved evidence (ragtune.generate.self_instruct):
    # no planned round asks it (weight 0); its rows come from the seed_candidates asset.
    TaskStyle("self_instruct", "pair", 0, ("section", "definition", "criteria_list", "sentence", "table_row"),
              question_kind={"en": "a question in the style of the user's seed tasks", "zh": "与用户示例任务风格相同的问题"}, planned=False),
)
TASK_STYLES: dict[str, TaskStyle] = {s.name: s for s in STYLES}
TASKS: tuple[str, ...] = tuple(TASK_STYLES)
DEFAULT_TASK = "factual_recall"  # a row without a task (a labelled item), and the style other styles borrow questions from
PAIR_TASKS: tuple[str, ...] = tuple(s.name for s in STYLES if s.shape == "pair")
SELF_INSTRUCT = "self_instruct"  # the style of rows grown from seed tasks


def task_style(task: str | None) -> TaskStyle:
    """The style of a row's or round's task; a row without one (None or "") is read as the default (a labelled item)."""
    if not task:
        return TASK_STYLES[DEFAULT_TASK]
    if task not in TASK_STYLES:
        raise ValueError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    return TASK_STYLES[task]


def shape_of(task: str | None) -> Shape:
    return task_style(task).shape


def default_task_mix() -> dict[str, int]:
    return {name: style.weight for name, style in TASK_STYLES.items()}
