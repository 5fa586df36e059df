"""How far each judge can be believed: on the judge check (tests/data/judge_check.jsonl: questions
over handbook, NIMH and MedQuAD topics, each with a reference answer and six answers of known lower
quality), how often the judge prefers the reference in both orders, how often it ties or prefers the
worse answer, and the rank correlation of its probability-weighted 1-10 grades (G-Eval) with the
known order. Readings are cached (a rerun or a resumed run repays nothing). Writes its section of
BENCHMARKS.md and the judge's agreement into ragtune/evaluate/judge_agreement.json, which every
evaluation report reads to name its judge's agreement and to label a judge under 0.8 weak.

Usage: .venv/bin/python bench/judge.py --judge smollm2 [--judge qwen2.5-coder-1.5b]
       [--judge url=http://host:port/v1,model=NAME[,key_env=VAR][,json_mode=json_object]] [--split all|dev|holdout] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragtune.benchmarks import BENCHMARKS, machine, write_section  # noqa: E402
from ragtune.evaluate.geval import VERDICT_MARGIN, CachedReadings, EndpointJudge, LocalJudge  # noqa: E402
from ragtune.evaluate.judge_check import (AGREEMENT_THRESHOLD, KINDS, check_set_sha256, load_check_set, measure_judge,  # noqa: E402
                                          record_agreement)

CHECK_SET = ROOT / "tests" / "data" / "judge_check.jsonl"
HEADING = "## Judge check"


def make_judge(spec: str):
    """A local model name or GGUF path, or url=...,model=...[,key_env=...] for an OpenAI-compatible endpoint."""
    if spec.startswith("url="):
        fields = dict(part.split("=", 1) for part in spec.split(","))
        return EndpointJudge(fields["url"], fields["model"], os.environ.get(fields.get("key_env", "OPENAI_API_KEY")),
                             fields.get("json_mode", "json_schema"))
    return LocalJudge(spec)


def _cell(stats: dict) -> str:
    return f"{stats['agreement']:.2f} ({stats['prefers_reference_both_orders']}/{stats['pairs']})" if stats["pairs"] else "-"


def render(results: list[dict], groups: int, split: str, sha: str) -> str:
    lines = [HEADING, "",
             f"{date.today().isoformat()}, {machine()}, `bench/judge.py --split {split}`: {groups} questions of "
             f"tests/data/judge_check.jsonl (sha256 {sha[:12]}), each reference answer against six worse answers, "
             "compared in both orders (a win only when both orders prefer the reference; one vote each way is a tie) "
             "and graded 1-10 by the probability-weighted score over the score tokens (G-Eval). A judge under "
             f"{AGREEMENT_THRESHOLD} agreement is labelled weak in every evaluation report and its verdict is not printed as one; "
             f"a judge whose grade AUC is under {AGREEMENT_THRESHOLD} has its tuned-minus-base grade difference printed as not a result. "
             "Readings are cached: `readings paid` counts what this run computed, `seconds` its time.", "",
             "| judge | agreement [95% CI] | ties | prefers worse | grade AUC [95% CI] | Spearman (grades vs known order) | mean grade ref / worse | weak | readings paid | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        s = result["summary"]
        ci, auc_ci = s["agreement_ci95"] or ["-", "-"], s["grade_auc_ci95"] or ["-", "-"]
        lines.append(f"| `{result['judge']}` | {s['agreement']} [{ci[0]}, {ci[1]}] | {s['ties']} | {s['prefers_worse']} | "
                     f"{s['grade_auc']} [{auc_ci[0]}, {auc_ci[1]}] | {s['spearman_grades_vs_known_order']} | "
                     f"{s['mean_reference_grade']} / {s['mean_worse_grade']} | {'yes' if s['weak'] else 'no'} | {result['paid']} | {result['seconds']:.0f} |")
    lines += ["", "Agreement by kind of worse answer (share of pairs where both orders prefer the reference):", "",
              "| judge | " + " | ".join(KINDS) + " |", "|---|" + "---|" * len(KINDS)]
    for result in results:
        lines.append(f"| `{result['judge']}` | " + " | ".join(_cell(result["summary"]["by_kind"][k]) for k in KINDS) + " |")
    lines += ["", "Agreement by source:", "", "| judge | " + " | ".join(sorted(results[0]["summary"]["by_source"])) + " |",
              "|---|" + "---|" * len(results[0]["summary"]["by_source"])]
    for result in results:
        by_source = result["summary"]["by_source"]
        lines.append(f"| `{result['judge']}` | " + " | ".join(_cell(by_source[k]) for k in sorted(by_source)) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", action="append", default=[], help="smollm2, qwen2.5-coder-1.5b, a GGUF path, or url=...,model=...")
    parser.add_argument("--set", type=Path, default=CHECK_SET)
    parser.add_argument("--split", choices=["all", "dev", "holdout"], default="all")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "bench" / "judge_cache")
    parser.add_argument("--margin", type=float, default=VERDICT_MARGIN, help="probability lead that makes a verdict A or B rather than a tie")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    groups = [g for g in load_check_set(args.set) if args.split in ("all", g.split)]
    sha = check_set_sha256(args.set)
    results = []
    for spec in args.judge or ["smollm2"]:
        judge = CachedReadings(make_judge(spec), args.cache)
        started = time.time()

        def progress(done: int, total: int) -> None:
            if done % 24 == 0 or done == total:
                print(f"  {spec}: {done}/{total} pairs, {time.time() - started:.0f} s", flush=True)

        measured = measure_judge(judge, groups, margin=args.margin, progress=progress)
        results.append({"judge": judge.model_id, "summary": measured["summary"], "seconds": time.time() - started, "paid": judge.paid})
        s = measured["summary"]
        print(f"{judge.model_id}: agreement {s['agreement']} {s['agreement_ci95']}, ties {s['ties']}, grade AUC {s['grade_auc']}, "
              f"Spearman {s['spearman_grades_vs_known_order']}{' (weak)' if s['weak'] else ''}")
        if not args.no_write:
            record_agreement(judge.model_id, s, sha, len(groups), args.split)
    if not args.no_write:
        write_section(BENCHMARKS, HEADING, render(results, len(groups), args.split, sha))


if __name__ == "__main__":
    main()
