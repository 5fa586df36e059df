"""The LoRA adapter trained on the instruction dataset's train split; the validation split chooses the
epoch and stops training early. The test split is not read here."""

import typing
from dataclasses import asdict, fields
from typing import Literal, Optional

import dagster as dg
import pydantic

from pipeline_assets.curate import instruction_dataset
from ragtune.curate.dataset_card import markdown_rows
from ragtune.jsonl import read_jsonl
from ragtune.plots import loss_curve, markdown_image
from ragtune.train.lora import LoraSettings, settings_for, train_lora
from resources.base_model import BaseModelResource
from resources.storage import DataDirResource

_HINTS = typing.get_type_hints(LoraSettings)
LoraConfig = pydantic.create_model(
    "LoraConfig",
    __base__=dg.Config,
    profile=(Literal["embedded", "gpu_7b"], pydantic.Field(default="embedded", description="embedded: SmolLM2-135M on CPU; gpu_7b: a 7B model in bf16 with gradient checkpointing and packing.")),
    **{f.name: (Optional[_HINTS[f.name]], pydantic.Field(default=None, description=f"default: the profile's ({f.default})")) for f in fields(LoraSettings)},
)
LoraConfig.__doc__ = "A LoRA profile and any of its settings to override (unset = the profile's value)."


@dg.asset(group_name="train", deps=[instruction_dataset], kinds={"pytorch", "peft"}, pool="gpu")
def lora_adapter(
    context: dg.AssetExecutionContext, config: LoraConfig, storage: DataDirResource, base_model: BaseModelResource
) -> dg.MaterializeResult:
    """A peft LoRA adapter trained with transformers' Trainer: loss on answer tokens, validation loss
    every epoch, early stop, the best epoch kept; the loss curve is plotted. The test split, which
    heldout_loss and judge_scores report on, plays no part in training or in the choice of epoch."""
    settings = settings_for(config.profile, {k: v for k, v in config.model_dump().items() if k != "profile"})
    train_rows = read_jsonl(storage.layout.alpaca_split("train"))
    eval_rows = read_jsonl(storage.layout.alpaca_split("validation"))
    model, tokenizer = base_model.load(storage.layout, bf16=settings.bf16)
    adapter_dir = storage.layout.adapter_dir
    work_dir = storage.layout.lora_work_dir(base_model.fingerprint(settings, train_rows, eval_rows))
    report = train_lora(model, tokenizer, train_rows, eval_rows, settings, adapter_dir, work_dir)
    plot = loss_curve(report.losses, report.eval_losses, storage.layout.chart("loss_curve"))
    if report.resumed_from:
        context.log.info(f"resumed from {report.resumed_from}")
    train_losses = [h["loss"] for h in report.losses]
    return dg.MaterializeResult(
        metadata={
            "profile": config.profile,
            "steps": len(train_losses),
            "epochs_run": report.epochs_run,
            "first_loss": train_losses[0] if train_losses else None,
            "final_loss": train_losses[-1] if train_losses else None,
            "best_validation_loss": report.best_eval_loss,
            "stopped_early": report.stopped_early,
            "train_rows": report.train_rows,
            "validation_rows": report.eval_rows,
            "selection_split": "validation",
            "train_tokens": report.train_tokens,
            "trainable_params": report.trainable_params,
            "seconds": report.seconds,
            "base_model": base_model.model_id(),
            "settings": dg.MetadataValue.json(asdict(settings)),
            "loss_curve": dg.MetadataValue.md(markdown_image(plot, "loss curve")),
            "validation_loss_per_epoch": dg.MetadataValue.md(markdown_rows(report.eval_losses) if report.eval_losses else "no validation split"),
            "path": dg.MetadataValue.path(str(adapter_dir)),
        }
    )
