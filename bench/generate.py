"""Generation throughput, measured in one run on the same chapters with the same local model:

(a) the raw engine: the exact requests the pipeline sent (first seed), straight to llama.cpp's
    create_chat_completion, one after the other, with nothing around them;
(b) this pipeline: evidence planning, then generate_chapter_qa to a quota (cache emptied first),
    answer-first (extractive, the default) for every seed, and free-writing (abstractive) for the first;
(c) llama-index's RagDatasetGenerator on each chapter's text, with the same model behind a
    llama-index CustomLLM and the same sampling settings, for every seed.

Kept pairs are counted for (b) and (c) by one function, ragtune.generate.qa_filter at its defaults,
each pair judged against the passages it was generated from, in two variants: as shipped (the
dialogue, vignette and unanswerable tasks are exempt from rules that do not fit them) and with no
exemption (every row judged as a plain question and answer; llama-index rows have no task, so the
variants differ only on ragtune's side). The pipeline/llama-index ratio of kept pairs per minute
is given with a 95% bootstrap interval over (seed, chapter) units, with both sides' LLM calls,
prompt and output tokens and rejections per rule. Writes its section of BENCHMARKS.md.

Usage: .venv/bin/python bench/generate.py [--chapters 6] [--quota 4] [--seeds 0 1 2 3 4]
       [--model qwen2.5-coder-1.5b] [--free-modes abstractive hybrid] [--no-raw]
A model other than the embedded default writes its own section (both sides run on it).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llama_index.core import Document as LlamaDocument  # noqa: E402
from llama_index.core.llama_dataset.generator import RagDatasetGenerator  # noqa: E402
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata  # noqa: E402
from llama_index.core.llms.callbacks import llm_completion_callback  # noqa: E402
from llama_index.core.node_parser import SentenceSplitter  # noqa: E402

from ragtune.benchmarks import machine, write_section  # noqa: E402
from ragtune.jsonl import write_jsonl  # noqa: E402
from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence  # noqa: E402
from ragtune.generate.qa_filter import RULES, FilterSettings, filter_qa  # noqa: E402
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa  # noqa: E402
from ragtune.index.chunking import chunk_chapter  # noqa: E402
from ragtune.index.embedding import Embedder  # noqa: E402
from ragtune.index.vector_index import ChunkIndex  # noqa: E402
from ragtune.ingest.pdf_parser import parse_pdf  # noqa: E402
from ragtune.llm.backends import LlamaCppBackend  # noqa: E402
from ragtune.llm.client import CachedLLM, ChatRequest, LLMCache  # noqa: E402
from ragtune.llm.local_models import model_name  # noqa: E402
from ragtune.tasks import TASKS  # noqa: E402

SETTINGS = GenerationSettings(max_waves=4)
MODEL: str | None = None  # --model: a GGUF path or a local model's short name, for both sides
MODE_NAMES = {"extractive": "answer-first", "abstractive": "free-writing", "hybrid": "hybrid"}


class RecordingBackend(LlamaCppBackend):
    """The pipeline's backend, keeping each request it sends so the raw engine can replay them, and
    the prompt tokens llama.cpp reports."""

    def __init__(self) -> None:
        super().__init__(MODEL)
        self.sent: list[ChatRequest] = []
        self.prompt_tokens = 0
        original = self.llama.create_chat_completion  # loads the model before any clock starts

        def counted(**kwargs):
            result = original(**kwargs)
            self.prompt_tokens += int(result["usage"]["prompt_tokens"])
            return result

        self.llama.create_chat_completion = counted

    def chat(self, request: ChatRequest):
        self.sent.append(request)
        return super().chat(request)


def judged(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Kept count and rejections per rule by the shipped filter, and with no task exemption."""
    variants = {"shipped": rows, "no_exemption": [{k: v for k, v in r.items() if k != "task"} for r in rows]}
    out = {}
    for name, candidates in variants.items():
        result = filter_qa(candidates, FilterSettings())
        out[name] = {"kept": len(result.kept), "removed": {rule: n for rule, n in result.removed.items() if n}}
        out.setdefault("kept_rows", result.kept)  # as shipped
        by_id = {row["qa_id"]: row for row in candidates}
        out.setdefault("rejected_rows", [{**by_id[r["qa_id"]], "rejected_by": r["rule"], "detail": r["detail"]} for r in result.rejected])
    return out


class SameModelLLM(CustomLLM):
    """llama-index's view of the same llama.cpp model, sampling like the pipeline."""

    backend: Any = None
    completion_tokens: int = 0
    prompt_tokens: int = 0
    calls: int = 0
    seed: int = 0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.backend.n_ctx, num_output=SETTINGS.max_tokens, model_name=self.backend.model_id)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        llama = self.backend.llama
        self.calls += 1
        seed = self.seed + self.calls  # one seed per call, as the pipeline uses one per round
        llama.set_seed(seed)
        result = llama.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            temperature=SETTINGS.temperature,
            max_tokens=SETTINGS.max_tokens,
            repeat_penalty=SETTINGS.repeat_penalty,
            seed=seed,
        )
        self.completion_tokens += int(result["usage"]["completion_tokens"])
        self.prompt_tokens += int(result["usage"]["prompt_tokens"])
        return CompletionResponse(text=result["choices"][0]["message"]["content"] or "")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        yield self.complete(prompt)


def run_pipeline(chapters, index, embedder, settings: GenerationSettings) -> dict[str, Any]:
    backend = RecordingBackend()
    cache_dir = Path(tempfile.mkdtemp(prefix="ragtune-bench-"))
    llm = CachedLLM(backend, LLMCache(cache_dir))
    start = time.perf_counter()
    per_chapter = []
    try:
        for chapter in chapters:
            began, calls, prompt = time.perf_counter(), llm.calls, backend.prompt_tokens
            plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=6 * settings.quota))
            result = generate_chapter_qa(plan, llm, settings)
            per_chapter.append({"seconds": time.perf_counter() - began, "candidates": len(result.qa_pairs), **judged(result.qa_pairs),
                                "calls": llm.calls - calls, "prompt_tokens": backend.prompt_tokens - prompt, "tokens": result.completion_tokens})
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return summed(per_chapter, time.perf_counter() - start) | {"sent": backend.sent}


def summed(per_chapter: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Totals of per-chapter records (kept, rejections per rule in both variants, calls, tokens)."""
    total: dict[str, Any] = {"seconds": seconds, "per_chapter": per_chapter}
    for key in ("candidates", "calls", "prompt_tokens", "tokens"):
        total[key] = sum(c[key] for c in per_chapter)
    for variant in ("shipped", "no_exemption"):
        total[variant] = {"kept": sum(c[variant]["kept"] for c in per_chapter),
                          "removed": sum((Counter(c[variant]["removed"]) for c in per_chapter), Counter())}
    total["kept"] = total["shipped"]["kept"]
    total["kept_rows"] = [row for c in per_chapter for row in c["kept_rows"]]
    total["rejected_rows"] = [row for c in per_chapter for row in c["rejected_rows"]]
    return total


def chapter_interval(first: list[dict[str, Any]], second: list[dict[str, Any]], draws: int = 2000,
                     variant: str = "shipped") -> tuple[float, float, float]:
    """Ratio of kept pairs per minute, first run over second, with a 95% bootstrap interval over
    units (chapters, or (seed, chapter) pairs; each draw resamples units and sums their kept pairs
    and seconds in both runs)."""
    rng = random.Random(0)

    def ratio(picked: list[int]) -> float:
        mine = sum(first[i][variant]["kept"] for i in picked) / sum(first[i]["seconds"] for i in picked)
        theirs = sum(second[i][variant]["kept"] for i in picked) / sum(second[i]["seconds"] for i in picked)
        return mine / theirs if theirs else float("inf")

    everything = list(range(len(first)))
    values = sorted(ratio([rng.randrange(len(first)) for _ in everything]) for _ in range(draws))
    return ratio(everything), values[int(0.025 * draws)], values[int(0.975 * draws) - 1]


def run_raw(requests: list[ChatRequest]) -> dict[str, Any]:
    backend = LlamaCppBackend(MODEL)
    backend.llama
    start = time.perf_counter()
    tokens = sum(backend.chat(request).completion_tokens for request in requests)
    return {"seconds": time.perf_counter() - start, "tokens": tokens, "calls": len(requests)}


def run_llama_index(chapters, questions_per_chunk: int, seed: int) -> dict[str, Any]:
    """RagDatasetGenerator on each chapter's text in turn, so both sides are timed per chapter."""
    llm = SameModelLLM(backend=LlamaCppBackend(MODEL), seed=seed)
    llm.backend.llama
    start = time.perf_counter()
    per_chapter, nodes = [], 0
    for chapter in chapters:
        began, calls, prompt, tokens = time.perf_counter(), llm.calls, llm.prompt_tokens, llm.completion_tokens
        # from_documents would run a keyword filter that imports spaCy even with no keywords; the nodes
        # it would build are llama-index's default SentenceSplitter over the document, made here directly.
        chapter_nodes = SentenceSplitter().get_nodes_from_documents([LlamaDocument(text=chapter.text())])
        generator = RagDatasetGenerator(chapter_nodes, llm=llm, num_questions_per_chunk=questions_per_chunk, workers=1)
        dataset = generator.generate_dataset_from_nodes()
        rows = [
            {"qa_id": str(n), "question": example.query, "answer": example.reference_answer or "",
             "evidence": [{"text": text} for text in example.reference_contexts or []]}
            for n, example in enumerate(dataset.examples)
        ]
        nodes += len(chapter_nodes)
        per_chapter.append({"seconds": time.perf_counter() - began, "candidates": len(rows), **judged(rows), "calls": llm.calls - calls,
                            "prompt_tokens": llm.prompt_tokens - prompt, "tokens": llm.completion_tokens - tokens})
    return summed(per_chapter, time.perf_counter() - start) | {"nodes": nodes}


def free_mode_line(runs: dict[str, dict[str, Any]], mode: str) -> str:
    name = MODE_NAMES[mode]
    if not runs[mode]["kept"]:
        return f"answer-first/{name}: {name} kept 0 pairs"
    ratio, low, high = chapter_interval(runs["extractive"]["per_chapter"], runs[mode]["per_chapter"])
    high_text = "∞" if high == float("inf") else f"{high:.1f}"
    return (f"answer-first/{name} (first seed), kept pairs per minute: {ratio:.1f}× (95% bootstrap over chapters {low:.1f}-{high_text}×; "
            f"a draw whose chapters {name} kept nothing from counts as ∞)")


def interval_text(ratio: float, low: float, high: float) -> str:
    def shown(x: float) -> str:
        return "∞" if x == float("inf") else f"{x:.1f}"

    return f"{shown(ratio)}× (95% bootstrap over (seed, chapter) units {shown(low)}-{shown(high)}×)"


def rules_text(removed: Counter) -> str:
    return ", ".join(f"{rule} {removed[rule]}" for rule in RULES if removed.get(rule)) or "-"


def main() -> None:
    global MODEL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", type=int, default=6, help="handbook chapters to generate for")
    parser.add_argument("--quota", type=int, default=4, help="kept pairs per chapter the pipeline aims for")
    parser.add_argument("--questions-per-chunk", type=int, default=2, help="llama-index's num_questions_per_chunk")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="sampling seeds, both sides")
    parser.add_argument("--model", help="the local model both sides run on (a GGUF path or short name; default: the embedded one)")
    parser.add_argument("--free-modes", nargs="*", default=["abstractive"], choices=["abstractive", "hybrid"],
                        help="answer modes also run for the first seed, beside answer-first")
    parser.add_argument("--no-raw", action="store_true", help="skip replaying the first seed's requests on the raw engine")
    args = parser.parse_args()
    MODEL = args.model
    SETTINGS.quota = args.quota
    document = parse_pdf(ROOT / "sample_handbook" / "handbook.pdf")
    embedder = Embedder()
    chunks = [c for ch in document.chapters for c in chunk_chapter(ch, document.doc_id, embedder.tokenize)]
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    chapters = document.chapters[: args.chapters]
    ours, theirs = {}, {}
    for seed in args.seeds:  # answer-first (the default) and llama-index, per seed
        ours[seed] = run_pipeline(chapters, index, embedder, replace(SETTINGS, seed=seed, answer_mode=dict.fromkeys(TASKS, "extractive")))
        theirs[seed] = run_llama_index(chapters, args.questions_per_chunk, seed)
        print(f"seed {seed}: ragtune kept {ours[seed]['kept']} in {ours[seed]['seconds']:.0f} s, "
              f"llama-index kept {theirs[seed]['kept']} in {theirs[seed]['seconds']:.0f} s", flush=True)
    first = args.seeds[0]
    runs = {"extractive": ours[first]}
    for mode in args.free_modes:
        runs[mode] = run_pipeline(chapters, index, embedder, replace(SETTINGS, seed=first, answer_mode=dict.fromkeys(TASKS, mode)))
        print(f"{MODE_NAMES[mode]}: kept {runs[mode]['kept']} in {runs[mode]['seconds']:.0f} s", flush=True)
    raw = None if args.no_raw else run_raw(ours[first]["sent"])
    units_ours = [c for seed in args.seeds for c in ours[seed]["per_chapter"]]
    units_theirs = [c for seed in args.seeds for c in theirs[seed]["per_chapter"]]
    pooled = {name: summed(units, sum(run["seconds"] for run in side.values()))
              for name, units, side in (("ours", units_ours, ours), ("theirs", units_theirs, theirs))}

    def tps(run):
        return run["tokens"] / run["seconds"]

    def kpm(run, variant="shipped"):
        return run[variant]["kept"] / (run["seconds"] / 60)

    seeds_text = ", ".join(map(str, args.seeds))
    name = model_name(MODEL)
    free_text = " and ".join(f"{MODE_NAMES[m]} (every task `{m}`)" for m in args.free_modes)
    lines = [
        "## Generation throughput (bench/generate.py)" if not MODEL else f"## Generation with {name} (bench/generate.py --model {MODEL})",
        "",
        f"{len(chapters)} handbook chapters × seeds {seeds_text}, {name} on both sides (llama.cpp, CPU, temperature "
        f"{SETTINGS.temperature}), {date.today().isoformat()}, {machine()}, one run; intervals are bootstrap 95% over its units.",
        f"Pipeline: quota {SETTINGS.quota} kept pairs per chapter, up to {SETTINGS.max_waves} waves, answer-first (every task "
        "`extractive`, the default) for every seed"
        + (f"; {free_text} for seed {first}" if args.free_modes else "")
        + ("" if args.no_raw else f"; the raw engine replays seed {first}'s requests")
        + f". llama-index-core {version('llama-index-core')} RagDatasetGenerator, {args.questions_per_chunk} "
        f"questions per node, per chapter ({theirs[first]['nodes']} nodes). Kept = passes ragtune's filter (row rules, the "
        "question-answer fit rule among them, and the groundedness gate) against the pair's own passages; \"no exemption\" judges "
        "every row as a plain pair (no task-specific exemptions).",
        "",
        "| run | seconds | LLM calls | prompt tokens | output tokens | output tokens/s | candidates | kept | kept, no exemption | kept pairs/min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if raw:
        lines.append(f"| (a) raw engine, seed {first}'s answer-first requests | {raw['seconds']:.1f} | {raw['calls']} | | {raw['tokens']} | "
                     f"{tps(raw):.1f} | | | | |")
    rows = [(f"(b) ragtune, answer-first, seeds {seeds_text}", pooled["ours"]),
            *[(f"(b') ragtune, {MODE_NAMES[m]}, seed {first}", runs[m]) for m in args.free_modes],
            (f"(c) llama-index RagDatasetGenerator, seeds {seeds_text}", pooled["theirs"])]
    for label, run in rows:
        lines.append(f"| {label} | {run['seconds']:.1f} | {run['calls']} | {run['prompt_tokens']} | {run['tokens']} | {tps(run):.1f} | "
                     f"{run['candidates']} | {run['kept']} | {run['no_exemption']['kept']} | {kpm(run):.2f} |")
    lines += ["", "Rejections per rule (first failing rule), all seeds:", "", "| run | as shipped | no exemption |", "|---|---|---|"]
    for label, run in (("ragtune, answer-first", pooled["ours"]), *[(f"ragtune, {MODE_NAMES[m]}", runs[m]) for m in args.free_modes],
                       ("llama-index", pooled["theirs"])):
        lines.append(f"| {label} | {rules_text(run['shipped']['removed'])} | {rules_text(run['no_exemption']['removed'])} |")
    lines.append("")
    if raw:
        lines += [f"pipeline/raw engine: {tps(ours[first]) / tps(raw):.2f}× (goal ≥ 0.9×)", ""]
    for variant, label in (("shipped", "as shipped"), ("no_exemption", "no exemption")):
        lines.append(f"pipeline/llama-index, kept pairs per minute, {label}: "
                     f"{interval_text(*chapter_interval(units_ours, units_theirs, variant=variant))} (goal ≥ 5×)")
        lines.append("")
    lines += [
        "per seed, kept (as shipped) ragtune / llama-index: " + ", ".join(f"{s}: {ours[s]['kept']}/{theirs[s]['kept']}" for s in args.seeds),
        "",
        *[line for m in args.free_modes for line in (free_mode_line(runs, m), "")],
        f"| chapter | answer-first kept/candidates, seed {first} | seconds | "
        + " | ".join(f"{MODE_NAMES[m]} kept/candidates | seconds" for m in args.free_modes) + " |",
        "|---|---|---|" + "---|---|" * len(args.free_modes),
        *[f"| {c.chapter_key} | " + " | ".join(f"{runs[m]['per_chapter'][k]['shipped']['kept']}/{runs[m]['per_chapter'][k]['candidates']} | "
                                               f"{runs[m]['per_chapter'][k]['seconds']:.0f}" for m in runs) + " |"
          for k, c in enumerate(chapters)],
        "",
    ]
    kept_dir = ROOT / "data" / "bench" / f"generate-{name}"  # the rows, kept and rejected (with the rule), to read against their evidence
    kept_dir.mkdir(parents=True, exist_ok=True)
    for label, run in (("answer-first", pooled["ours"]), *[(MODE_NAMES[m], runs[m]) for m in args.free_modes], ("llama-index", pooled["theirs"])):
        write_jsonl(kept_dir / f"{label}.jsonl", run["kept_rows"])
        write_jsonl(kept_dir / f"{label}-rejected.jsonl", run["rejected_rows"])
    section = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", lines[0], section)
    print(section)


if __name__ == "__main__":
    main()
