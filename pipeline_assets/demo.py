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
    report = json.loads(storage.path("reports", "judge_scores.json").read_text())
    models = report["summary"]["models"]
    print(f"\nDone in {minutes:.1f} min. Outputs:")
    print(f"  dataset : {storage.path('dataset', 'train.jsonl').parent}  (train.jsonl, eval.jsonl: alpaca; rows/: full rows with evidence)")
    print(f"  exports : {storage.path('exports', 'README.md').parent}  (alpaca, ShareGPT, OpenAI messages, hf_dataset/, "
          "dataset_info.json, README.md dataset card)")
    print(f"  adapter : {storage.path('adapter', 'adapter_config.json').parent}  (PEFT LoRA; loss curve in reports/)")
    print(f"  scores  : {storage.path('reports', 'judge_scores.json')}")
    print(f"\nJudge scores over {report['summary']['questions']} eval questions ({report['judge_model']}, a weak judge):")
    print(f"  {'model':<8}{'total':>7}{'max':>6}{'mean':>8}")
    for name, values in models.items():
        mean = f"{values['mean']:.2f}" if values["mean"] is not None else "n/a"
        print(f"  {name:<8}{values['total']:>7}{values['max_total']:>6}{mean:>8}")


if __name__ == "__main__":
    main()
