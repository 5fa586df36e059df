"""RAG-grounded QA generation for one chapter, in the paper's style, to a quota of kept pairs.

Each call fills its round's task template (factual recall, clinical vignette, differential
diagnosis, treatment, counselling dialogue, unanswerable; in the chapter's language) with the
chapter title and that round's evidence, and asks for schema-shaped JSON. By default answers
come first, cut from the evidence (ragtune.generate.answer_first), and the model writes the question;
`answer_mode` per task switches a task to hybrid or to free (abstractive) writing. Waves of calls run
until the filter keeps `quota` pairs: each top-up wave takes the unused planned rounds whose
task and section have the fewest kept pairs so far, sized by the keep rate seen so far.
Every pair keeps its evidence and supporting spans; every failed call goes to a ledger.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from ragtune.generate import answer_first, built_questions, dialogue, hops
from ragtune.generate.answer_first import check_answer_modes, default_answer_modes
from ragtune.generate.evidence import EvidencePlan, EvidenceRound
from ragtune.generate.fit_scores import CachedFitJudge
from ragtune.generate.grounding import supporting_spans
from ragtune.generate.qa_filter import FilterSettings, filter_qa
from ragtune.generate.row_rules import first_broken_rule
from ragtune.llm.client import CachedLLM, ChatRequest, Completion, SamplingParams
from ragtune.llm.progress import Progress
from ragtune.llm.prompts import format_passages, inline_title, render_messages, task_template, template_sha256
from ragtune.llm.tasks import run_tasks
from ragtune.llm.usage import Price, Usage
from ragtune.tasks import shape_of, task_style

DIALOGUE_ROLES = ("patient", "clinician") * 3  # opening, reflecting question, two questions and their answers


# Shortest question and answer the schema allows, in characters (Chinese packs say more per character).
MIN_LENGTH = {"en": (10, 32), "zh": (6, 12)}  # en answers of 32+ characters pass the 5-word rule more often;
# (10, 20) and (20, 40) kept fewer pairs per minute in bench/generate.py


def qa_schema(task: str, n_items: int, language: str = "en") -> dict[str, Any]:
    # No maxLength: llama.cpp expands it into a grammar that slows sampling ~2x; max_tokens bounds length.
    # minLength stops the empty and clipped strings small models emit; cheap, unlike maxLength.
    shortest_question, shortest_answer = MIN_LENGTH[language]
    if shape_of(task) == "dialogue":
        # The turn order is in the schema (a tuple of patient/clinician turns), so even a small model
        # cannot produce the out-of-order or role-less turns that parse_items would have to reject.
        def turn(role: str) -> dict[str, Any]:
            content = {"type": "string", "minLength": shortest_question}
            return {"type": "object", "properties": {"role": {"const": role}, "content": content}, "required": ["role", "content"]}

        turns = {"type": "array", "prefixItems": [turn(role) for role in DIALOGUE_ROLES], "items": False}
        one = {"type": "object", "properties": {"turns": turns}, "required": ["turns"]}
        return {"type": "object", "properties": {"dialogues": {"type": "array", "items": one, "minItems": 1, "maxItems": n_items}}, "required": ["dialogues"]}
    question = {"type": "string", "minLength": shortest_question}
    answer = {"type": "string", "minLength": shortest_answer}
    pair = {"type": "object", "properties": {"question": question, "answer": answer}, "required": ["question", "answer"]}
    if task_style(task).joins_chapters:  # the joined question and each hop's own question and answer
        two = {"type": "array", "items": pair, "minItems": 2, "maxItems": 2}
        pair = {"type": "object", "properties": {"question": question, "hops": two}, "required": ["question", "hops"]}
    return {"type": "object", "properties": {"pairs": {"type": "array", "items": pair, "minItems": 1, "maxItems": n_items}}, "required": ["pairs"]}


@dataclass
class GenerationSettings:
    quota: int = 80  # kept pairs wanted per chapter (the paper kept ~80 of 60-100 generated)
    max_waves: int = 6  # the first wave plus top-ups
    first_keep_rate: float = 0.5  # sizes the first wave; later waves use the rate observed
    pairs_per_call: int = 1
    temperature: float = 0.3
    repeat_penalty: float = 1.3
    max_tokens: int = 300
    seed: int = 0
    retries: int = 1  # new seed per retry when the output is malformed (or, answer-first, breaks a row rule)
    # A local model (short name or GGUF path) that writes the retry of a question that broke a row rule (a
    # question that does not fit its answer, most often): one rewrite before the row is dropped. "" = the writer.
    rewrite_model: str = ""
    # Whether the model may write a pair's question where the answer's structure does not say it (a question
    # heading, a definition, a differential line, "X includes ..."). Off by default: read against their
    # evidence, the embedded 135M model's own questions fitted 0-3 of 20 NIMH rows (BENCHMARKS.md); a writer
    # that earns it (qwen2.5-coder-1.5b, an endpoint) may turn it on. Off, an unanswerable round borrows another
    # passage's built question (built_questions.borrowed_question) and a dialogue's patient asks its replies' built
    # questions (built_questions.structured_turns); vignette cases are the model's in any case.
    free_questions: bool = False
    # Whether a model-written question (extractive mode) is decoded from a closed vocabulary: the answer's words,
    # its titles' and a few asking words (answer_first.question_pattern). It stops the 135M model inventing terms,
    # but it traps a writer that means a word outside it: the grammar lets the word's first token through and
    # then ends the word there, so qwen2.5-coder-1.5b wrote "as person in" (assessment), "tell your" and
    # "What does the FDA have not approved" (42 of 151 of its kept NIMH/handbook questions were ungrammatical,
    # 2026-12-06). Off, the question is free text; the row rules still drop terms its evidence does not hold.
    closed_vocabulary: bool = True
    # Per task: "extractive" (the answer is cut from the evidence, the model writes the question),
    # "hybrid" (the model may rephrase it, every content term must stay in the evidence) or
    # "abstractive" (the model writes both; for strong models).
    answer_mode: dict[str, str] = field(default_factory=default_answer_modes)
    # What this step may pay (cached calls are free): generation stops cleanly once reached, and a
    # rerun continues from the cache. 0 = no limit. A budget in USD needs the model's price.
    budget_usd: float = 0.0
    budget_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("quota", "max_waves", "pairs_per_call"):
            if getattr(self, name) < 1:
                raise ValueError(f"qa_candidates {name} must be at least 1, not {getattr(self, name)}")
        for name in ("budget_usd", "budget_tokens", "retries", "max_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"qa_candidates {name} cannot be negative ({getattr(self, name)}); a budget of 0 means no limit")

    def mode(self, task: str) -> str:
        return self.answer_mode.get(task, "extractive")


@dataclass
class Budget:
    """The limit on what a step pays, in USD (with the model's price) or in tokens (prompt + completion)."""

    usd: float = 0.0
    tokens: int = 0
    price: Price | None = None

    def __post_init__(self) -> None:
        if self.usd > 0 and self.price is None:
            raise ValueError("budget_usd needs the model's price: add the model to the LLM resource's prices "
                             "(USD per million input/output tokens), or set budget_tokens instead")

    @property
    def limited(self) -> bool:
        return self.usd > 0 or self.tokens > 0

    def spent_fraction(self, usage: Usage) -> float:
        parts = []
        if self.usd > 0 and self.price is not None:
            parts.append(self.price.cost(usage) / self.usd)
        if self.tokens > 0:
            parts.append((usage.prompt_tokens + usage.completion_tokens) / self.tokens)
        return max(parts, default=0.0)

    def affordable_calls(self, usage: Usage, most: int) -> int:
        """Calls that fit in what is left, at the mean cost per paid call so far (one call to learn it)."""
        if not self.limited:
            return most
        left = 1.0 - self.spent_fraction(usage)
        if left <= 0:
            return 0
        if usage.calls == 0:
            return min(most, 1)
        per_call = self.spent_fraction(usage) / usage.calls
        return max(0, min(most, int(left / per_call))) if per_call > 0 else most


@dataclass
class ChapterGeneration:
    qa_pairs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    llm_calls: int = 0
    cache_hits: int = 0
    completion_tokens: int = 0
    usage: Usage = field(default_factory=Usage)  # tokens of the calls paid in this run
    budget_reached: bool = False  # stopped by the budget before the quota; a rerun continues from the cache
    progress: list[dict[str, Any]] = field(default_factory=list)  # one entry per wave
    kept: int = 0
    waves: int = 0
    rounds_used: int = 0
    quota_met: bool = False
    exhausted: bool = False  # every planned round used and the quota still not met
    endpoint_down: bool = False  # a call found the endpoint down: generation stopped there, the rest is for a rerun
    rounds_without_answer: int = 0  # answer-first rounds whose evidence offered no answer for the task (no call made)
    question_rewrites: int = 0  # rounds asked again because their question broke a row rule (e.g. did not fit its answer)
    rewrites_kept: int = 0  # ... of which the rewritten question was kept
    coverage: list[dict[str, Any]] = field(default_factory=list)  # per section: candidates, kept


def generate_chapter_qa(
    plan: EvidencePlan,
    llm: CachedLLM,
    settings: GenerationSettings,
    filter_settings: FilterSettings | None = None,
    price: Price | None = None,
    on_wave: Callable[[Progress], None] | None = None,
    rewriter: CachedLLM | None = None,
    fit_judge: CachedFitJudge | None = None,
    every_task_first: bool = True,
) -> ChapterGeneration:
    """Waves of calls until `quota` rows pass filter_settings (default rules), the waves run out,
    every planned round is used (exhausted) or the budget is spent (budget_reached). Rows come back
    in planned-round order. on_wave hears after each wave how far the chapter got. A question that broke
    a row rule is written again once, by `rewriter` when given (settings.rewrite_model), else by llm.
    fit_judge, when given, is the filter's last rule (the quota counts the pairs it keeps). every_task_first:
    the first wave holds a round of every task (_pick_rounds); a preview of n rounds asks exactly n."""
    check_answer_modes(settings.answer_mode)
    budget = Budget(settings.budget_usd, settings.budget_tokens, price)
    result = ChapterGeneration()
    filter_settings = filter_settings or FilterSettings()
    unused = askable_rounds(plan, settings)
    result.rounds_without_answer = len(plan.rounds) - len(unused)  # no answer (or question) for their task: never asked
    kept_rows: list[dict[str, Any]] = []
    start = time.monotonic()
    while result.waves < settings.max_waves and len(kept_rows) < settings.quota and unused:
        if budget.limited and budget.affordable_calls(result.usage, 1) == 0:
            result.budget_reached = True
            break
        rate = len(kept_rows) / len(result.qa_pairs) if result.qa_pairs else settings.first_keep_rate
        wave = _pick_rounds(plan, unused, kept_rows, wave_size(settings, len(kept_rows), rate), first=every_task_first and not result.waves)
        taken = set(wave)
        unused = [n for n in unused if n not in taken]
        not_asked = _run_wave(plan, wave, llm, settings, result, budget, rewriter)
        unused = sorted(unused + not_asked)
        result.budget_reached = bool(not_asked)
        result.waves += 1
        result.rounds_used += len(wave) - len(not_asked)
        kept_rows = filter_qa(result.qa_pairs, filter_settings, fit_judge).kept
        progress = Progress("qa_candidates", plan.chapter_key, len(kept_rows), settings.quota, "kept", result.waves, result.llm_calls,
                            result.cache_hits, len(result.failures), Usage().add(result.usage),
                            price.cost(result.usage) if price else None, time.monotonic() - start)
        result.progress.append(progress.to_dict())
        if on_wave is not None:
            on_wave(progress)
        result.endpoint_down = any(f.get("unavailable") for f in result.failures)
        if result.budget_reached or result.endpoint_down:
            break
    result.qa_pairs.sort(key=lambda row: row["generation"]["round"])
    result.kept = len(kept_rows)
    result.rewrites_kept = sum(1 for row in kept_rows if row["generation"].get("rewrite"))
    result.quota_met = result.kept >= settings.quota
    result.exhausted = not result.quota_met and not unused and not result.endpoint_down
    result.coverage = _coverage(plan, result.qa_pairs, kept_rows)
    return result


def shortfall_message(key: str, result: ChapterGeneration, settings: GenerationSettings, cost_usd: float | None = None) -> str | None:
    """Why a chapter kept fewer pairs than its quota, and what to do; None when the quota was met. A plan
    none of whose rounds had an answer with a structure-built question (free_questions off) says so: built
    questions read handbook sentences (definitions, treatments, differential lines, question headings), and
    a research article or a contract offers few of them."""
    if result.budget_reached:
        return (f"chapter '{key}': budget reached after {result.usage.calls} paid calls ({cost_usd} USD, "
                f"{result.usage.prompt_tokens + result.usage.completion_tokens} tokens): {result.kept} of {settings.quota} pairs kept. "
                "Rerun with a higher budget to continue; the calls made are cached and not paid again.")
    if result.exhausted and not result.rounds_used and not settings.free_questions:
        return (f"chapter '{key}' is exhausted: none of its {result.rounds_without_answer} planned rounds found an answer whose "
                "structure dictates a question (a definition, a treatment or differential line, a question heading), so no call "
                "was made; set qa_candidates free_questions: true with a writer that earns it (a stronger model or endpoint) "
                "to let the model write questions, which the fit rule then checks")
    if result.exhausted:
        return (f"chapter '{key}' is exhausted: {result.kept} of {settings.quota} pairs kept after all "
                f"{result.rounds_used} planned rounds; raise chapter_evidence rounds or use a stronger model")
    if not result.quota_met:
        return (f"chapter '{key}': {result.kept} of {settings.quota} pairs kept after {result.waves} waves "
                "(max_waves); raise max_waves or use a stronger model")
    return None


def askable_rounds(plan: EvidencePlan, settings: GenerationSettings) -> list[int]:
    """The rounds waves are made of: those with something to ask (answer_first.asks)."""
    return [n for n in range(len(plan.rounds)) if answer_first.asks(plan, n, settings.free_questions, settings.mode(plan.rounds[n].task))]


def wave_size(settings: GenerationSettings, kept: int, keep_rate: float) -> int:
    """Rounds the next wave asks for: what is missing at the keep rate seen so far (at least 10%)."""
    return math.ceil((settings.quota - kept) / (settings.pairs_per_call * max(keep_rate, 0.1)))


def _pick_rounds(plan: EvidencePlan, unused: list[int], kept_rows: list[dict[str, Any]], size: int, first: bool = False) -> list[int]:
    """The next rounds, asking for what is missing: tasks and sections with the fewest kept pairs first,
    counting the rounds this wave already took, so a wave spreads over the tasks (planned order breaks
    ties). The first wave takes at least one round of every task it can ask: a small quota would
    otherwise be filled by the plan's first tasks, and a chapter's dialogues never asked."""
    by_task = Counter(row["task"] for row in kept_rows)
    by_section = Counter(row["focus"] for row in kept_rows)
    if first:
        size = max(size, len({plan.rounds[n].task for n in unused}))
    picked: list[int] = []
    left = list(unused)
    while left and len(picked) < size:
        best = min(left, key=lambda n: (by_task[plan.rounds[n].task] + by_section[plan.rounds[n].focus], n))
        picked.append(best)
        left.remove(best)
        by_task[plan.rounds[best].task] += 1
    return sorted(picked)


def _run_wave(
    plan: EvidencePlan, wave: list[int], llm: CachedLLM, settings: GenerationSettings, result: ChapterGeneration, budget: Budget,
    rewriter: CachedLLM | None = None,
) -> list[int]:
    """One batch of calls; malformed outputs are retried together with a new seed, then recorded
    with the raw text. A backend error is recorded at once (the backend already retried it).
    Rounds grounded on the same chunks go back to back: every template starts with the same system
    prompt and the passages, so the engine's prefix cache (llama.cpp's reused KV, vLLM's prefix
    caching) reads those tokens once. Under a budget the batch goes in slices of what the budget
    still affords; returns the rounds never asked because it ran out."""
    pending = sorted(wave, key=lambda n: ([e["chunk_id"] for e in plan.rounds[n].evidence], n))
    units = {n: answer_first.round_units(plan, n, settings.free_questions) for n in pending if settings.mode(plan.rounds[n].task) != "abstractive"}
    not_asked: list[int] = []
    rewrites: dict[int, str] = {}  # round -> why its first question was rejected
    for attempt in range(settings.retries + 1):
        retry: list[int] = []
        while pending:
            ahead = budget.affordable_calls(result.usage, len(pending))
            if ahead == 0:
                not_asked += pending if attempt == 0 else []
                break
            part, pending = pending[:ahead], pending[ahead:]
            again = [n for n in part if n in rewrites] if rewriter is not None else []  # before this batch adds to rewrites
            retry += _ask(plan, [n for n in part if n not in again], attempt, llm, settings, units, result, rewrites)
            retry += _ask(plan, again, attempt, rewriter, settings, units, result, rewrites) if again else []
        pending = retry
    return not_asked


def _ask(
    plan: EvidencePlan, pending: list[int], attempt: int, llm: CachedLLM, settings: GenerationSettings, units: dict,
    result: ChapterGeneration, rewrites: dict[int, str],
) -> list[int]:
    """One batch of rounds at one attempt: rows into result; returns the rounds to ask again (rounds whose
    question broke a row rule join `rewrites`)."""
    if not pending:
        return []
    requests = [_request(plan, plan.rounds[n], n, attempt, settings, units.get(n), rewrites.get(n, "")) for n in pending]

    def parse(i: int, text: str, pending: list[int] = pending) -> list[dict[str, Any]]:
        planned = plan.rounds[pending[i]]
        mode = settings.mode(planned.task)
        if mode == "abstractive":
            return parse_items(planned.task, text)
        return [answer_first.parse(plan, planned, units[pending[i]], mode, text)]

    def describe(i: int, pending: list[int] = pending, attempt: int = attempt) -> dict[str, Any]:
        planned = plan.rounds[pending[i]]
        return {"chapter_key": plan.chapter_key, "round": pending[i], "task": planned.task, "focus": planned.focus, "attempt": attempt}

    run = run_tasks(llm, requests, parse, describe)
    result.failures.extend(run.failures)
    result.cache_hits += run.cache_hits
    result.llm_calls += run.calls
    result.completion_tokens += run.completion_tokens
    result.usage.add(run.usage)
    retry = []
    for n, items, outcome in zip(pending, run.values, run.completions):
        if outcome is None:
            continue  # the backend failed (after its own retries): recorded, not asked again
        if items is None:
            retry.append(n)  # malformed output, recorded with its raw text: asked again with a new seed
            continue
        planned = plan.rounds[n]
        mode = settings.mode(planned.task)
        rows = [_qa_row(plan, planned, n, found, outcome, mode, units.get(n, []), attempt, n in rewrites) for found in items]
        result.qa_pairs.extend(rows)
        broken = [first_broken_rule(row) for row in rows]
        if mode != "abstractive" and all(broken) and n not in rewrites and rows[0]["generation"]["question_from"] == "model":
            retry.append(n)  # the answer is sound, the question is not: written again once (by the rewriter, if any)
            rewrites[n] = f'"{rows[0]["question"]}" ({broken[0][1]})'
            result.question_rewrites += 1
    return retry


def _request(
    plan: EvidencePlan, planned: EvidenceRound, n: int, attempt: int, settings: GenerationSettings, units: list | None,
    rejected: str = "",
) -> ChatRequest:
    mode = settings.mode(planned.task)
    if mode != "abstractive":
        sampling = SamplingParams(
            temperature=settings.temperature, max_tokens=settings.max_tokens * (2 if shape_of(planned.task) == "dialogue" else 1),
            seed=settings.seed + n + 1000 * attempt,
            repeat_penalty=settings.repeat_penalty,
        )
        messages = answer_first.render(plan, n, units or [], mode, format_passages(planned.evidence), rejected)
        topic = f"{plan.chapter_title} {planned.focus}"
        fixed = built_questions.structured_question(plan, planned, units or []) or built_questions.structured_turns(plan, planned, units or [])
        schema = answer_first.schema(planned.task, mode, units[0].text if units else None, topic, plan.language, fixed,
                                     settings.closed_vocabulary)
        return ChatRequest(messages, sampling, schema)
    messages = render_messages(
        task_template(planned.task, plan.language),
        passages=format_passages(planned.evidence),
        chapter_title=inline_title(plan.chapter_title),
        n_pairs=settings.pairs_per_call,
        focus=inline_title(planned.focus),
    )
    sampling = SamplingParams(
        temperature=settings.temperature,
        max_tokens=settings.max_tokens * (2 if shape_of(planned.task) == "dialogue" else 1),
        seed=settings.seed + n + 1000 * attempt,
        repeat_penalty=settings.repeat_penalty,
    )
    return ChatRequest(messages, sampling, qa_schema(planned.task, settings.pairs_per_call, plan.language))


def parse_items(task: str, text: str) -> list[dict[str, Any]]:
    """Question/answer pairs, or for dialogues the turns (the row's question and answer are its first
    exchange that informs, dialogue.first_exchange, once acts are known). Raises ValueError on anything unusable."""
    try:
        data = json.loads(text, strict=False)  # small models put raw newlines inside strings
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON from the model: {error}") from error
    if not isinstance(data, dict):
        raise ValueError("model output is not a JSON object")
    if shape_of(task) == "dialogue":
        items = []
        for written in data.get("dialogues") or []:
            turns = [
                {"role": t["role"], "content": str(t["content"]).strip()}
                for t in (written.get("turns") or [] if isinstance(written, dict) else [])
                if isinstance(t, dict) and t.get("role") in ("patient", "clinician") and str(t.get("content", "")).strip()
            ]
            alternating = all(t["role"] == ("patient" if i % 2 == 0 else "clinician") for i, t in enumerate(turns))
            if len(turns) >= 2 and alternating:
                items.append({"question": turns[0]["content"], "answer": turns[1]["content"], "turns": turns})
        if not items:
            raise ValueError("model output has no dialogue of alternating patient/clinician turns")
        return items
    pairs = data.get("pairs")
    if not isinstance(pairs, list):
        raise ValueError("model output has no 'pairs' list")
    if task_style(task).joins_chapters:
        joined = []
        for p in pairs:
            written = [{"question": str(h["question"]).strip(), "answer": str(h["answer"]).strip()}
                       for h in (p.get("hops") or [] if isinstance(p, dict) else []) if isinstance(h, dict) and "question" in h and "answer" in h]
            if isinstance(p, dict) and "question" in p and len(written) >= 2:
                joined.append({"question": str(p["question"]).strip(), "hops": written})
        if not joined:
            raise ValueError("model output has no question with two hops")
        return joined
    clean = [
        {"question": str(p["question"]).strip(), "answer": str(p["answer"]).strip()}
        for p in pairs
        if isinstance(p, dict) and "question" in p and "answer" in p
    ]
    if not clean:
        raise ValueError("model output has no complete question/answer pair")
    return clean


def _qa_row(
    plan: EvidencePlan, planned: EvidenceRound, n: int, found: dict[str, Any], completion: Completion, mode: str, units: list,
    attempt: int = 0, rewrite: bool = False,
) -> dict[str, Any]:
    template = answer_first.template_for(planned.task, mode, plan.language)
    evidence = [{k: v for k, v in e.items() if k != "chapter_title"} for e in planned.evidence]
    if "hops" in found and "answer" not in found:  # written freely: each hop cites the spans it overlaps, its chunk the first's
        found = {**found, "hops": [_cited_hop(h, planned.evidence) for h in found["hops"]]}
        found["answer"] = hops.joined_answer([h["answer"] for h in found["hops"]], plan.language)
        found["joins"] = {"condition": "", "chapters": list(dict.fromkeys(h["chapter_key"] for h in found["hops"]))}
    identity = "\n".join(t["content"] for t in found["turns"]) if "turns" in found else f"{found['question']}\n{found['answer']}"
    qa_id = hashlib.sha256(f"{plan.chapter_key}\n{identity}".encode()).hexdigest()[:16]
    if "turns" in found:  # each clinician turn's act; an informing turn written freely cites the spans it overlaps
        turns = dialogue.with_acts(found["turns"], lambda said: supporting_spans(said, evidence))
        question, answer = dialogue.first_exchange(turns)
        found = {**found, "turns": turns, "question": question, "answer": answer}
    answer_text = dialogue.informing_text(found) if "turns" in found else found["answer"]
    row = {
        "qa_id": qa_id,
        "task": planned.task,
        "language": plan.language,
        "question": found["question"],
        "answer": found["answer"],
        "chapter_key": plan.chapter_key,
        "chapter_title": plan.chapter_title,
        "focus": planned.focus,
        "evidence": evidence,
        "chunk_ids": [e["chunk_id"] for e in evidence],
        "answer_mode": mode,
        "supporting_spans": found["supporting_spans"] if "supporting_spans" in found else supporting_spans(answer_text, evidence),
        "generation": {
            "model": completion.model,
            "cache_key": completion.cache_key,
            "template": template,
            "template_sha256": template_sha256(template),
            "round": n,
            "attempt": attempt,
            "rewrite": rewrite,  # the question was written again because the first broke a row rule
            # "structure": the answer's structure dictated the question (built_questions.structured_question), "model": the model wrote it
            "question_from": built_questions.question_source(plan, planned, units) if mode != "abstractive" else "model",
        },
    }
    if completion.reasoning:
        row["reasoning"] = completion.reasoning  # the reasoning model's thinking before it wrote this row
    if "turns" in found:
        row["turns"] = found["turns"]
    if "case" in found:
        row["case"] = found["case"]
    if "hops" in found:
        row["hops"], row["joins"] = found["hops"], found["joins"]
    if units:
        row["answer_units"] = [{"kind": u.kind, "unit_id": u.unit_id, "chunk_id": u.chunk_id} for u in units]
    return row


def _cited_hop(written: dict[str, str], evidence: list[dict[str, Any]]) -> dict[str, Any]:
    """A freely written hop as a hop record: the spans its answer overlaps, from the chunk of its best one."""
    cites = supporting_spans(written["answer"], evidence)
    best = max(cites, key=lambda c: c["overlap"])["chunk_id"] if cites else evidence[0]["chunk_id"]
    chunk = next(e for e in evidence if e["chunk_id"] == best)
    return hops.hop(chunk, written["question"], written["answer"], [c for c in cites if c["chunk_id"] == best])


def _coverage(plan: EvidencePlan, rows: list[dict[str, Any]], kept_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sections = list(dict.fromkeys(r.focus for r in plan.rounds))
    made, kept = Counter(r["focus"] for r in rows), Counter(r["focus"] for r in kept_rows)
    return [{"section": s, "candidates": made[s], "kept": kept[s]} for s in sections]
