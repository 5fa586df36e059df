"""Counselling dialogues that counsel: what each turn does, and the checks that hold a dialogue to it.

A dialogue alternates patient and clinician, 3-8 turns, the patient first. The patient speaks for
themself: the opening in the first person (a complaint, a feeling), later turns in the first person or as
a question, never in a clinician's, a document's or an assistant's voice. A clinician turn does one of two
things: it *asks* (reflects what the patient said and asks a question; it states nothing the patient has
not said, so it needs no evidence) or it *informs* (says what the evidence says, and cites its span). Only
informing turns are held to the evidence by the groundedness gate; an asking turn is held to stating
nothing new. Turns written before acts were recorded read as: a clinician turn ending in a question asks.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ragtune.text import CJK_RUN, latin_terms, sentence_spans, term_set, words

ASK, INFORM = "ask", "inform"
MIN_TURNS, MAX_TURNS = 3, 8
QUESTION_END = re.compile(r"[?？]\s*$")
# The open question of a built asking turn (its reflection is the patient's own words, said back).
OPEN_QUESTIONS = {
    "en": ("What would you most like to understand about it?", "What worries you most about it?",
           "What would help you most to know?", "What would you like to ask me about it?"),
    "zh": ("你最想了解的是什么？", "其中最让你担心的是什么？", "你最想问我什么？"),
}
# Said back to the patient: first person becomes second and second first ('I have been ...' -> 'you have been ...').
SAID_BACK = {"i was": "you were", "i": "you", "i'm": "you're", "i've": "you've", "i'd": "you'd", "i'll": "you'll", "me": "you", "my": "your",
             "mine": "yours", "myself": "yourself", "am": "are",
             "you": "me", "your": "my", "yours": "mine", "yourself": "myself"}
# The words of reflecting itself, which an asking turn may add to the patient's (stems, as latin_terms gives them).
REFLECTING = frozenset("sound like hear thank tell sorri hard difficult heavi tough lot carri must seem understand share glad feel felt "
                       "you'r you'v you'd you'll".split())  # 'you're' is the patient's "I'm" said back
REFLECTING_ZH = frozenset("听起来谢告诉能感受到很难辛苦不容易")
# A patient turn in an assistant's or a counsellor's voice ('It sounds like you are struggling, I recommend
# ...'): a small writer that is told to play the patient slips into the role it was trained for.
ASSISTANT_VOICE = re.compile(
    r"\b(?:as an? (?:ai|assistant|language model|clinician|doctor|therapist|psychiatrist|counsell?or)|i(?:'m| am) here to (?:help|support|listen)|"
    r"how (?:can|may) i (?:help|assist)|i (?:would )?(?:recommend|suggest|advise) (?:that )?you|you should|you may want to|"
    r"it(?:'s| is) important (?:to|that|for you)|let me explain|it sounds like|i can hear that|thank you for (?:sharing|telling me)|"
    r"i understand (?:how|that|what) you|your (?:symptoms|condition|diagnosis|treatment)|i(?:'m| am) (?:a|your) (?:doctor|clinician|therapist|psychiatrist|psychologist))\b"
    r"|作为(?:医生|AI|助手|咨询师|治疗师)|我建议你|你应该|听起来你|感谢你(?:的)?分享|我能理解你|我是(?:你的)?(?:医生|咨询师|治疗师)",
    re.I,
)
FIRST_PERSON = re.compile(r"\b(?:I|I'm|I've|I'd|I'll|me|my|mine|myself|we|our)\b|我", re.I)
THIRD_PERSON_VOICE = re.compile(
    r"\b(?:the patient|a patient|patients|clinicians?|the handbook|the passage|the text|the chapter|the criteria|diagnostic criteria)\b|患者|手册", re.I)
# What a patient's opening says of them: a feeling, a complaint, something they go through or cannot do
# ('I'm here to talk about feeding and eating disorders' names a topic, not a patient; the 135M, 2026-12-07).
EXPERIENCE = re.compile(
    r"\b(?:feel\w*|felt|worr\w*|scar(?:ed|es|y)|afraid|fear\w*|anxious|nervous|panic\w*|sad|low|down|tired|exhausted|stress\w*|upset|"
    r"struggl\w*|trouble\w*|hard|difficult|can't|cannot|couldn't|don't|keep|kept|lately|recently|sleep\w*|eat\w*|"
    r"lonely|hopeless|overwhelm\w*|pain\w*|hurts?|cry\w*|angry|irritab\w*|confus\w*|concern\w*|suffer\w*|lost|losing|"
    r"weight|thoughts?|mood|energy|empty|numb|ashamed|guilty|restless|tense|nightmares?|flashbacks?|rituals?|check\w*|wash\w*)\b"
    r"|感觉|觉得|担心|害怕|焦虑|难过|伤心|睡不|失眠|吃不|最近|总是|一直|压力|痛苦|紧张|烦|累|不想|心情|情绪|念头|恐惧|孤独|控制不", re.I)
NUMBER = re.compile(r"\d|\b(?:percent|one in|twice|half)\b|[一二两三四五六七八九十百]+(?:周|个月|年|天|次|%)", re.I)


def act_of(turn: dict[str, Any]) -> str | None:
    """What a clinician turn does (None for a patient's): its recorded act, else asking when it ends in a question."""
    if turn.get("role") != "clinician":
        return None
    return turn.get("act") or (ASK if QUESTION_END.search(turn.get("content", "")) else INFORM)


def informing_turns(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in turns if act_of(t) == INFORM]


def first_exchange(turns: list[dict[str, Any]]) -> tuple[str, str]:
    """A dialogue as one question and answer: the first informing turn and the patient turn before it. Dedup,
    leakage and evaluation read a dialogue row's question and answer, and the opening (a complaint, often
    built from the chapter's condition) is neither distinct nor what the answer answers."""
    at = next((n for n, t in enumerate(turns) if act_of(t) == INFORM), None)
    if at is None or at == 0:
        return turns[0]["content"], turns[1]["content"] if len(turns) > 1 else ""
    return turns[at - 1]["content"], turns[at]["content"]


def informing_text(row: dict[str, Any]) -> str:
    """What a row claims: a dialogue's informing turns, a pair's answer. This is what the gate checks."""
    turns = row.get("turns")
    return " ".join(t["content"] for t in informing_turns(turns)) if turns else row["answer"]


def with_acts(turns: list[dict[str, Any]], cite: Callable[[str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each clinician turn with its act, and each informing turn with the spans it cites (`cite` finds
    them for a turn written freely; an extractive turn carries its own)."""
    out = []
    for turn in turns:
        act = act_of(turn)
        if act is None:
            out.append(dict(turn))
        elif act == ASK:
            out.append({**turn, "act": ASK})
        else:
            out.append({**turn, "act": INFORM, "cites": turn.get("cites") or cite(turn["content"])})
    return out


def reflection(opening: str, language: str) -> str:
    """A built asking turn: the opening said back in the second person, then an open question (chosen by
    the opening, so dialogues vary). It holds no word the patient did not say but the lead and the question:
    claim-free by construction, for writers too small to be trusted with this turn (the 135M model's own
    reflections ran on for 300 tokens about 'the patient', 2026-12-07)."""
    said = opening.strip().rstrip(".!。！")
    questions = OPEN_QUESTIONS[language]
    question = questions[sum(map(ord, said)) % len(questions)]
    if language == "zh":
        return f"听起来{said.replace('我们', '你们').replace('我', '你')}。{question}"
    back = re.sub(r"\bI was\b|\b[A-Za-z]+(?:'[a-z]+)?\b", lambda w: SAID_BACK.get(w.group(0).lower(), w.group(0)), said)  # one pass
    back = back[:1].lower() + back[1:] if back[1:2].islower() else back  # 'Someone in my family' -> 'someone in your family'
    return f"It sounds like {back}. {question}"


def patient_problem(text: str, n: int) -> str | None:
    """A patient turn speaks for the patient: the opening (n == 0) in the first person and of what they feel
    or go through, a later turn in the first person or as a question; none in a clinician's, a document's or
    an assistant's voice."""
    if not FIRST_PERSON.search(text) and not (n > 0 and QUESTION_END.search(text)):
        return f"patient turn {n + 1} neither speaks in the first person nor asks ({text[:60]!r})"
    voice = ASSISTANT_VOICE.search(text) or THIRD_PERSON_VOICE.search(text)
    if voice:
        return f"patient turn {n + 1} speaks as a clinician, an assistant or a document ({voice.group(0)!r})"
    if n == 0 and not EXPERIENCE.search(text):
        return f"the patient's opening says nothing they feel or go through ({text[:60]!r})"
    return None


def ask_problem(text: str, said: str) -> str | None:
    """An asking turn asks, and its statements only say back what the patient said: any other content word
    (the words of reflecting itself aside) or a figure is a claim, and a claim belongs in an informing turn
    with its span. Chinese is read by character, the reflection's 你 as the patient's 我."""
    if not QUESTION_END.search(text):
        return f"the clinician's asking turn asks nothing ({text[-40:]!r})"
    known = {term for term in term_set(said) if not CJK_RUN.fullmatch(term)} | REFLECTING
    for sentence in (text[start:end].strip() for start, end in sentence_spans(text)):
        if QUESTION_END.search(sentence):
            continue
        figure = NUMBER.search(sentence)
        told = [surface for surface, term in latin_terms(sentence) if term not in known]
        told += [ch for ch in sentence.replace("你", "我") if CJK_RUN.match(ch) and ch not in said and ch not in REFLECTING_ZH]
        if figure or told:
            what = figure.group(0) if figure else ", ".join(dict.fromkeys(told[:4]))
            return f"the clinician's asking turn states what the patient did not say ({what!r}) without citing it"
    return None


COPIED_RUN = 6  # words in a row (Chinese: characters x 2) that a patient's statement shares with an informing turn


def copies(said: str, told: str) -> bool:
    """A statement of the patient repeats the clinician's words: a run of COPIED_RUN words (or 2 x COPIED_RUN
    Chinese characters) in common. A question may reuse them ('What separates a depressive disorder from ordinary
    sadness?' asks about its answer's subject); a statement that does speaks as the document."""
    if CJK_RUN.search(said):
        size = 2 * COPIED_RUN
        return any(said[i:i + size] in told for i in range(len(said) - size + 1))
    mine, theirs = words(said), " ".join(words(told))
    return any(" ".join(mine[i:i + COPIED_RUN]) in theirs for i in range(len(mine) - COPIED_RUN + 1))


def shape_problem(turns: list[dict[str, Any]]) -> str | None:
    """3-8 turns, patient first, roles alternating, a clinician turn that asks and one that informs, each
    informing turn citing a span."""
    if not MIN_TURNS <= len(turns) <= MAX_TURNS:
        return f"the dialogue has {len(turns)} turns, not {MIN_TURNS}-{MAX_TURNS}"
    if any(t.get("role") != ("patient" if n % 2 == 0 else "clinician") for n, t in enumerate(turns)):
        return "the dialogue's turns do not alternate patient, clinician, starting with the patient"
    if not any(act_of(t) == ASK for t in turns):
        return "no clinician turn asks: the clinician only recites the evidence"
    informing = informing_turns(turns)
    if not informing:
        return "no clinician turn informs: the dialogue says nothing from its evidence"
    if any("act" in t and not t.get("cites") for t in informing):
        return "an informing clinician turn cites no span of the evidence"
    return None


def counselling_problem(row: dict[str, Any]) -> str | None:
    """The checks of this module on one dialogue row: shape, each patient turn's voice, each asking turn's
    claims. (qa_fit.dialogue_fit adds that each reply takes up the turn before it.)"""
    turns = row.get("turns") or []
    problem = shape_problem(turns)
    if problem:
        return problem
    told = [t["content"] for t in informing_turns(turns)]  # an asking turn says the patient's words back by design
    for n, turn in enumerate(turns):
        said = turn["content"]
        if turn["role"] == "patient":
            problem = patient_problem(said, n // 2)
            if not problem and not QUESTION_END.search(said) and any(copies(said, reply) for reply in told):
                problem = f"patient turn {n // 2 + 1} repeats the clinician's words: it speaks as the document ({said[:50]!r})"
        elif act_of(turn) == ASK:
            problem = ask_problem(said, " ".join(t["content"] for t in turns[:n] if t["role"] == "patient"))
        else:
            problem = None  # an informing turn is the gate's (grounding.grounding_verdict)
        if problem:
            return problem
    return None
