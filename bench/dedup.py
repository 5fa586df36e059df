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

String edits are found by construction, so quality is measured apart, against labels: every item of the
labelled dedup set (tests/data/dedup_labels.jsonl, dev and test splits, and the held-out
tests/data/dedup_labels_holdout.jsonl; our own paraphrase pairs and hard negatives: the same question about
another disorder, another aspect, negated, narrowed) is deduplicated as a pair of rows in two chapters; a
pair is called a duplicate when one row goes. Precision and paraphrase recall per split, with 95% Wilson
intervals, and the hard negatives removed by kind; goal: precision >= 0.95 at recall >= 0.90 on held-out.

With --verifier, the same again with a local model verifying every proposed pair (ragtune.curate.dedup_judge;
its threshold chosen on the dev split only).

Usage: .venv/bin/python bench/dedup.py [--sizes 10000 30000 100000] [--labelled-only] [--verifier qwen2.5-coder-1.5b]
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


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragtune.benchmarks import machine, wilson, write_section  # noqa: E402
from ragtune.curate.dedup import STAGES, DedupSettings, deduplicate, same_ask  # noqa: E402
from ragtune.curate.dedup_judge import DedupJudge  # noqa: E402
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
LABELS = {"dev": "dedup_labels.jsonl", "test": "dedup_labels.jsonl", "holdout": "dedup_labels_holdout.jsonl"}


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


def planted_recall(rows: list[dict], vectors, planted: dict[str, str]) -> list[dict]:
    """Recall per kind of string edit planted in these rows."""
    result = deduplicate(rows, vectors, DedupSettings())
    removed = {r["qa_id"]: r for r in result.removed}
    table = []
    for edit in EDITS:
        ids = [q for q, kind in planted.items() if kind == edit]
        table.append({"kind": f"string edit: {edit}", "pairs": len(ids), "removed": sum(q in removed for q in ids),
                      "stages": Counter(removed[q]["dedup_stage"] for q in ids if q in removed)})
    return table


def labelled_items(split: str) -> list[dict]:
    items = [json.loads(line) for line in (ROOT / "tests" / "data" / LABELS[split]).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [item for item in items if item["split"] == split]


def chosen_threshold(judge: DedupJudge, ask_check: bool, goal: float = 0.95) -> tuple[float, dict]:
    """The verifier's threshold, chosen on dev alone: the lowest p(yes) at which its own precision on the dev
    pairs (read whole, every item; with ask_check, a pair the ask check tells apart is never called) reaches
    `goal`; the dev reading that chose it."""
    readings = [(judge.p_yes(item["a"], item["b"]) if not ask_check or same_ask(item["a"], item["b"]) else -1.0, item["duplicate"])
                for item in labelled_items("dev")]
    for threshold in sorted({p for p, _ in readings if p >= 0}):
        called = [duplicate for p, duplicate in readings if p >= threshold]
        if called and sum(called) / len(called) >= goal:
            return math.floor(threshold * 10_000) / 10_000, {"called": len(called), "found": sum(called), "paraphrases": sum(d for _, d in readings)}
    raise SystemExit(f"no threshold reaches precision {goal} on dev")


def labelled_quality(embedder: Embedder, judge: DedupJudge | None = None, ask_check: bool = True) -> list[dict]:
    """Per split: each labelled item deduplicated as two rows of two chapters; precision and recall of 'duplicate'.
    ask_check: whether the ask check still vetoes what the verifier calls a repeat (DedupSettings.verified_ask_check)."""
    table = []
    for split in LABELS:
        items = labelled_items(split)
        vectors = embedder.encode([item[side]["question"] for item in items for side in "ab"])
        answers = embedder.encode([item[side]["answer"] for item in items for side in "ab"]) if judge else None
        called, found, wrong, stages = 0, 0, Counter(), Counter()
        for n, item in enumerate(items):
            rows = [{"qa_id": f"{item['id']}:{side}", "chapter_key": f"ch-{side}", **item[side]} for side in "ab"]
            removed = deduplicate(rows, vectors[2 * n: 2 * n + 2], DedupSettings(verified_ask_check=ask_check), judge,
                                  answers[2 * n: 2 * n + 2] if judge else None).removed
            if removed:
                called += 1
                stages[removed[0]["dedup_stage"]] += 1
                if item["duplicate"]:
                    found += 1
                else:
                    wrong[item["kind"]] += 1
        paraphrases = sum(item["duplicate"] for item in items)
        negatives = Counter(item["kind"] for item in items if not item["duplicate"])
        table.append({"split": split, "items": len(items), "called": called, "found": found, "paraphrases": paraphrases,
                      "wrong": wrong, "negatives": negatives, "stages": stages})
    return table


def labelled_lines(tables: dict[str, list[dict]], verifier: str = "") -> list[str]:
    kinds = sorted({kind for table in tables.values() for row in table for kind in row["negatives"]})
    lines = [
        "## Dedup against labels (bench/dedup.py)",
        "",
        f"{machine()}, {date.today().isoformat()}. Every item of the labelled dedup set deduplicated as two rows in two",
        "chapters (all four stages, default thresholds); a pair is called a duplicate when one row goes. Goal on",
        "held-out: precision >= 0.95 at paraphrase recall >= 0.90. Intervals are 95% Wilson.",
    ]
    if verifier:
        lines += ["", verifier]
    lines += [
        "",
        "| dedup | split | items | called duplicate | precision | paraphrase recall | " + " | ".join(f"{k} removed" for k in kinds) + " | by stage |",
        "|---|---|---|---|---|---|" + "---|" * len(kinds) + "---|",
    ]
    for name, table in tables.items():
        lines += _labelled_rows(name, table, kinds)
    return lines + [""]


def _labelled_rows(name: str, table: list[dict], kinds: list[str]) -> list[str]:
    lines = []
    for row in table:
        p_low, p_high = wilson(row["found"], row["called"])
        r_low, r_high = wilson(row["found"], row["paraphrases"])
        precision = f"{row['found']}/{row['called']} = {row['found'] / max(1, row['called']):.2f} [{p_low:.2f}, {p_high:.2f}]"
        recall = f"{row['found']}/{row['paraphrases']} = {row['found'] / max(1, row['paraphrases']):.2f} [{r_low:.2f}, {r_high:.2f}]"
        stages = ", ".join(f"{stage} {count}" for stage, count in sorted(row["stages"].items())) or "-"
        lines.append(f"| {name} | {row['split']} | {row['items']} | {row['called']} | {precision} | {recall} | "
                     + " | ".join(f"{row['wrong'][k]} of {row['negatives'][k]}" for k in kinds) + f" | {stages} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--labelled-only", action="store_true", help="only the labelled pairs (a minute), not the timing at scale")
    parser.add_argument("--verifier", default="", help="also the stages with a model verifying each proposed pair "
                        "(a local model's short name or a GGUF path, e.g. qwen2.5-coder-1.5b; its threshold chosen on dev)")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "bench" / "dedup", help="the verifier's readings (a rerun repays nothing)")
    args = parser.parse_args()
    embedder = Embedder(batch_size=256)
    tables, verifier_line = {"stages": labelled_quality(embedder)}, ""
    if args.verifier:
        judge = DedupJudge(args.verifier, args.cache, min_yes=1.0)
        began = time.perf_counter()
        chosen = []
        for ask_check, name in ((False, f"stages + {args.verifier}"), (True, f"stages + {args.verifier} + ask check (default)")):
            judge.min_yes, dev = chosen_threshold(judge, ask_check)
            tables[name] = labelled_quality(embedder, judge, ask_check)
            chosen.append(f"{name}: p(yes) >= {judge.min_yes} ({dev['found']}/{dev['called']}, recall {dev['found']}/{dev['paraphrases']})")
        verifier_line = (f"Verifier: `{judge.model_id}` asked whether the two rows repeat each other (prompts/dedup_judge.txt, "
                         f"both orders averaged), on every pair the stages propose; the semantic stage then proposes the "
                         f"{DedupSettings().verified_neighbours} nearest questions and answers at cosine >= {DedupSettings().verified_cosine}. "
                         "With the ask check (the default), a pair whose questions differ in polarity, in the people asked about, or by a qualifier one adds to all of the other's words "
                         "is never a repeat, whatever the verifier says. Each threshold is the lowest whose precision on all dev pairs "
                         f"reaches 0.95: {'; '.join(chosen)}; "
                         f"{judge.calls} pairs read by the model in {time.perf_counter() - began:.0f} s (the rest from the cache).")
    labelled = labelled_lines(tables, verifier_line)
    write_section(ROOT / "BENCHMARKS.md", labelled[0], "\n".join(labelled))
    print("\n".join(labelled), flush=True)
    if args.labelled_only:
        return
    sentences, used = source_sentences()
    largest = max(args.sizes)
    rows, planted = synthetic_pairs(largest, sentences)
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
    edits = planted_recall(rows[:first], vectors[:first], {q: k for q, k in planted.items() if int(q[1:]) < first})
    growth = math.log(big["seconds"] / small["seconds"]) / math.log(big["n"] / small["n"])
    lines = [
        "## Dedup at scale (bench/dedup.py)",
        "",
        f"{machine()}, {date.today().isoformat()}. Synthetic QA pairs from {len(sentences)} real sentences "
        f"({', '.join(used)}); 5% planted duplicates. All four stages, default thresholds; question embeddings "
        f"(all-MiniLM-L6-v2) computed beforehand, as qa_judged does per chapter: {largest} in {embed_seconds:.0f} s, "
        "not counted below. Quality against written labels is the section 'Dedup against labels'.",
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
        f"String edits planted in the first {first} pairs, found by construction:",
        "",
        "| kind | pairs | removed | share | by stage |",
        "|---|---|---|---|---|",
    ]
    for row in edits:
        share = row["removed"] / row["pairs"] if row["pairs"] else 0.0
        stages = ", ".join(f"{stage} {count}" for stage, count in sorted(row["stages"].items())) or "-"
        lines.append(f"| {row['kind']} | {row['pairs']} | {row['removed']} | {share:.1%} | {stages} |")
    lines.append("")
    section = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", lines[0], section)
    print(section)


if __name__ == "__main__":
    main()
