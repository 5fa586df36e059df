"""The training ladder of the seeds, measured on CPU: base, PT (continued pre-training on the
collection's train-side text), SFT (from the base), PT+SFT (SFT from base+PT) and PT+SFT+DPO, on the
sample handbook AND the NIMH collection together, with the embedded SmolLM2-135M being tuned and
writing the rows (or --writer, e.g. qwen2.5-coder-1.5b with --free-questions: structure-built
questions run out on the NIMH pages long before 300 rows, see BENCHMARKS "The training ladder").

1. The graph (parse → chapters → chunks → answer-first generation → curation → exports → pt_adapter
   → lora_adapter from PT → preference_pairs → dpo_adapter) into one data folder; every LLM call is
   cached there, so a rerun or a resumed run repays nothing. The handbook keeps its outline's six
   chapters beside the twelve NIMH categories (a mapping file with category `outline`).
2. SFT from the base, on the same train and validation rows, into ladder/sft_from_base.
3. Every rung on the frozen test split and on MedQuAD's mental-health slice (NIH reference answers):
   answer loss of the reference answers, greedy answers graded 1-10 by the judge
   (probability-weighted, G-Eval) and, per question, each rung against base: the weighted-grade
   difference and the verdict read from the two grades (the reading the judge check validated as
   its grade AUC), and with --pairwise-prompt also the pairwise prompt in both orders (the reading
   whose agreement is printed beside it). Paired bootstrap 95% intervals over questions.

Nothing is chosen on the MedQuAD slice: every setting is the profile's default or named here.
Writes Table II (rows per split per chapter), the Fig. 3 analogue (loss per rung's training) and the
Fig. 4 analogue (judge totals per rung) into its section of BENCHMARKS.md.

Usage: .venv/bin/python bench/quality.py [--quota 40] [--medquad-questions 40] [--test-questions 60]
       [--writer qwen2.5-coder-1.5b --free-questions --open-questions] [--data-only]
       [--judge qwen2.5-coder-1.5b] [--pairwise-prompt] [--data data/bench/quality] [--fresh]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from pipeline_assets.runner import materialize_graph  # noqa: E402
from ragtune.benchmarks import machine, write_section  # noqa: E402
from ragtune.curate.dataset_card import markdown_rows, with_total  # noqa: E402
from ragtune.evaluate.geval import CachedReadings, LocalJudge, expected_score, verdict_of  # noqa: E402
from ragtune.evaluate.grading import GradeItem, PairItem, answer_questions, combine_orders, grade_messages, pairwise_messages  # noqa: E402
from ragtune.evaluate.judge_check import judge_standing  # noqa: E402
from ragtune.evaluate.medquad import load_medquad, sample_questions  # noqa: E402
from ragtune.evaluate.stats import bootstrap_ci, grade_outcomes, paired_difference, pairwise_summary  # noqa: E402
from ragtune.jsonl import read_jsonl  # noqa: E402
from ragtune.layout import DataLayout  # noqa: E402
from ragtune.train.lora import answer_loss, settings_for, train_lora  # noqa: E402
from resources import BaseModelResource, DataDirResource, LlamaCppConfig, LLMResource  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HANDBOOK = ROOT / "sample_handbook" / "handbook.pdf"
RUNGS = ("base", "PT", "SFT", "PT+SFT", "PT+SFT+DPO")
RESAMPLES, SEED = 2000, 0
EVALUATION_ASSETS = {"judge_scores", "medquad_scores", "heldout_loss"}  # the bench evaluates every rung itself
TRAINING_ASSETS = {"pt_adapter", "lora_adapter", "preference_pairs", "dpo_adapter"}


def mapping_file(corpus: Path, out: Path) -> Path:
    """The NIMH corpus's file → category table plus the handbook under `outline` (its own chapters)."""
    lines = [line.split("\t")[:2] for line in (corpus / "index.tsv").read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("file\tcategory\n" + "".join(f"{corpus / f}\t{c}\n" for f, c in lines) + f"{HANDBOOK}\toutline\n", encoding="utf-8")
    return out


def build_data_and_ladder(args, layout: DataLayout) -> list[dict]:
    """Stage 1: the graph up to the DPO adapter (SFT from base+PT); returns the run records."""
    corpus = args.shared / "corpus"
    config = {
        "parsed_documents": {"paths": [str(corpus / "pdf"), str(corpus / "text"), str(HANDBOOK)], "categories_from": "mapping",
                             "mapping_file": str(mapping_file(corpus, args.data / "ladder" / "mapping.tsv"))},
        "chapter_evidence": {"rounds": 8 * args.quota},
        "qa_candidates": {"quota": args.quota, "free_questions": args.free_questions, "retries": args.retries,
                          "closed_vocabulary": not args.open_questions},
        "instruction_dataset": {"exclude_tasks": args.exclude_tasks, "refreeze_splits": args.refreeze},
        "pt_adapter": {"epochs": args.pt_epochs},
        "lora_adapter": {"from_pt": True, "epochs": args.epochs},
        # DPO pairs: curated answers over the SFT model's own (no judge: the embedded one is weak, see "Judge check")
        "preference_pairs": {"reference_questions": args.dpo_pairs, "judged_questions": 0},
    }
    resources = {"storage": DataDirResource(data_dir=str(args.data))}
    if args.writer:  # the model that writes questions, cases and patient turns (the graph's `llm`)
        resources["llm"] = LLMResource(backend=LlamaCppConfig(model_path=args.writer))
    with dg.instance_for_test() as instance:
        return materialize_graph(instance, config, resources, without=EVALUATION_ASSETS | (TRAINING_ASSETS if args.data_only else set()))


def train_sft_from_base(args, layout: DataLayout, base_model: BaseModelResource) -> tuple[Path, dict]:
    """Stage 2: SFT on the base (no PT), same rows and settings as the graph's lora_adapter."""
    settings = settings_for("embedded", {"epochs": args.epochs, "from_pt": False})
    train_rows, eval_rows = read_jsonl(layout.alpaca_split("train")), read_jsonl(layout.alpaca_split("validation"))
    adapter_dir = args.data / "ladder" / "sft_from_base"
    fingerprint = base_model.fingerprint(settings, train_rows, eval_rows)
    done = adapter_dir / "training.json"
    if done.exists() and (adapter_dir / "fingerprint").exists() and (adapter_dir / "fingerprint").read_text() == fingerprint:
        return adapter_dir, json.loads(done.read_text())  # trained on these rows with these settings already
    model, tokenizer = base_model.load(layout)
    train_lora(model, tokenizer, train_rows, eval_rows, settings, adapter_dir, layout.lora_work_dir("ladder-sft-base-" + fingerprint))
    (adapter_dir / "fingerprint").write_text(fingerprint)
    return adapter_dir, json.loads(done.read_text())


def rung_model(rung: str, layout: DataLayout, base_model: BaseModelResource, sft_from_base: Path):
    """A fresh copy of one rung's model (merging changes weights, so no rung reuses another's)."""
    from peft import PeftModel

    from ragtune.train.dpo import load_dpo_model

    model, tokenizer = base_model.load(layout)
    if rung == "base":
        return model, tokenizer
    if rung == "PT":
        return PeftModel.from_pretrained(model, str(layout.pt_adapter_dir)), tokenizer
    if rung == "SFT":
        return PeftModel.from_pretrained(model, str(sft_from_base)), tokenizer
    with_pt = PeftModel.from_pretrained(model, str(layout.pt_adapter_dir)).merge_and_unload()
    if rung == "PT+SFT":
        return PeftModel.from_pretrained(with_pt, str(layout.adapter_dir)), tokenizer
    return load_dpo_model(with_pt, layout.adapter_dir, layout.dpo_adapter_dir), tokenizer


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def adapter_state(rung: str, layout: DataLayout, sft_from_base: Path) -> str:
    """What a rung's answers depend on: its adapters' weights."""
    files = {"base": [], "PT": [layout.pt_adapter_weights], "SFT": [sft_from_base / "adapter_model.safetensors"],
             "PT+SFT": [layout.pt_adapter_weights, layout.adapter_weights],
             "PT+SFT+DPO": [layout.pt_adapter_weights, layout.adapter_weights, layout.dpo_adapter_dir / "adapter_model.safetensors"]}[rung]
    return _digest([hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files])


def rung_outputs(args, layout: DataLayout, base_model: BaseModelResource, sft_from_base: Path, question_sets: dict) -> dict:
    """Stage 3a: per rung and question set, the answer loss of every reference and greedy answers;
    kept in ladder/outputs/ by the rung's adapter weights and the questions (a rerun reuses them)."""
    out: dict = {}
    folder = args.data / "ladder" / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    for rung in RUNGS:
        state = adapter_state(rung, layout, sft_from_base)
        path = folder / f"{rung.replace('+', '_')}-{_digest(state, {k: [q['question'] for q in v] for k, v in question_sets.items()}, args.max_new_tokens)}.json"
        if path.exists():
            out[rung] = json.loads(path.read_text())
            continue
        began = time.perf_counter()
        model, tokenizer = rung_model(rung, layout, base_model, sft_from_base)
        result = {}
        for name, questions in question_sets.items():
            rows = [{"instruction": q["question"], "output": q["reference"]} for q in questions]
            loss = answer_loss(model, tokenizer, rows, 512)
            answers = answer_questions(model, tokenizer, [q["question"] for q in questions], args.max_new_tokens)
            result[name] = {"loss": loss["loss"], "per_row": loss["per_row"], "answers": answers}
        path.write_text(json.dumps(result, ensure_ascii=False))
        out[rung] = result
        print(f"  {rung}: losses and answers in {time.perf_counter() - began:.0f} s", flush=True)
    return out


def spread(count: int, wanted: int) -> list[int]:
    """wanted indices spread evenly over count (all when wanted is 0 or at least count)."""
    return list(range(count)) if wanted <= 0 or wanted >= count else [i * count // wanted for i in range(wanted)]


def judge_rungs(readings: CachedReadings, questions: list[dict], outputs: dict, pairwise: bool, label: str, wanted: int) -> dict:
    """Stage 3b: every rung's answer graded (weighted), and with pairwise each rung against base in both
    orders, on `wanted` questions spread over the set (0: all). Question by question, so prompts sharing
    a prefix run one after another in llama.cpp."""
    grades = {rung: [] for rung in RUNGS}
    verdicts = {rung: [] for rung in RUNGS[1:]}
    began = time.perf_counter()
    indices = spread(len(questions), wanted)
    for done, n in enumerate(indices):
        q = questions[n]
        for rung in RUNGS:
            item = GradeItem(q["question"], q["reference"], q["evidence"], outputs[rung][label]["answers"][n])
            grades[rung].append(round(expected_score(readings.grade(grade_messages(item))), 3))
        if pairwise:
            base = outputs["base"][label]["answers"][n]
            for rung in RUNGS[1:]:
                item = PairItem(q["question"], q["reference"], q["evidence"], outputs[rung][label]["answers"][n], base)
                first = verdict_of(readings.verdict(pairwise_messages(item, item.tuned, item.base)), 0.05)
                second = verdict_of(readings.verdict(pairwise_messages(item, item.base, item.tuned)), 0.05)
                verdicts[rung].append(combine_orders(first, second))
        if (done + 1) % 10 == 0 or done + 1 == len(indices):
            print(f"  judge, {label}: {done + 1}/{len(indices)} questions, {time.perf_counter() - began:.0f} s", flush=True)
    return {"grades": grades, "verdicts": verdicts if pairwise else {}, "indices": indices}


def verdict(pair: dict) -> str:
    """The rung against base: a verdict only when the win rate's interval leaves 0.5."""
    ci = pair["win_rate_ci95"]
    word = "beats base" if ci and ci[0] > 0.5 else "loses to base" if ci and ci[1] < 0.5 else "no verdict (the interval holds 0.5)"
    return f"{pair['win']}/{pair['tie']}/{pair['loss']}, {pair['win_rate']} [{ci[0]}, {ci[1]}]: {word}" if ci else f"{pair['win_rate']}: too few questions"


def interval(difference: dict, lower_is_better: bool) -> str:
    ci = difference["ci95"]
    if not ci:
        return f"{difference['mean_difference']:+.3f} (too few questions)"
    better = (ci[1] < 0) if lower_is_better else (ci[0] > 0)
    worse = (ci[0] > 0) if lower_is_better else (ci[1] < 0)
    word = "better than base" if better else "worse than base" if worse else "no verdict"
    return f"{difference['mean_difference']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]: {word}"


def curve_table(name: str, losses: list[dict], eval_losses: list[dict], points: int = 8) -> str:
    """A training loss curve as a row of points (the Fig. 3 analogue in text)."""
    if not losses:
        return f"| {name} | (no steps) | - |"
    step = max(1, len(losses) // points)
    shown = losses[::step] + ([losses[-1]] if (len(losses) - 1) % step else [])
    validation = ", ".join(f"{e['epoch']:g}: {e['eval_loss']:.3f}" for e in eval_losses) or "-"
    return f"| {name} | " + ", ".join(f"{h['epoch']:.2f}: {h['loss']:.3f}" for h in shown) + f" | {validation} |"


def evaluation_sets(args, layout: DataLayout) -> dict:
    test = [r for r in read_jsonl(layout.dataset_rows("test")) if not r.get("turns")]  # single-turn questions
    if 0 < args.test_questions < len(test):  # spread over the chapters, not the first ones only
        test = [test[i * len(test) // args.test_questions] for i in range(args.test_questions)]
    sets = {"test split": [{"id": r["qa_id"], "question": r["question"], "reference": r["answer"],
                            "evidence": "\n\n".join(e["text"] for e in r.get("evidence", [])[:3])} for r in test]}
    medquad = args.shared / "medquad"
    if (medquad / "mental-health").is_dir():
        found, _ = load_medquad(medquad)
        sets["MedQuAD"] = [{"id": q.id, "question": q.question, "reference": q.reference, "evidence": ""}
                           for q in sample_questions(found, args.medquad_questions, SEED)]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quota", type=int, default=40, help="kept pairs wanted per chapter or category")
    parser.add_argument("--writer", default="", help="the model that writes questions (a local model's short name or a GGUF path; default the embedded SmolLM2)")
    parser.add_argument("--free-questions", action="store_true", help="the writer may write a question where no structure dictates one")
    parser.add_argument("--open-questions", action="store_true", help="the writer's own questions are free text, not decoded from the "
                        "closed vocabulary (qa_candidates closed_vocabulary: false; for a writer stronger than the 135M model)")
    parser.add_argument("--retries", type=int, default=1, help="qa_candidates retries: a second question for an answer whose first broke a rule "
                        "(with the 1.5B writing free questions, 1 of 32 rewrites was kept on the NIMH anxiety pages: 0 saves a third of the calls)")
    parser.add_argument("--data-only", action="store_true", help="stop after the dataset and its exports (Table II's counts), before training")
    parser.add_argument("--exclude-tasks", nargs="*", default=["counselling_dialogue"],
                        help="task styles generated but kept out of the dataset (instruction_dataset exclude_tasks). Default: the "
                        "dialogues, whose second clinician turn is a handbook sentence that mostly does not answer the patient's "
                        "follow-up (read 2026-12-07: about 1 in 5 of 40 kept dialogues counsels; issue 33 rebuilds them)")
    parser.add_argument("--refreeze", action="store_true", help="draw the validation and test splits afresh (after the rows changed "
                        "wholesale: a new writer or new rules; the ladder's scores before and after are not comparable)")
    parser.add_argument("--epochs", type=float, default=8.0, help="SFT epochs at most; validation stops it earlier")
    parser.add_argument("--pt-epochs", type=float, default=4.0, help="PT epochs at most; the validation passages stop it earlier and "
                        "choose the epoch kept, as for SFT (the graph's default is one epoch, for the demo's time)")
    parser.add_argument("--dpo-pairs", type=int, default=64, help="train questions whose curated answer is preferred over the SFT model's")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data (corpus/ and medquad/)")
    parser.add_argument("--medquad-questions", type=int, default=40)
    parser.add_argument("--test-questions", type=int, default=60, help="test-split questions evaluated, spread over the split (0 = all)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--judge", default="qwen2.5-coder-1.5b", help="the judge (a local model's short name or a GGUF path)")
    parser.add_argument("--judge-questions", type=int, default=0, help="questions of each set the judge reads, spread over it (0 = all)")
    parser.add_argument("--no-judge", action="store_true", help="answer loss only (the judge readings are the slowest stage)")
    parser.add_argument("--pairwise-prompt", action="store_true", help="also read the pairwise prompt in both orders (2 readings per rung and question)")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bench" / "quality", help="data folder (kept between runs: the stages resume)")
    parser.add_argument("--fresh", action="store_true", help="empty the data folder first")
    parser.add_argument("--rerun-graph", action="store_true", help="run the graph again though its DPO adapter exists")
    args = parser.parse_args()
    if not (args.shared / "corpus" / "index.tsv").exists():
        sys.exit(f"needs the NIMH corpus at {args.shared / 'corpus'} (--shared)")
    if args.fresh:
        shutil.rmtree(args.data, ignore_errors=True)
    layout = DataLayout(args.data)
    base_model = BaseModelResource()
    began = time.perf_counter()
    # The graph's adapters train afresh in a new Dagster instance; once its last one exists, a rerun
    # (after a later stage stopped) goes straight on unless --rerun-graph asks for it again.
    records = build_data_and_ladder(args, layout) if args.rerun_graph or args.data_only or not layout.dpo_adapter_config.exists() else []
    if args.data_only:
        table = json.loads(layout.curation_report.read_text())["rows_per_chapter"]
        splits = {split: sum(r.get(split, 0) for r in table) for split in ("train", "validation", "test")}
        print(f"data only, {(time.perf_counter() - began) / 60:.1f} min: {sum(splits.values())} kept rows {splits}", flush=True)
        return
    seconds_per_job: dict[str, float] = defaultdict(float)
    for record in records:
        seconds_per_job[record["job"]] += record["seconds"]
    print(f"graph done in {(time.perf_counter() - began) / 60:.1f} min", flush=True)
    sft_from_base, sft_base_report = train_sft_from_base(args, layout, base_model)
    sets = evaluation_sets(args, layout)
    outputs = rung_outputs(args, layout, base_model, sft_from_base, sets)
    readings = CachedReadings(LocalJudge(args.judge), layout.llm_cache_dir)
    standing = judge_standing(readings.model_id)
    judged = {} if args.no_judge else {name: judge_rungs(readings, questions, outputs, args.pairwise_prompt, name, args.judge_questions)
                                        for name, questions in sets.items()}
    minutes = (time.perf_counter() - began) / 60

    results = {"sets": {k: len(v) for k, v in sets.items()}, "judged": {k: len(v["indices"]) for k, v in judged.items()}, "rungs": {}}
    for name, questions in sets.items():
        base_loss = outputs["base"][name]["per_row"]
        for rung in RUNGS:
            entry = {"loss": outputs[rung][name]["loss"]}
            if rung != "base":
                entry["loss_minus_base"] = paired_difference(base_loss, outputs[rung][name]["per_row"], RESAMPLES, SEED)
            if name in judged:
                grades, base_grades = judged[name]["grades"][rung], judged[name]["grades"]["base"]
                entry.update({"grade_total": round(sum(grades), 1), "grade_mean": round(sum(grades) / len(grades), 3),
                              "grade_ci95": bootstrap_ci(grades, RESAMPLES, SEED)})
                if rung != "base":
                    entry["grade_minus_base"] = paired_difference(base_grades, grades, RESAMPLES, SEED)
                    entry["grade_verdict"] = pairwise_summary(grade_outcomes(base_grades, grades), RESAMPLES, SEED)
                if judged[name]["verdicts"] and rung != "base":
                    entry["pairwise_verdict"] = pairwise_summary(judged[name]["verdicts"][rung], RESAMPLES, SEED)
            results["rungs"].setdefault(name, {})[rung] = entry
    (args.data / "ladder" / "results.json").write_text(json.dumps(results, indent=1))
    write_benchmarks(args, layout, results, sft_base_report, standing, seconds_per_job, minutes, readings)


def writer_line(args) -> str:
    """Which model wrote the rows, and where questions came from."""
    writer = f"`{args.writer}`" if args.writer else "the embedded SmolLM2-135M"
    vocabulary = "in its own words" if args.open_questions else "from the closed vocabulary"
    questions = (f"questions built from the answer's structure where it dictates one, written by the model elsewhere {vocabulary} (free_questions)"
                 if args.free_questions else "questions built from the answer's structure only")
    excluded = f"; generated but kept out of the dataset: {', '.join(args.exclude_tasks)} (--exclude-tasks)" if args.exclude_tasks else ""
    return f"{writer} generating (answer-first, extractive answers; {questions}{excluded})"


def write_benchmarks(args, layout: DataLayout, results: dict, sft_base_report: dict, standing: dict, seconds_per_job: dict,
                     minutes: float, readings: CachedReadings) -> None:
    curation = json.loads(layout.curation_report.read_text())
    training = json.loads(layout.training_report.read_text())
    pt_report = layout.read_json(layout.pt_adapter_dir / "training.json", {})
    table = curation["rows_per_chapter"]
    kept = sum(r.get("train", 0) + r.get("validation", 0) + r.get("test", 0) for r in table)
    grade_auc = standing["judge_grade_auc"]
    lines = [
        "## The training ladder on CPU (bench/quality.py)",
        "",
        f"{machine()}, {date.today().isoformat()}: the sample handbook (6 chapters) and the NIMH collection (12 categories) together; "
        f"{writer_line(args)}; the embedded SmolLM2-135M tuned; quota {args.quota} kept rows per chapter or category. "
        + (f"{minutes:.0f} min in all (" + ", ".join(f"{job} {s / 60:.1f} min" for job, s in seconds_per_job.items()) + "). " if seconds_per_job
           else f"{minutes:.0f} min in this invocation; the graph (data, PT, SFT from base+PT, DPO) ran in an earlier one, every stage resumed from the data folder. ")
        + (f"Judge: `{readings.model_id}` (grade AUC {grade_auc} on the judge check, pairwise agreement {standing['judge_agreement']})."
         if results["judged"] else "No judge readings in this run (--no-judge)."),
        "",
        f"Table II, kept rows per split per chapter ({kept} kept: every one passed the filter's rules, the question-answer fit rules among them, "
        "and the groundedness gate; the held-out splits are drawn per chapter, chunk-sealed and frozen):",
        "",
        markdown_rows(with_total([dict(r) for r in table], "chapter_key")),
        "",
        "Removed by reason: " + ", ".join(f"{r['removed_by']} {r['rows']}" for r in curation["removed_by"]) + ".",
        "",
        "Fig. 3 analogue, training loss (epoch: loss at evenly spaced steps) and validation loss per epoch, for each trained rung:",
        "",
        "| rung | training loss | validation loss |",
        "|---|---|---|",
        curve_table(f"PT (the train-side text, {pt_report.get('epochs_run', 0):g} epochs, stopped early: {pt_report.get('stopped_early')})",
                    pt_report.get("losses", []), pt_report.get("eval_losses", [])),
        curve_table(f"SFT from base ({sft_base_report['train_rows']} rows, {sft_base_report['epochs_run']:g} epochs, stopped early: "
                    f"{sft_base_report['stopped_early']})", sft_base_report["losses"], sft_base_report["eval_losses"]),
        curve_table(f"SFT from base+PT ({training['train_rows']} rows, {training['epochs_run']:g} epochs, stopped early: {training['stopped_early']})",
                    training.get("losses", []), training.get("eval_losses", [])),
        "",
    ]
    for name, count in results["sets"].items():
        rungs = results["rungs"][name]
        judged = results["judged"].get(name, 0)
        pairwise = any("pairwise_verdict" in e for e in rungs.values())
        lines += [
            f"**{name}** ({count} questions{'; NIH reference answers, no evidence given to the judge' if name == 'MedQuAD' else '; the row answer as reference, its evidence to the judge'}"
            + (f"; {judged} of them, spread over the set, read by the judge" if judged else "; not judged in this run (--no-judge)") + "). "
            "Loss: mean answer-token loss of the reference answers; − base: paired per-question difference with its bootstrap 95% interval "
            "(negative = fits the references better)."
            + (" Grade: the judge's weighted 1-10 grade of the rung's greedy answer (Fig. 4 analogue: total and mean [95% CI]). Grade verdict: "
               "per question, the rung's grade against base's (higher wins), win rate (ties half) with its interval; \"beats base\" only when "
               "the interval lies above 0.5." if judged else "")
            + (" Pairwise prompt: the judge asked to compare in both orders (a win needs both)." if pairwise else ""),
            "",
            "| rung | loss | loss − base |" + (" grade total (mean [95% CI]) | grade − base | grade verdict vs base (W/T/L, rate [95% CI]) |" if judged else "")
            + (" pairwise prompt vs base |" if pairwise else ""),
            "|---|---|---|" + ("---|---|---|" if judged else "") + ("---|" if pairwise else ""),
        ]
        for rung, e in rungs.items():
            cells = [rung, f"{e['loss']:.3f}", interval(e["loss_minus_base"], True) if "loss_minus_base" in e else "-"]
            if judged:
                ci = e["grade_ci95"] or ["-", "-"]
                cells += [f"{e['grade_total']} of {10 * judged} ({e['grade_mean']} [{ci[0]}, {ci[1]}])",
                          interval(e["grade_minus_base"], False) if "grade_minus_base" in e else "-",
                          ("not a verdict (judge grades weak): " if standing["grades_weak"] else "") + verdict(e["grade_verdict"])
                          if "grade_verdict" in e else "-"]
            if pairwise:
                cells.append(("not a verdict (weak judge): " if standing["judge_weak"] else "") + verdict(e["pairwise_verdict"])
                             if "pairwise_verdict" in e else "-")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    section = "\n".join(lines)
    write_section(ROOT / "BENCHMARKS.md", lines[0], section)
    print(section)


if __name__ == "__main__":
    main()
