"""Cross-chapter dedup at scale: 10k, 30k and 100k QA pairs through every stage (exact, MinHash LSH on
questions, MinHash LSH on question+answer, embedding cosine on a FAISS HNSW graph).

The pairs are built from real sentences (the bundled handbook's sources, and the NIMH texts and
MedQuAD answers in ../shared/data when present): each question joins the first, middle and last
thirds of three sentences, each answer two sentences, so the texts read like the domain. Removals
beyond the planted duplicates are pairs built largely from the same sentence pieces (more of them
as n grows: under 2k sentences feed 100k pairs). 5% are planted duplicates: a copy with case and punctuation changed, a question with one
word added, and a copy whose question is shortened. Embeddings are computed once (the pipeline
computes them per chapter when it judges, so dedup receives them) and timed apart.
Goal: 100k pairs in under 60 s; growth near n log n (time ratio 100k/10k near 10-12, not 100).

String edits are found by construction, so quality is measured apart, against labels: the 45
written paraphrase pairs and 45 hard negatives of bench/data/dedup_labelled.jsonl (same topic,
mostly the same words, a different fact: both must stay; written for this benchmark) are mixed into
the first 10k pairs, one of each pair in another chapter. Recall per kind (each string edit, written
paraphrases) and precision of the removals among the labelled rows are reported.

Usage: .venv/bin/python bench/dedup.py [--sizes 10000 30000 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragtune.benchmarks import machine, write_section  # noqa: E402
from ragtune.curate.dedup import STAGES, DedupSettings, deduplicate  # noqa: E402
from ragtune.generate.grounding import sentence_texts  # noqa: E402
from ragtune.index.embedding import Embedder  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def source_sentences() -> tuple[list[str], list[str]]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "sample_handbook" / "source").glob("*.md"))]
    used = ["sample handbook sources"]
    if (SHARED / "corpus" / "text").exists():
        texts += [p.read_text(encoding="utf-8") for p in sorted((SHARED / "corpus" / "text").glob("*.md"))]
        used.append("NIMH texts")
    if (SHARED / "medquad" / "mental-health").exists():
        for path in sorted((SHARED / "medquad" / "mental-health").rglob("*.xml")):
            texts += re.findall(r"<Answer>(.*?)</Answer>", path.read_text(encoding="utf-8"), re.S)
        used.append("MedQuAD mental-health answers")
    sentences = {s for text in texts for s in sentence_texts(re.sub(r"\s+", " ", text)) if 6 <= len(s.split()) <= 40 and "|" not in s}
    return sorted(sentences), used


EDITS = ("case and punctuation", "one word added", "first word cut")
LABELLED = ROOT / "bench" / "data" / "dedup_labelled.jsonl"


def synthetic_pairs(n: int, sentences: list[str], seed: int = 0) -> tuple[list[dict], dict[str, str]]:
    """Rows, and planted duplicate id -> kind of edit."""
    rng = random.Random(seed)
    rows, planted = [], {}
    for i in range(n):
        if rows and rng.random() < 0.05:
            original = rows[rng.randrange(len(rows))]
            kind = rng.randrange(3)
            if kind == 0:
                question = original["question"].upper().replace("?", " ?")
            elif kind == 1:
                q = original["question"].split()
                question = " ".join(q[:2] + ["really"] + q[2:])
            else:
                question = " ".join(original["question"].split()[1:])
            rows.append({"qa_id": f"q{i}", "chapter_key": f"ch{i % 20}", "question": question, "answer": original["answer"]})
            planted[f"q{i}"] = EDITS[kind]
            continue
        pieces = [s.split() for s in rng.sample(sentences, 3)]
        thirds = [p[len(p) * k // 3 : len(p) * (k + 1) // 3] for k, p in enumerate(pieces)]
        question = " ".join(w for third in thirds for w in third).rstrip(".") + "?"
        rows.append({"qa_id": f"q{i}", "chapter_key": f"ch{i % 20}", "question": question, "answer": " ".join(rng.sample(sentences, 2))})
    return rows, planted


def labelled_quality(rows: list[dict], vectors, planted: dict[str, str], embedder: Embedder) -> list[dict]:
    """Recall per kind and precision on the labelled pairs, mixed into these rows."""
    labelled = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    extra = []
    for n, pair in enumerate(labelled):
        for side, chapter in (("a", f"ch{n % 20}"), ("b", f"ch{(n + 7) % 20}")):
            extra.append({"qa_id": f"{pair['id']}:{side}", "chapter_key": chapter, **pair[side]})
    mixed = rows + extra
    result = deduplicate(mixed, np.concatenate([vectors, embedder.encode([r["question"] for r in extra])]), DedupSettings())
    removed = {r["qa_id"]: r for r in result.removed}
    kinds = {pair["id"]: pair["kind"] for pair in labelled}
    table = []
    for edit in EDITS:
        ids = [q for q, kind in planted.items() if kind == edit]
        table.append({"kind": f"string edit: {edit}", "pairs": len(ids), "removed": sum(q in removed for q in ids),
                      "stages": Counter(removed[q]["dedup_stage"] for q in ids if q in removed)})
    caught = {}  # labelled pair id -> stage, where one side was removed as a duplicate of the other
    for row in result.removed:
        pair, _, _ = row["qa_id"].partition(":")
        if pair in kinds and row["duplicate_of"].partition(":")[0] == pair:
            caught[pair] = row["dedup_stage"]
    for kind, label in (("paraphrase", "written paraphrase"), ("different", "hard negative (must stay)")):
        ids = [p for p, k in kinds.items() if k == kind]
        table.append({"kind": label, "pairs": len(ids), "removed": sum(p in caught for p in ids),
                      "stages": Counter(caught[p] for p in ids if p in caught)})
    labelled_removed = [r for r in result.removed if r["qa_id"].partition(":")[0] in kinds]
    wrong = sum(1 for r in labelled_removed if kinds[r["qa_id"].partition(":")[0]] == "different" or
                r["duplicate_of"].partition(":")[0] != r["qa_id"].partition(":")[0])
    table.append({"kind": "precision: labelled rows removed that were true duplicates", "pairs": len(labelled_removed),
                  "removed": len(labelled_removed) - wrong, "stages": Counter()})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    args = parser.parse_args()
    sentences, used = source_sentences()
    largest = max(args.sizes)
    rows, planted = synthetic_pairs(largest, sentences)
    embedder = Embedder(batch_size=256)
    start = time.perf_counter()
    vectors = embedder.encode([r["question"] for r in rows])
    embed_seconds = time.perf_counter() - start
    results = []
    for n in sorted(args.sizes):
        subset, planted_here = rows[:n], {q for q in planted if int(q[1:]) < n}
        start = time.perf_counter()
        result = deduplicate(subset, vectors[:n], DedupSettings())
        seconds = time.perf_counter() - start
        removed = {r["qa_id"] for r in result.removed}
        by_stage = {stage: sum(c[stage] for c in result.counts.values()) for stage in STAGES}
        results.append({"n": n, "seconds": seconds, "removed": len(removed), "planted": len(planted_here),
                        "recall": len(removed & planted_here) / max(1, len(planted_here)), **by_stage})
        print(results[-1], flush=True)
    small, big = results[0], results[-1]
    first = min(args.sizes)
    quality = labelled_quality(rows[:first], vectors[:first], {q: k for q, k in planted.items() if int(q[1:]) < first}, embedder)
    for row in quality:
        print(row, flush=True)
    growth = math.log(big["seconds"] / small["seconds"]) / math.log(big["n"] / small["n"])
    lines = [
        "## Dedup at scale (bench/dedup.py)",
        "",
        f"{machine()}, {date.today().isoformat()}. Synthetic QA pairs from {len(sentences)} real sentences "
        f"({', '.join(used)}); 5% planted duplicates. All four stages, default thresholds; question embeddings "
        f"(all-MiniLM-L6-v2) computed beforehand, as qa_judged does per chapter: {largest} in {embed_seconds:.0f} s, "
        "not counted below.",
        "",
        "| pairs | seconds | removed | " + " | ".join(STAGES) + " | planted | planted found |",
        "|---|---|---|" + "---|" * len(STAGES) + "---|---|",
    ]
    for r in results:
        lines.append(f"| {r['n']} | {r['seconds']:.1f} | {r['removed']} | " + " | ".join(str(r[s]) for s in STAGES)
                     + f" | {r['planted']} | {r['recall']:.1%} |")
    lines += [
        "",
        f"100k pairs: {big['seconds']:.1f} s (goal < 60 s)" if big["n"] == 100_000 else f"{big['n']} pairs: {big['seconds']:.1f} s",
        "",
        f"growth exponent {growth:.2f} between {small['n']} and {big['n']} pairs "
        f"(time ratio {big['seconds'] / small['seconds']:.1f}× for {big['n'] / small['n']:.0f}× the pairs; "
        f"n log n would be {big['n'] * math.log(big['n']) / (small['n'] * math.log(small['n'])):.1f}×, n² {(big['n'] / small['n']) ** 2:.0f}×)",
        "",
        f"Quality against labels, in the first {first} pairs: the string edits planted there, and the 45 written paraphrase",
        "pairs and 45 hard negatives of bench/data/dedup_labelled.jsonl mixed in (one side of each in another chapter).",
        "A hard negative removed is a false positive; precision is over every labelled row removed.",
        "",
        "| kind | pairs | removed | share | by stage |",
        "|---|---|---|---|---|",
    ]
    for row in quality:
        share = row["removed"] / row["pairs"] if row["pairs"] else 0.0
        stages = ", ".join(f"{stage} {count}" for stage, count in sorted(row["stages"].items())) or "-"
        lines.append(f"| {row['kind']} | {row['pairs']} | {row['removed']} | {share:.1%} | {stages} |")
    lines.append("")
    section = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", lines[0], section)
    print(section)


if __name__ == "__main__":
    main()
