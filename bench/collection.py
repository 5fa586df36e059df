"""Answer-first generation on a collection the rules were not written on: the NIMH texts (14 PDFs
and 5 Markdown pages in 12 categories, mapped by the corpus's index.tsv), each category generated
to a quota of kept rows with the embedded model, the kept rows then audited by bench/audit_rows.py
(written apart from the filter). A category that cannot reach its quota is reported `exhausted`,
never filled with rows that fail the rules. Writes its section of BENCHMARKS.md.

Usage: .venv/bin/python bench/collection.py [--shared ../shared/data] [--quota 10] [--rounds 120]
       [--pdf sample_handbook/handbook_zh.pdf]   (one book's chapters instead, in their own section)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.audit_rows import audit  # noqa: E402
from ragtune.benchmarks import machine, write_section  # noqa: E402
from ragtune.generate.evidence import EvidenceSettings, plan_chapter_evidence  # noqa: E402
from ragtune.generate.qa_filter import FilterSettings, filter_qa  # noqa: E402
from ragtune.generate.qa_generation import GenerationSettings, generate_chapter_qa  # noqa: E402
from ragtune.index.chunking import chunk_chapter  # noqa: E402
from ragtune.index.embedding import Embedder  # noqa: E402
from ragtune.index.vector_index import ChunkIndex  # noqa: E402
from ragtune.ingest.pdf_parser import parse_pdf  # noqa: E402
from ragtune.ingest.sources import collect_chapter, parse_all  # noqa: E402
from ragtune.llm.backends import LlamaCppBackend  # noqa: E402
from ragtune.llm.client import CachedLLM, LLMCache  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--quota", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=120, help="evidence rounds planned per category")
    parser.add_argument("--max-waves", type=int, default=6)
    parser.add_argument("--cache", default="", help="LLM cache folder (default: a fresh temporary one)")
    parser.add_argument("--rows-out", default="", help="write the kept rows here (JSONL)")
    parser.add_argument("--free-questions", action="store_true", help="let the model write questions where no structure dictates one")
    parser.add_argument("--pdf", default="", help="generate for this one book's chapters instead of the NIMH collection")
    args = parser.parse_args()
    if args.pdf:
        documents, failures = [parse_pdf(Path(args.pdf))], []
    else:
        corpus = Path(args.shared) / "corpus"
        documents, failures = parse_all([str(corpus / "pdf"), str(corpus / "text")], categories_from="mapping",
                                        mapping_file=str(corpus / "index.tsv"))
    for failure in failures:
        print(f"parse failure: {failure}")
    embedder = Embedder()
    keys = sorted({c.chapter_key for d in documents for c in d.chapters})
    bundles = [collect_chapter(documents, key) for key in keys]
    chapters = [bundle.merged() for bundle in bundles]
    chunks = [chunk for b in bundles for doc_id, part in b.parts for chunk in chunk_chapter(part, doc_id, embedder.tokenize)]
    index = ChunkIndex.build(chunks, embedder.encode([c.text for c in chunks]))
    settings = GenerationSettings(quota=args.quota, max_waves=args.max_waves, free_questions=args.free_questions)
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="ragtune-collection-"))
    llm = CachedLLM(LlamaCppBackend(), LLMCache(cache))
    table, kept_rows = [], []
    start = time.perf_counter()
    for chapter in chapters:
        began = time.perf_counter()
        plan = plan_chapter_evidence(chapter, index, embedder, EvidenceSettings(rounds=args.rounds))
        result = generate_chapter_qa(plan, llm, settings)
        kept = filter_qa(result.qa_pairs, FilterSettings()).kept
        report = audit(kept)
        kept_rows.extend(kept)
        status = "quota met" if result.quota_met else ("exhausted" if result.exhausted else "waves ran out")
        table.append({
            "category": chapter.chapter_key, "chunks": sum(c.chapter_key == chapter.chapter_key for c in chunks),
            "calls": result.llm_calls + result.cache_hits, "candidates": len(result.qa_pairs), "kept": len(kept),
            "meeting_rules": report["passing"], "status": status, "seconds": round(time.perf_counter() - began, 1),
        })
        print(json.dumps(table[-1]), flush=True)
    seconds = time.perf_counter() - start
    if args.rows_out:
        Path(args.rows_out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept_rows), encoding="utf-8")
    total = audit(kept_rows)
    styles = Counter(r.get("task") for r in kept_rows)
    pairs = {frozenset(h["chapter_key"] for h in r["hops"]) for r in kept_rows if r.get("hops")}
    possible = len(chapters) * (len(chapters) - 1) // 2
    heading = (f"## Answer-first generation on {Path(args.pdf).name} (bench/collection.py --pdf)" if args.pdf
               else "## Answer-first generation on the NIMH collection (bench/collection.py)")
    what = f"{Path(args.pdf).name}, {len(chapters)} chapters" if args.pdf else f"{len(documents)} NIMH documents in {len(chapters)} categories (corpus index.tsv)"
    lines = [
        heading,
        "",
        f"{machine()}, {date.today().isoformat()}. {what}, "
        f"{len(chunks)} chunks in one FAISS index; embedded SmolLM2-135M via llama.cpp, default answer modes (extractive), "
        "the default task mix (multi-hop rounds on, weight 1), "
        f"quota {args.quota} kept rows per category, {args.rounds} rounds planned, up to {args.max_waves} waves; {seconds / 60:.1f} min in all. "
        "Kept = passes ragtune's filter (rules and groundedness gate); meeting rules = kept rows that also pass bench/audit_rows.py, "
        "an audit of the same rules written apart from the filter.",
        "",
        "| category | chunks | LLM calls | candidates | kept | kept meeting rules | status |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['category']} | {r['chunks']} | {r['calls']} | {r['candidates']} | {r['kept']} | {r['meeting_rules']} | {r['status']} |" for r in table]
    lines += [
        "",
        f"All categories: {sum(r['candidates'] for r in table)} candidates, {len(kept_rows)} kept, {total['passing']} of them meeting "
        f"every rule by the audit ({100 * total['share']:.1f}%); audit failures by rule: "
        + (", ".join(f"{k} {v}" for k, v in total["by_rule"].items() if v) or "none") + ". "
        f"{sum(r['status'] == 'quota met' for r in table)} of {len(table)} categories met the quota. "
        f"Counselling dialogues kept: {sum(r.get('task') == 'counselling_dialogue' for r in kept_rows)}, with "
        f"{total['patient_turns']} patient turns, {total['patient_turns_not_as_patient']} of them not speaking as a patient by the audit. "
        f"Multi-hop rows kept: {total['multi_hop_rows']}, joining {len(pairs)} of the {possible} chapter pairs; "
        f"{total['multi_hop_rows_meeting']} of them with every hop supported by its own chunk and fitting its question by the audit"
        + (f" ({100 * total['multi_hop_rows_meeting'] / total['multi_hop_rows']:.0f}%)." if total["multi_hop_rows"] else "."),
        "",
        "Kept rows per task style: " + ", ".join(f"{task} {n}" for task, n in sorted(styles.items())) + ".",
        "",
    ]
    write_section(ROOT / "BENCHMARKS.md", lines[0], "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
