"""Precision and recall of "fits" (the answer is the complete, exact answer to its question) for each
question-answer fit check tried, against the labelled fit set tests/data/fit_labels.jsonl (our own
questions on handbook and NIMH answers: fits, broader, narrower, another aspect, one side of a
difference missing, a title split into a pair, wrong entity, malformed, a vignette naming its diagnosis).

Thresholds are chosen on the dev split (the highest recall at precision >= 0.95 on dev; the best F1
where no threshold reaches it), then reported on the test split and on the held-out set
(tests/data/fit_labels_holdout.jsonl, written by another author after the checks were designed and
never read while tuning), with 95% bootstrap intervals. Model scores are cached in --cache, so a rerun
with other thresholds or combinations repays nothing. Writes its section of BENCHMARKS.md.

Usage: .venv/bin/python bench/qa_fit.py [--shared ../shared/data] [--models smollm2,qwen2.5-coder-1.5b]
       [--methods rules,embedding,roundtrip,judge] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragtune.benchmarks import auc, choose_threshold, load_labelled, machine, precision_recall, write_section  # noqa: E402
from ragtune.generate.qa_fit import fit_problem  # noqa: E402
from ragtune.generate.row_rules import question_not_answered, uncovered_terms  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from audit_rows import check_fits  # noqa: E402  (the independent audit's own fit check)

LABELS = ROOT / "tests" / "data" / "fit_labels.jsonl"
HOLDOUT = ROOT / "tests" / "data" / "fit_labels_holdout.jsonl"
PRECISION_GOAL, RECALL_GOAL = 0.95, 0.80
OPERATING_PRECISION = 0.80  # a second threshold per score: where a product could run while the goal is unmet
HEADING = "## Question-answer fit (bench/qa_fit.py)"
PART_ORDER = ("dev", "holdout", "test")
PASS_FAIL = ("rules", "term coverage (the rule before)", "term coverage and rules (the filter before 2026-12-05)",
             "the filter's question rules (question_not_answered, question_does_not_fit)", "audit question_fits (bench/audit_rows.py)")
MIN_DEV_AUC = 0.65  # a model score under this on dev is reported there and not computed on held-out and test


def as_row(item: dict[str, Any]) -> dict[str, Any]:
    """A labelled item in the shape of a generated row (what the checks read)."""
    section = [item["section"]] if item.get("section") else []
    return {
        "qa_id": item["id"], "task": item.get("task", "factual_recall"), "language": item.get("language", "en"),
        "question": item["question"], "answer": item["answer"], "chapter_title": item.get("chapter_title", ""),
        "focus": item.get("section", ""), "section_path": section,
        "evidence": [{"text": item["evidence"], "section_path": section}],
    }


class ScoreCache:
    """Scores by method, model and the item's content: a changed item or prompt is scored again."""

    def __init__(self, path: Path):
        self.path = path
        self.scores: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}

    def key(self, method: str, item: dict[str, Any]) -> str:
        from ragtune.llm.prompts import template_sha256

        templates = {"judge": ("fit_judge", "fit_judge_swapped"), "roundtrip": ("fit_roundtrip",)}.get(method.split(":")[0], ())
        prompts = "".join(template_sha256(t) for t in templates)
        content = json.dumps([item["question"], item["answer"], item["evidence"], item.get("section"), item.get("chapter_title"), prompts])
        return f"{method}:{hashlib.sha256(content.encode()).hexdigest()[:20]}"

    def get(self, method: str, item: dict[str, Any], compute: Callable[[], float]) -> float:
        key = self.key(method, item)
        if key not in self.scores:
            self.scores[key] = compute()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.scores))
        return self.scores[key]


def score_items(items: list[dict[str, Any]], methods: list[str], models: list[str], cache: ScoreCache) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """{score name: {item id: score}} and seconds per item of each scorer (when it ran)."""
    scores: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    rows = {i["id"]: as_row(i) for i in items}
    scores["term coverage (the rule before)"] = {i: float(not uncovered_terms(r) and question_not_answered(r) is None) for i, r in rows.items()}
    scores["term coverage and rules (the filter before 2026-12-05)"] = {
        i: float(not uncovered_terms(r) and question_not_answered(r) is None and fit_problem(r) is None) for i, r in rows.items()}
    scores["rules"] = {i: float(fit_problem(r) is None) for i, r in rows.items()}
    scores["the filter's question rules (question_not_answered, question_does_not_fit)"] = {
        i: float(question_not_answered(r) is None and fit_problem(r) is None) for i, r in rows.items()}
    scores["audit question_fits (bench/audit_rows.py)"] = {i: float(not check_fits(r)) for i, r in rows.items()}
    if "embedding" in methods:
        from ragtune.generate.fit_scores import embedding_margin
        from ragtune.index.embedding import Embedder

        embedder = Embedder()
        scores["embedding margin"] = {i["id"]: cache.get("embedding", i, lambda i=i: embedding_margin(embedder, rows[i["id"]])) for i in items}
    from ragtune.generate.fit_scores import FitJudge, judge_yes, round_trip
    from ragtune.llm.scoring import TokenScorer

    scorers = {model: {"judge": FitJudge(model), "roundtrip": TokenScorer(model)} for model in models}
    functions = {"roundtrip": round_trip, "judge": judge_yes}
    dropped: dict[str, float] = {}
    for part in PART_ORDER:  # dev first (thresholds), then held-out, then test: a stopped run has what matters most
        chosen = sorted((i for i in items if i["split"] == part), key=lambda i: (i["evidence"], i["id"]))  # a passage's prefix is read once
        for model, by_method in scorers.items():
            for method in (m for m in ("judge", "roundtrip") if m in methods):
                scorer = by_method[method]
                name = f"{'round-trip likelihood' if method == 'roundtrip' else 'judge p(yes), 2 orders'} ({model})"
                if name in dropped:
                    continue
                if part != "dev" and name in scores:
                    dev_auc = auc([(scores[name][i["id"]], i["fits"]) for i in items if i["split"] == "dev"])
                    if dev_auc < MIN_DEV_AUC:  # chosen on dev: a score that barely separates there is not run further
                        dropped[name] = dev_auc
                        continue
                start, fresh = time.monotonic(), 0
                found = scores.setdefault(name, {})
                for item in chosen:
                    fresh += cache.key(f"{method}:{model}", item) not in cache.scores
                    found[item["id"]] = cache.get(f"{method}:{model}", item, lambda item=item: functions[method](scorer, rows[item["id"]]))
                if fresh:
                    seconds[name] = (time.monotonic() - start) / fresh
                print(f"{name}, {part}: {len(chosen)} items ({fresh} scored now)", flush=True)
    for name in dropped:
        del scores[name]
    return scores, seconds, dropped


def bootstrap(items: list[dict[str, Any]], kept: Callable[[dict[str, Any]], bool], draws: int = 2000) -> tuple[tuple[float, float], tuple[float, float]]:
    rng = random.Random(0)
    decided = [(i["fits"], kept(i)) for i in items]
    ps, rs = [], []
    for _ in range(draws):
        sample = [decided[rng.randrange(len(decided))] for _ in decided]
        said = [f for f, k in sample if k]
        fits = sum(f for f, _ in sample)
        ps.append(sum(said) / len(said) if said else 0.0)
        rs.append(sum(f for f, k in sample if k) / fits if fits else 0.0)
    ps.sort()
    rs.sort()
    lo, hi = int(0.025 * draws), int(0.975 * draws) - 1
    return (ps[lo], ps[hi]), (rs[lo], rs[hi])


def deciders(scores: dict[str, dict[str, float]], dev: list[dict[str, Any]]) -> dict[str, tuple[Callable[[dict[str, Any]], bool], str]]:
    """Each method as a keep/drop decision with its dev-chosen threshold, and the rules combined with each score."""
    decided: dict[str, tuple[Callable[[dict[str, Any]], bool], str]] = {}
    rules = scores["rules"]
    for name, score in scores.items():
        if name in PASS_FAIL:
            decided[name] = ((lambda i, s=score: s[i["id"]] >= 1.0), "pass/fail")
            continue
        passing = [i for i in dev if rules[i["id"]] >= 1.0]
        for floor in (PRECISION_GOAL, OPERATING_PRECISION):
            t, how = choose_threshold(dev, score, floor, "fits")
            decided[f"{name} >= {t:.3f}"] = ((lambda i, s=score, t=t: s[i["id"]] >= t), how)
            t2, how2 = choose_threshold(passing, score, floor, "fits")
            decided[f"rules and {name} >= {t2:.3f}"] = ((lambda i, s=score, t=t2: rules[i["id"]] >= 1.0 and s[i["id"]] >= t), how2)
    return decided


def misses(items: list[dict[str, Any]], kept: Callable[[dict[str, Any]], bool]) -> Counter:
    return Counter(i["kind"] for i in items if kept(i) != i["fits"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--models", default="smollm2,qwen2.5-coder-1.5b", help="local models for the round-trip and judge scores ('' for none)")
    parser.add_argument("--methods", default="rules,embedding,roundtrip,judge")
    parser.add_argument("--cache", default=str(ROOT / "data" / "bench" / "qa_fit_scores.json"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    corpus = Path(args.shared) / "corpus"
    corpus = corpus if corpus.exists() else None
    items = load_labelled(LABELS, corpus)
    holdout = load_labelled(HOLDOUT, corpus) if HOLDOUT.exists() else []
    for item in holdout:
        item["split"] = "holdout"
    dev = [i for i in items if i["split"] == "dev"]
    test = [i for i in items if i["split"] == "test"]
    models = [m for m in args.models.split(",") if m]
    scores, seconds, dropped = score_items(items + holdout, args.methods.split(","), models, ScoreCache(Path(args.cache)))
    decided = deciders(scores, dev)

    lines = [HEADING, "", f"Measured {date.today()} on {machine()}. Labelled items: {len(dev)} dev, {len(test)} test, {len(holdout)} held-out "
             f"({sum(i['fits'] for i in dev)}/{sum(i['fits'] for i in test)}/{sum(i['fits'] for i in holdout)} fit). Thresholds chosen on dev; "
             f"goal: precision >= {PRECISION_GOAL} at recall >= {RECALL_GOAL} on the held-out set. Intervals: 95% bootstrap (2000 draws).", ""]
    lines += ["| check | dev: how chosen | test precision [95%] | test recall [95%] | held-out precision [95%] | held-out recall [95%] |",
              "|---|---|---|---|---|---|"]
    results = {}
    for name, (kept, how) in decided.items():
        row = [name, how]
        for part in (test, holdout):
            if not part:
                row += ["-", "-"]
                continue
            p, r, _ = precision_recall(part, kept, "fits")
            (plo, phi), (rlo, rhi) = bootstrap(part, kept)
            row += [f"{p:.3f} [{plo:.2f}, {phi:.2f}]", f"{r:.3f} [{rlo:.2f}, {rhi:.2f}]"]
            results[(name, part is holdout)] = (p, r)
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Wrong decisions by kind on test (+ held-out), per check:", ""]
    kinds = sorted({i["kind"] for i in items})
    lines += ["| check | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name, (kept, _) in decided.items():
        wrong = misses(test + holdout, kept)
        lines.append(f"| {name} | " + " | ".join(str(wrong[k]) for k in kinds) + " |")
    lines += ["", "Dev AUC of each score (fits ranked above misfits): " + "; ".join(
        f"{name} {auc([(score[i['id']], i['fits']) for i in dev]):.3f}" for name, score in scores.items() if name not in PASS_FAIL) + "."]
    if dropped:
        lines += ["", f"Left at dev (AUC below {MIN_DEV_AUC} there, so not scored on held-out and test): "
                  + "; ".join(f"{name} {value:.3f}" for name, value in dropped.items()) + "."]
    if seconds:
        lines += ["", "Seconds per item (scored in this run): " + "; ".join(f"{n} {s:.2f} s" for n, s in seconds.items()) + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", HEADING, text)


if __name__ == "__main__":
    main()
