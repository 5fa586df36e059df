"""Generation throughput, measured in one run on the same chapters with the same local model:

(a) the raw engine: the exact requests the pipeline sent, straight to llama.cpp's
    create_chat_completion, one after the other, with nothing around them;
(b) this pipeline: evidence planning, then generate_chapter_qa to a quota (cache emptied first), once
    answer-first (extractive, the default) and once free-writing (abstractive);
(c) llama-index's RagDatasetGenerator over the same chapters' text, with the same model behind a
    llama-index CustomLLM and the same sampling settings.

Kept pairs are counted by the same filter (ragtune.generate.qa_filter defaults) for (b) and (c), each pair
judged against the passages it was generated from. Writes its section of BENCHMARKS.md with the
two ratios on lines of their own.

Usage: .venv/bin/python bench/generate.py [--chapters 6] [--quota 4]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
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
from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence  # noqa: E402
from ragtune.generate.qa_filter import FilterSettings, filter_qa  # noqa: E402
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa  # noqa: E402
from ragtune.index.chunking import chunk_chapter  # noqa: E402
from ragtune.index.embedding import Embedder  # noqa: E402
from ragtune.index.vector_index import ChunkIndex  # noqa: E402
from ragtune.ingest.pdf_parser import parse_pdf  # noqa: E402
from ragtune.llm.backends import LlamaCppBackend  # noqa: E402
from ragtune.llm.client import CachedLLM, ChatRequest, LLMCache  # noqa: E402
from ragtune.llm.prompts import TASKS  # noqa: E402

SETTINGS = GenerationSettings(max_waves=4)


class RecordingBackend(LlamaCppBackend):
    """The pipeline's backend, keeping each request it sends so the raw engine can replay them."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[ChatRequest] = []

    def chat(self, request: ChatRequest):
        self.sent.append(request)
        return super().chat(request)


class SameModelLLM(CustomLLM):
    """llama-index's view of the same llama.cpp model, sampling like the pipeline."""

    backend: Any = None
    completion_tokens: int = 0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.backend.n_ctx, num_output=SETTINGS.max_tokens, model_name=self.backend.model_id)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        llama = self.backend.llama
        llama.set_seed(SETTINGS.seed)
        result = llama.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            temperature=SETTINGS.temperature,
            max_tokens=SETTINGS.max_tokens,
            repeat_penalty=SETTINGS.repeat_penalty,
            seed=SETTINGS.seed,
        )
        self.completion_tokens += int(result["usage"]["completion_tokens"])
        return CompletionResponse(text=result["choices"][0]["message"]["content"] or "")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        yield self.complete(prompt)


def run_pipeline(chapters, index, embedder, cache_dir: Path, settings: GenerationSettings) -> dict[str, Any]:
    backend = RecordingBackend()
    backend.llama  # load the model before the clock starts, as the raw engine does
    llm = CachedLLM(backend, LLMCache(cache_dir))
    start = time.perf_counter()
    tokens = kept = candidates = 0
    per_chapter = []
    for chapter in chapters:
        began = time.perf_counter()
        plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=6 * settings.quota))
        result = generate_chapter_qa(plan, llm, settings)
        tokens += result.completion_tokens
        kept += result.kept
        candidates += len(result.qa_pairs)
        per_chapter.append({"seconds": time.perf_counter() - began, "kept": result.kept, "candidates": len(result.qa_pairs)})
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": tokens, "kept": kept, "candidates": candidates, "calls": llm.calls, "sent": backend.sent,
            "per_chapter": per_chapter}


def chapter_interval(first: list[dict[str, Any]], second: list[dict[str, Any]], draws: int = 2000) -> tuple[float, float, float]:
    """Ratio of kept pairs per minute, first run over second, with a 95% bootstrap interval over
    chapters (each draw resamples chapters and sums their kept pairs and seconds in both runs)."""
    rng = random.Random(0)

    def ratio(picked: list[int]) -> float:
        mine = sum(first[i]["kept"] for i in picked) / sum(first[i]["seconds"] for i in picked)
        theirs = sum(second[i]["kept"] for i in picked) / sum(second[i]["seconds"] for i in picked)
        return mine / theirs if theirs else float("inf")

    everything = list(range(len(first)))
    values = sorted(ratio([rng.randrange(len(first)) for _ in everything]) for _ in range(draws))
    return ratio(everything), values[int(0.025 * draws)], values[int(0.975 * draws) - 1]


def run_raw(requests: list[ChatRequest]) -> dict[str, Any]:
    backend = LlamaCppBackend()
    backend.llama
    start = time.perf_counter()
    tokens = sum(backend.chat(request).completion_tokens for request in requests)
    return {"seconds": time.perf_counter() - start, "tokens": tokens, "calls": len(requests)}


def run_llama_index(chapters, questions_per_chunk: int) -> dict[str, Any]:
    llm = SameModelLLM(backend=LlamaCppBackend())
    llm.backend.llama
    documents = [LlamaDocument(text=c.text(), metadata={"chapter_key": c.chapter_key}) for c in chapters]
    start = time.perf_counter()
    # from_documents would run a keyword filter that imports spaCy even with no keywords; the nodes
    # it would build are llama-index's default SentenceSplitter over the documents, made here directly.
    nodes = SentenceSplitter().get_nodes_from_documents(documents)
    generator = RagDatasetGenerator(nodes, llm=llm, num_questions_per_chunk=questions_per_chunk, workers=1)
    dataset = generator.generate_dataset_from_nodes()
    seconds = time.perf_counter() - start
    rows = [
        {
            "qa_id": str(n),
            "question": example.query,
            "answer": example.reference_answer or "",
            "evidence": [{"text": text} for text in example.reference_contexts or []],
        }
        for n, example in enumerate(dataset.examples)
    ]
    kept = len(filter_qa(rows, FilterSettings()).kept)
    return {"seconds": seconds, "tokens": llm.completion_tokens, "kept": kept, "candidates": len(rows), "nodes": len(generator.nodes)}


def answer_first_line(runs: dict[str, dict[str, Any]]) -> str:
    if not runs["abstractive"]["kept"]:
        return "answer-first/free-writing: free-writing kept 0 pairs"
    ratio, low, high = chapter_interval(runs["extractive"]["per_chapter"], runs["abstractive"]["per_chapter"])
    high_text = "∞" if high == float("inf") else f"{high:.1f}"
    return (f"answer-first/free-writing, kept pairs per minute: {ratio:.1f}× (95% bootstrap over chapters {low:.1f}-{high_text}×; "
            "a draw whose chapters free-writing kept nothing from counts as ∞)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", type=int, default=6, help="handbook chapters to generate for")
    parser.add_argument("--quota", type=int, default=4, help="kept pairs per chapter the pipeline aims for")
    parser.add_argument("--questions-per-chunk", type=int, default=2, help="llama-index's num_questions_per_chunk")
    args = parser.parse_args()
    SETTINGS.quota = args.quota
    document = parse_pdf(ROOT / "sample_handbook" / "handbook.pdf")
    embedder = Embedder()
    chunks = [c for ch in document.chapters for c in chunk_chapter(ch, document.doc_id, embedder.tokenize)]
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    chapters = document.chapters[: args.chapters]
    runs = {}
    for mode in ("extractive", "abstractive"):  # answer-first (the default) and the model writing answers too
        settings = replace(SETTINGS, answer_mode=dict.fromkeys(TASKS, mode))
        cache_dir = Path(tempfile.mkdtemp(prefix="ragtune-bench-"))
        try:
            runs[mode] = run_pipeline(chapters, index, embedder, cache_dir, settings)
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
    pipeline = runs["extractive"]
    raw = run_raw(pipeline["sent"])
    llama_index = run_llama_index(chapters, args.questions_per_chunk)

    def tps(run):
        return run["tokens"] / run["seconds"]

    def kpm(run):
        return run["kept"] / (run["seconds"] / 60)

    def keep_rate(run):
        return f"{100 * run['kept'] / run['candidates']:.0f}%" if run["candidates"] else "–"

    engine_ratio = tps(pipeline) / tps(raw)
    li_ratio = kpm(pipeline) / kpm(llama_index) if llama_index["kept"] else float("inf")
    lines = [
        "## Generation throughput (bench/generate.py)",
        "",
        f"{len(chapters)} handbook chapters, embedded SmolLM2-135M (llama.cpp, CPU), {date.today().isoformat()}, {machine()}, one run; intervals are over its chapters.",
        f"Pipeline: quota {SETTINGS.quota} kept pairs per chapter, up to {SETTINGS.max_waves} waves, once answer-first (every task "
        "`extractive`, the default) and once free-writing (every task `abstractive`, the mode before answer-first). llama-index-core "
        f"{version('llama-index-core')} RagDatasetGenerator, {args.questions_per_chunk} questions per node "
        f"over {llama_index['nodes']} nodes. Kept = passes ragtune's filter (row rules and groundedness gate) against the pair's own passages.",
        "",
        "| run | seconds | LLM calls | output tokens | output tokens/s | candidates | kept | keep rate | kept pairs/min |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| (a) raw engine, the answer-first requests | {raw['seconds']:.1f} | {raw['calls']} | {raw['tokens']} | {tps(raw):.1f} | | | | |",
    ]
    for mode, label in (("extractive", "(b) ragtune, answer-first"), ("abstractive", "(b') ragtune, free-writing")):
        run = runs[mode]
        lines.append(f"| {label} | {run['seconds']:.1f} | {run['calls']} | {run['tokens']} | {tps(run):.1f} | "
                     f"{run['candidates']} | {run['kept']} | {keep_rate(run)} | {kpm(run):.2f} |")
    lines += [
        f"| (c) llama-index RagDatasetGenerator | {llama_index['seconds']:.1f} | | {llama_index['tokens']} | {tps(llama_index):.1f} | "
        f"{llama_index['candidates']} | {llama_index['kept']} | {keep_rate(llama_index)} | {kpm(llama_index):.2f} |",
        "",
        f"pipeline/raw engine: {engine_ratio:.2f}× (goal ≥ 0.9×)",
        "",
        f"pipeline/llama-index: {li_ratio:.1f}× (goal ≥ 5×)" if llama_index["kept"] else
        "pipeline/llama-index: ∞ (llama-index kept 0 pairs; goal ≥ 5×)",
        "",
        answer_first_line(runs),
        "",
        "| chapter | answer-first kept/candidates | seconds | free-writing kept/candidates | seconds |",
        "|---|---|---|---|---|",
        *[f"| {c.chapter_key} | {a['kept']}/{a['candidates']} | {a['seconds']:.0f} | {b['kept']}/{b['candidates']} | {b['seconds']:.0f} |"
          for c, a, b in zip(chapters, runs["extractive"]["per_chapter"], runs["abstractive"]["per_chapter"])],
        "",
    ]
    section = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", lines[0], section)
    print(section)


if __name__ == "__main__":
    main()
