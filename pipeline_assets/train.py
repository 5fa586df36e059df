"""The merged instruction dataset and the LoRA adapter trained on it."""

from dataclasses import asdict

import dagster as dg

from pipeline_assets.config import config_from_settings
from pipeline_assets.metadata import markdown_table, table
from pipeline_assets.partitions import CHAPTERS
from pipeline_assets.qa import qa_filtered
from ragtune.dataset import merge_and_split, read_jsonl, rows_per_chapter, write_jsonl
from ragtune.lora import LoraSettings, train_lora
from ragtune.plots import loss_curve, markdown_image
from resources.base_model import BaseModelResource
from resources.storage import DataDirResource


class DatasetConfig(dg.Config):
    eval_fraction: float = 0.25
    seed: int = 0


LoraConfig = config_from_settings("LoraConfig", LoraSettings, "LoRA hyperparameters and the number of optimizer steps.")


@dg.asset(
    group_name="dataset",
    deps=[dg.AssetDep(qa_filtered, partition_mapping=dg.AllPartitionMapping())],
    kinds={"jsonl"},
)
def instruction_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, storage: DataDirResource) -> dg.MaterializeResult:
    """All chapters merged into alpaca JSONL (instruction/input/output + provenance columns), split by evidence."""
    keys = sorted(context.instance.get_dynamic_partitions(CHAPTERS))
    missing = [k for k in keys if not storage.path("qa", "filtered", f"{k}.jsonl").exists()]
    if missing:
        context.log.warning(f"qa_filtered not materialized for {missing}; those chapters are left out")
    per_chapter = {k: read_jsonl(storage.path("qa", "filtered", f"{k}.jsonl")) for k in keys if k not in missing}
    train, evaluation, duplicates = merge_and_split(per_chapter, config.eval_fraction, config.seed)
    if not train or not evaluation:
        raise dg.Failure(
            f"only {len(train)} train and {len(evaluation)} eval rows survived filtering across chapters {list(per_chapter)}; "
            "raise qa_candidates' quota or point the llm resource at a stronger model"
        )
    write_jsonl(storage.path("dataset", "train.jsonl"), train)
    write_jsonl(storage.path("dataset", "eval.jsonl"), evaluation)
    write_jsonl(storage.path("dataset", "all.jsonl"), train + evaluation)
    counts = rows_per_chapter(train, evaluation)
    return dg.MaterializeResult(
        metadata={
            "train_rows": len(train),
            "eval_rows": len(evaluation),
            "cross_chapter_duplicates_removed": duplicates,
            "rows_per_chapter": table(counts),
            "chapters_missing": dg.MetadataValue.json(missing),
            "dagster/row_count": len(train) + len(evaluation),
            "path": dg.MetadataValue.path(str(storage.path("dataset", "train.jsonl").parent)),
        }
    )


@dg.asset(group_name="train", deps=[instruction_dataset], kinds={"pytorch", "peft"}, pool="gpu")
def lora_adapter(
    context: dg.AssetExecutionContext, config: LoraConfig, storage: DataDirResource, base_model: BaseModelResource
) -> dg.MaterializeResult:
    """A peft LoRA adapter on the base model, trained on the train split; loss per step is recorded and plotted."""
    rows = read_jsonl(storage.path("dataset", "train.jsonl"))
    model, tokenizer = base_model.load(storage.root)
    settings = LoraSettings(**config.model_dump())
    adapter_dir = storage.path("adapter", "adapter_config.json").parent
    losses = train_lora(model, tokenizer, rows, settings, adapter_dir)
    plot = loss_curve(losses, storage.path("reports", "loss_curve.png"))
    context.log.info(f"LoRA losses per step: {losses}")
    return dg.MaterializeResult(
        metadata={
            "steps": len(losses),
            "first_loss": losses[0],
            "final_loss": losses[-1],
            "train_rows": len(rows),
            "base_model": str(base_model.resolved_gguf()),
            "settings": dg.MetadataValue.json(asdict(settings)),
            "loss_curve": dg.MetadataValue.md(markdown_image(plot, "loss curve")),
            "losses": dg.MetadataValue.md(markdown_table([{"step": i + 1, "loss": v} for i, v in enumerate(losses)])),
            "path": dg.MetadataValue.path(str(adapter_dir)),
        }
    )
