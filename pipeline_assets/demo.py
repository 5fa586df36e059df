"""`make demo`: materialize the whole graph on the bundled sample handbook with embedded defaults,
then print where the dataset, adapter and scores are, and the scores table."""

from __future__ import annotations

import json
import os
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")  # model-loading progress bars
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)

import dagster as dg  # noqa: E402

from pipeline_assets.runner import SMALL_RUN, materialize_graph  # noqa: E402
from resources.storage import DataDirResource  # noqa: E402


def main() -> None:
    storage = DataDirResource()
    start = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        print(f"ragtune demo: DAGSTER_HOME={instance.root_directory}  data={storage.root}")
        materialize_graph(instance, SMALL_RUN)
    minutes = (time.monotonic() - start) / 60
    report = json.loads(storage.layout.report("judge_scores").read_text())
    models = report["summary"]["models"]
    print(f"\nDone in {minutes:.1f} min. Outputs:")
    print(f"  dataset : {storage.layout.dataset_dir}  (train.jsonl, eval.jsonl: alpaca; rows/: full rows with evidence)")
    print(f"  exports : {storage.layout.exports_dir}  (alpaca, ShareGPT, OpenAI messages, hf_dataset/, "
          "dataset_info.json, README.md dataset card)")
    print(f"  adapter : {storage.layout.adapter_dir}  (PEFT LoRA; loss curve in reports/)")
    print(f"  scores  : {storage.layout.report('judge_scores')}  (+ heldout_loss.json, dpo/, charts; medquad_scores.json "
          "when RAGTUNE_MEDQUAD_DIR points at MedQuAD)")
    judge = f"{report['judge_model']}" + (", a weak judge" if report["judge_weak"] else "")
    print(f"\nJudge scores over {report['summary']['questions']} frozen eval questions ({judge}):")
    print(f"  {'model':<10}{'total':>7}{'max':>6}{'mean':>8}  95% CI")
    for name, values in models.items():
        mean = f"{values['mean']:.2f}" if values["mean"] is not None else "n/a"
        ci = f"[{values['ci95'][0]:.2f}, {values['ci95'][1]:.2f}]" if values["ci95"] else "n/a"
        print(f"  {name:<10}{values['total']:>7}{values['max_total']:>6}{mean:>8}  {ci}")
    pair = report["summary"]["tuned_vs_base"]
    print(f"  tuned vs base, both orders: {pair['win']} win / {pair['tie']} tie / {pair['loss']} loss ({pair['undecided']} undecided)")
    judged = report["summary"]["judged"]
    print(f"  judged: {judged['answers_graded']} of {judged['answers_asked']} answers graded, {judged['comparisons_judged']} of "
          f"{judged['comparisons_asked']} comparisons; failures in {storage.layout.evaluation_failures('judge_scores')}")
    loss = json.loads(storage.layout.report("heldout_loss").read_text())
    print(f"  held-out answer loss: base {loss['base']['loss']:.3f} (ppl {loss['base']['perplexity']:.1f}), "
          f"tuned {loss['tuned']['loss']:.3f} (ppl {loss['tuned']['perplexity']:.1f})")


if __name__ == "__main__":
    main()
