"""The LoRA adapter trained on the instruction dataset's train split."""

from dataclasses import asdict

import dagster as dg

from pipeline_assets.config import config_from_settings
from pipeline_assets.curate import instruction_dataset
from ragtune.dataset import read_jsonl
from ragtune.dataset_card import markdown_rows
from ragtune.lora import LoraSettings, train_lora
from ragtune.plots import loss_curve, markdown_image
from resources.base_model import BaseModelResource
from resources.storage import DataDirResource


LoraConfig = config_from_settings("LoraConfig", LoraSettings, "LoRA hyperparameters and the number of optimizer steps.")


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
            "losses": dg.MetadataValue.md(markdown_rows([{"step": i + 1, "loss": v} for i, v in enumerate(losses)])),
            "path": dg.MetadataValue.path(str(adapter_dir)),
        }
    )
