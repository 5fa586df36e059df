"""Self-instruct from seed tasks, grounded: Alpaca grew its instructions from 175 seed tasks by showing a
model a few of them and asking for more; here the new instructions are then answered from the collection,
never by the model's memory.

A user writes a few seed tasks per category (seeds/<chapter_key>.jsonl, the Alpaca / LLaMA-Factory shape:
instruction, optional input, output). Per chapter:

1. propose: each call shows `seeds_shown` seeds (a different draw per call) and asks for `per_call` new
   questions in their style about the chapter;
2. keep the novel ones: a proposal whose ROUGE-L with a seed or an earlier proposal reaches `max_similarity`
   (Alpaca's 0.7) is dropped, so no seed comes back as a row;
3. answer from evidence: the question retrieves `top_k` passages from the index; the answer units of those
   passages (ragtune.generate.answer_units: sentences, definitions, lists, table rows, cut with exact
   offsets) nearest to the question are offered to the model, which picks the one that answers it or none.
   The answer is then a true span of its evidence like every other extractive row, and a question the
   collection cannot answer makes no row.

The rows carry task SELF_INSTRUCT and go through the same filter, gate, fit check, dedup and split sealing
as every other row (qa_filtered, instruction_dataset).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.generate.answer_first import open_question_pattern
from ragtune.generate.answer_units import AnswerUnit, units_for_task
from ragtune.generate.evidence import ROUND_FIELDS
from ragtune.generate.fit_scores import CachedFitJudge
from ragtune.index.vector_index import ChunkIndex
from ragtune.llm.client import CachedLLM, ChatRequest, Completion, SamplingParams
from ragtune.llm.prompts import LANGUAGES, fenced, inline_title, render_messages, template_sha256
from ragtune.llm.tasks import run_tasks
from ragtune.llm.usage import Usage
from ragtune.tasks import SELF_INSTRUCT
from ragtune.text import chinese_words

SEED_SUFFIXES = (".jsonl", ".json")
PROPOSE, CHOOSE = SELF_INSTRUCT, f"{SELF_INSTRUCT}_answer"  # templates in ragtune/prompts/<language>/: the style's own, and the answer pick
SEED_SIMILARITY = 0.7  # rouge_l at which a question counts as a seed's copy (Alpaca dropped proposals above 0.7)


class SeedFileError(ValueError):
    """A seed file that cannot be read: the message names the file and line and what to write there."""


@dataclass(frozen=True)
class SeedTask:
    instruction: str
    input: str = ""
    output: str = ""

    def shown(self) -> str:
        """The task as an example in the prompt: its instruction, and its input when it has one."""
        return self.instruction + (f" ({self.input})" if self.input else "")

    def to_dict(self) -> dict[str, str]:
        return {"instruction": self.instruction, "input": self.input, "output": self.output}


def seed_file(seeds_dir: Path, chapter_key: str) -> Path | None:
    """The chapter's seed file in seeds_dir (<chapter_key>.jsonl, or a JSON list in <chapter_key>.json)."""
    return next((p for s in SEED_SUFFIXES if (p := Path(seeds_dir) / f"{chapter_key}{s}").is_file()), None)


def load_seed_tasks(path: Path) -> list[SeedTask]:
    """Seed tasks from JSON lines or a JSON list of {"instruction", "input", "output"} objects."""
    text = Path(path).read_text(encoding="utf-8")
    shape = 'each task is {"instruction": "...", "input": "...", "output": "..."} (input and output may be empty)'
    if path.suffix == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise SeedFileError(f"{path}: not JSON ({error.msg} at line {error.lineno}); write a JSON list where {shape}") from error
        if not isinstance(items, list):
            raise SeedFileError(f"{path}: a JSON list of seed tasks is expected; {shape}")
        numbered = list(enumerate(items, start=1))
        where = "item"
    else:
        numbered, where = [], "line"
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((n, json.loads(line)))
            except json.JSONDecodeError as error:
                raise SeedFileError(f"{path}:{n}: not a JSON object ({error.msg}); one task per line, {shape}") from error
    tasks = []
    for n, item in numbered:
        if not isinstance(item, dict) or not isinstance(item.get("instruction"), str) or not item["instruction"].strip():
            raise SeedFileError(f"{path} {where} {n}: no instruction; {shape}")
        extra = {k: item.get(k, "") for k in ("input", "output")}
        if any(not isinstance(v, str) for v in extra.values()):
            raise SeedFileError(f"{path} {where} {n}: input and output must be text; {shape}")
        tasks.append(SeedTask(" ".join(item["instruction"].split()), extra["input"].strip(), extra["output"].strip()))
    if not tasks:
        raise SeedFileError(f"{path}: no seed tasks; {shape}")
    return tasks


@dataclass
class SelfInstructSettings:
    seeds_dir: str = ""  # folder of <chapter_key>.jsonl seed files; "" or a chapter without a file: nothing is grown
    calls: int = 6  # proposal calls per chapter
    per_call: int = 4  # new questions asked of each call
    seeds_shown: int = 3  # seed tasks shown in each call, drawn anew per call
    top_k: int = 3  # passages retrieved per question
    choices: int = 4  # answer units of those passages, nearest to the question first, offered to the model
    max_similarity: float = SEED_SIMILARITY  # rouge_l with a seed or an earlier proposal at which a proposal is dropped
    temperature: float = 0.7
    max_tokens: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("calls", "per_call", "seeds_shown", "top_k", "choices", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"seed_candidates {name} must be at least 1, not {getattr(self, name)}")
        if not 0 < self.max_similarity <= 1:
            raise ValueError(f"seed_candidates max_similarity must be in (0, 1], not {self.max_similarity}")


@dataclass
class SelfInstructResult:
    qa_pairs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # every failed call, with its raw output
    proposed: int = 0  # questions the calls returned
    novel: list[str] = field(default_factory=list)  # ... not near a seed or an earlier one
    unanswered: list[str] = field(default_factory=list)  # novel questions no retrieved passage answers
    llm_calls: int = 0
    cache_hits: int = 0
    usage: Usage = field(default_factory=Usage)  # tokens of the calls paid in this run


@lru_cache(maxsize=1 << 16)
def _words(text: str) -> tuple[str, ...]:
    """Words without punctuation (jieba's for Chinese); cached, as curation compares every row with every seed."""
    found = chinese_words(text) if re.search(r"[\u4e00-\u9fff]", text) else re.findall(r"\w+", text.lower())
    return tuple(w for w in found if re.search(r"\w", w))


def _score(common: int, x: int, y: int) -> float:
    return max(2 * common / (x + y), common / y)


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L of text a against b over words (Chinese: its words): the longest common subsequence's F1, or its
    share of b when that is higher, so a proposal that wraps a whole seed b in words of its own still counts as
    the seed (the 135M model wrote "What a clinician ... would ask: <a seed, word for word>", F1 0.65). Only b's
    share: "How is generalized anxiety disorder diagnosed?" holds 5 of its 6 words in a seed that asks how long
    worry must last, and is another question (a ladder row, 2026-12-07)."""
    x, y = _words(a), _words(b)
    if not x or not y:
        return 0.0
    previous = [0] * (len(y) + 1)
    for word in x:
        row = [0]
        for j, other in enumerate(y):
            row.append(previous[j] + 1 if word == other else max(previous[j + 1], row[j]))
        previous = row
    return _score(previous[-1], len(x), len(y))


def near_seed(question: str, seeds: list[str], threshold: float = SEED_SIMILARITY) -> str | None:
    """The first seed instruction the question copies or nearly copies (rouge_l >= threshold), else None. The
    words two texts share bound their common subsequence, so most pairs are settled without it."""
    words = Counter(_words(question))
    for seed in seeds:
        theirs = _words(seed)
        if words and theirs and _score(sum((words & Counter(theirs)).values()), sum(words.values()), len(theirs)) >= threshold \
                and rouge_l(question, seed) >= threshold:
            return seed
    return None


def novel_questions(proposals: list[str], seeds: list[SeedTask], max_similarity: float) -> list[str]:
    """Proposals in order, less those as close as max_similarity to a seed's instruction or an earlier proposal."""
    kept: list[str] = []
    for question in proposals:
        if near_seed(question, [s.instruction for s in seeds] + kept, max_similarity) is None:
            kept.append(question)
    return kept


def propose_schema(per_call: int, language: str) -> dict[str, Any]:
    question = {"type": "string", "pattern": open_question_pattern(language)}
    return {"type": "object", "properties": {"questions": {"type": "array", "items": question, "minItems": 1, "maxItems": per_call}},
            "required": ["questions"]}


def propose_requests(seeds: list[SeedTask], chapter_title: str, language: str, settings: SelfInstructSettings) -> list[ChatRequest]:
    """One request per call, each showing its own draw of seeds (seeded: a rerun asks the same, from the cache)."""
    requests = []
    for call in range(settings.calls):
        shown = random.Random(f"{settings.seed}:{call}").sample(seeds, min(settings.seeds_shown, len(seeds)))
        examples = "\n".join(f"- {fenced(s.shown())}" for s in shown)
        messages = render_messages(f"{language}/{PROPOSE}", chapter_title=inline_title(chapter_title), examples=examples, n=settings.per_call)
        sampling = SamplingParams(temperature=settings.temperature, max_tokens=settings.max_tokens, seed=settings.seed + call)
        requests.append(ChatRequest(messages, sampling, propose_schema(settings.per_call, language)))
    return requests


def parse_questions(text: str) -> list[str]:
    data = json.loads(text)
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
        raise ValueError('expected {"questions": ["...", ...]}')
    return [" ".join(q.split()) for q in questions if q.strip()]


def candidate_answers(question_vector: np.ndarray, index: ChunkIndex, embedder: Any, settings: SelfInstructSettings
                      ) -> tuple[list[dict[str, Any]], list[AnswerUnit]]:
    """The question's passages (top_k of the index) and their answer units nearest to it, at most `choices`."""
    hits = index.search(question_vector, settings.top_k)
    evidence = [{**{k: getattr(h.chunk, k) for k in ROUND_FIELDS}, "chapter_key": h.chunk.chapter_key, "score": round(h.score, 4)}
                for h in hits]
    units = [u for e in evidence for u in units_for_task(e, SELF_INSTRUCT)]
    if not units:
        return evidence, []
    vectors = embedder.encode([u.text for u in units])
    order = np.argsort(-(vectors @ np.asarray(question_vector, dtype=np.float32)), kind="stable")
    return evidence, [units[i] for i in order[: settings.choices]]


def choose_request(question: str, units: list[AnswerUnit], language: str, settings: SelfInstructSettings) -> ChatRequest:
    options = "\n".join(f"[{n}] {fenced(u.text)}" for n, u in enumerate(units, start=1))
    messages = render_messages(f"{language}/{CHOOSE}", question=fenced(question), options=options, n=len(units))
    schema = {"type": "object", "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": len(units)}}, "required": ["answer"]}
    return ChatRequest(messages, SamplingParams(temperature=0.0, max_tokens=16, seed=settings.seed), schema)


def parse_choice(text: str, count: int) -> int:
    data = json.loads(text)
    choice = data.get("answer") if isinstance(data, dict) else None
    if not isinstance(choice, int) or isinstance(choice, bool) or not 0 <= choice <= count:
        raise ValueError(f'expected {{"answer": 0..{count}}}')
    return choice


def seed_row(chapter_key: str, chapter_title: str, language: str, n: int, question: str, unit: AnswerUnit,
             evidence: list[dict[str, Any]], proposal: Completion, chosen_by: dict[str, Any]) -> dict[str, Any]:
    """A candidate row like answer-first generation's (ragtune.generate.qa_generation), its question grown from
    seeds; chosen_by says what picked its answer (the fit judge's p(yes), or the model's choice call)."""
    chunk = next(e for e in evidence if e["chunk_id"] == unit.chunk_id)
    return {
        "qa_id": hashlib.sha256(f"{chapter_key}\n{question}\n{unit.text}".encode()).hexdigest()[:16],
        "task": SELF_INSTRUCT,
        "language": language,
        "question": question,
        "answer": unit.text,
        "chapter_key": chapter_key,
        "chapter_title": chapter_title,
        "focus": chunk["section_path"][-1] if chunk["section_path"] else chapter_title,
        "evidence": evidence,
        "chunk_ids": [e["chunk_id"] for e in evidence],
        "answer_mode": "extractive",
        "supporting_spans": unit.supporting_spans(chunk["text"]),
        "generation": {
            "model": proposal.model,
            "cache_key": proposal.cache_key,
            "template": f"{language}/{PROPOSE}",
            "template_sha256": template_sha256(f"{language}/{PROPOSE}"),
            "round": n,
            "attempt": 0,
            "rewrite": False,
            "question_from": "seed_tasks",
            "answer_chosen_by": chosen_by,
        },
        "answer_units": [{"kind": unit.kind, "unit_id": unit.unit_id, "chunk_id": unit.chunk_id}],
    }


def _best_by_judge(rows: list[dict[str, Any]], fit_judge: CachedFitJudge) -> dict[str, Any] | None:
    """The candidate row the fit judge likes best, when its p(yes) reaches the judge's threshold."""
    scored = [(fit_judge(row), row) for row in rows]
    p_yes, best = max(scored, key=lambda s: s[0])
    if p_yes < fit_judge.min_yes:
        return None
    best["generation"]["answer_chosen_by"] = {"fit_judge": fit_judge.model_id, "p_yes": round(p_yes, 4)}
    return best


def grow_chapter(seeds: list[SeedTask], chapter_key: str, chapter_title: str, language: str, index: ChunkIndex, embedder: Any,
                 llm: CachedLLM, settings: SelfInstructSettings, fit_judge: CachedFitJudge | None = None) -> SelfInstructResult:
    """Proposals from the seeds, the novel ones answered from the index; failed calls in result.failures. With a
    fit judge, a question's answer is the candidate it rates best (none below its threshold); without one, the
    model picks (a second call per question)."""
    if language not in LANGUAGES:
        raise ValueError(f"no self-instruct prompts for language {language!r}; packs: {', '.join(LANGUAGES)}")
    result = SelfInstructResult()
    propose = run_tasks(llm, propose_requests(seeds, chapter_title, language, settings), lambda i, text: parse_questions(text),
                        lambda i: {"stage": "self_instruct_propose", "chapter_key": chapter_key, "call": i})
    proposals = [(q, c) for found, c in zip(propose.values, propose.completions) if found for q in found]
    result.proposed = len(proposals)
    result.novel = novel_questions([q for q, _ in proposals], seeds, settings.max_similarity)
    source = {q: c for q, c in reversed(proposals)}  # the first call that proposed each question
    offered = [candidate_answers(v, index, embedder, settings) for v in embedder.encode(result.novel)] if result.novel else []

    def row(n: int, unit: AnswerUnit, chosen_by: dict[str, Any]) -> dict[str, Any]:
        return seed_row(chapter_key, chapter_title, language, n, result.novel[n], unit, offered[n][0], source[result.novel[n]], chosen_by)

    asked = [n for n, (_, units) in enumerate(offered) if units]
    runs = [propose]
    if fit_judge is not None:
        picked = {n: _best_by_judge([row(n, u, {}) for u in offered[n][1]], fit_judge) for n in asked}
    else:
        choose = run_tasks(llm, [choose_request(result.novel[n], offered[n][1], language, settings) for n in asked],
                           lambda i, text: parse_choice(text, len(offered[asked[i]][1])),
                           lambda i: {"stage": "self_instruct_answer", "chapter_key": chapter_key, "question": result.novel[asked[i]]})
        runs.append(choose)
        picked = {n: row(n, offered[n][1][choice - 1], {"model": c.model, "cache_key": c.cache_key, "template": f"{language}/{CHOOSE}"})
                  if choice else None for n, choice, c in zip(asked, choose.values, choose.completions) if choice is not None}
    for n, question in enumerate(result.novel):
        if n in asked and n not in picked:
            continue  # its choice call failed: in failures
        if picked.get(n):
            result.qa_pairs.append(picked[n])
        else:
            result.unanswered.append(question)  # no candidate, or none answers it
    for run in runs:
        result.failures.extend(run.failures)
        result.llm_calls += run.calls
        result.cache_hits += run.cache_hits
        result.usage.add(run.usage)
    return result
