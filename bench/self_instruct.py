"""Self-instruct from seed tasks, measured: for every chapter of the sample handbook with a seed file
(sample_handbook/seeds/), questions grown by --writer, answered from the handbook's index (the fit judge
picks the answer unit), then run through the product's filter with that fit judge. Reports per chapter:
seed tasks, questions proposed, new (not within ROUGE-L 0.7 of a seed or an earlier one), answerable from
the collection (a candidate passed the fit judge), kept by the filter, and failed calls; writes every
kept row to --out for reading against its evidence, and its section of BENCHMARKS.md.

Usage: .venv/bin/python bench/self_instruct.py [--writer qwen2.5-coder-1.5b] [--calls 6] [--per-call 4]
       [--out data/bench/self_instruct] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragtune.benchmarks import BENCHMARKS, machine, write_section  # noqa: E402
from ragtune.generate.fit_scores import CachedFitJudge  # noqa: E402
from ragtune.generate.qa_filter import FilterSettings, filter_qa  # noqa: E402
from ragtune.generate.self_instruct import SelfInstructSettings, grow_chapter, load_seed_tasks, seed_file  # noqa: E402
from ragtune.index.chunking import chunk_chapter  # noqa: E402
from ragtune.index.embedding import Embedder  # noqa: E402
from ragtune.index.vector_index import ChunkIndex  # noqa: E402
from ragtune.ingest.pdf_parser import parse_pdf  # noqa: E402
from ragtune.jsonl import write_jsonl  # noqa: E402
from ragtune.llm.prompts import detect_language  # noqa: E402
from resources.fit_judge import MIN_FIT_YES  # noqa: E402
from resources.llm import local_client  # noqa: E402

HEADING = "## Self-instruct from seed tasks (bench/self_instruct.py)"
SEEDS = ROOT / "sample_handbook" / "seeds"
BOOKS = [ROOT / "sample_handbook" / "handbook.pdf", ROOT / "sample_handbook" / "handbook_zh.pdf"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writer", default="qwen2.5-coder-1.5b", help="the local model that grows the questions")
    parser.add_argument("--judge", default="qwen2.5-coder-1.5b", help="the fit judge that picks answers and filters")
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--per-call", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "bench" / "self_instruct", help="kept rows and the LLM cache")
    parser.add_argument("--no-write", action="store_true", help="print, do not write BENCHMARKS.md")
    args = parser.parse_args()
    began = time.perf_counter()
    embedder = Embedder()
    llm = local_client(args.writer, args.out / "cache")
    judge = CachedFitJudge(args.judge, args.out / "cache", MIN_FIT_YES)
    settings = SelfInstructSettings(calls=args.calls, per_call=args.per_call)
    table, kept_rows, paid, cached = [], [], 0, 0
    for book in BOOKS:
        document = parse_pdf(book)
        chunks = [c for ch in document.chapters for c in chunk_chapter(ch, document.doc_id, embedder.tokenize)]
        index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
        for chapter in document.chapters:
            source = seed_file(SEEDS, chapter.chapter_key)
            if source is None:
                continue
            seeds = load_seed_tasks(source)
            result = grow_chapter(seeds, chapter.chapter_key, chapter.title, detect_language(chapter.text()), index, embedder, llm, settings, judge)
            kept = filter_qa(result.qa_pairs, FilterSettings(), judge).kept
            kept_rows += kept
            paid, cached = paid + result.llm_calls, cached + result.cache_hits
            table.append({"chapter": chapter.chapter_key, "seeds": len(seeds), "proposed": result.proposed, "new": len(result.novel),
                          "answerable": len(result.qa_pairs), "kept": len(kept), "failed calls": len(result.failures)})
            print(table[-1], flush=True)
    write_jsonl(args.out / "kept.jsonl", kept_rows)
    total = {k: sum(r[k] for r in table) for k in table[0] if k != "chapter"}
    lines = [f"| {' | '.join(table[0])} |", "|" + "---|" * len(table[0])]
    lines += [f"| {' | '.join(str(v) for v in r.values())} |" for r in table + [{"chapter": "**all**", **total}]]
    section = "\n".join([
        HEADING, "",
        f"{machine()}, {date.today().isoformat()}, {time.perf_counter() - began:.0f} s ({paid} writer calls paid, {cached} from the "
        f"cache of an earlier run). Writer `{args.writer}`, {args.calls} calls x "
        f"{args.per_call} questions per chapter, {settings.seeds_shown} seeds shown per call; the fit judge `{args.judge}` "
        f"(p(yes) >= {MIN_FIT_YES}) picks each question's answer among the {settings.choices} answer units of its {settings.top_k} "
        "retrieved passages nearest to it, then the product's filter (rules, groundedness gate, fit judge) runs on the rows. "
        "new: not within ROUGE-L 0.7 of a seed or an earlier question; answerable: a candidate passed the fit judge; "
        f"kept rows in `{args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}/kept.jsonl`.", "",
        *lines, "",
    ])
    print(section)
    if not args.no_write:
        write_section(BENCHMARKS, HEADING, section)


if __name__ == "__main__":
    main()
