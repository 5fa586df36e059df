"""A DPO step on top of the SFT adapter, with TRL's DPOTrainer.

The SFT adapter is merged into the base weights first: that merged model is both where DPO starts
and its reference policy (TRL uses the model with the new adapter switched off as reference), so
the step moves away from SFT, not from the untuned base. The result is a second LoRA adapter whose
base is base + SFT; load_dpo_model rebuilds that stack. Prompts are chat turns, so TRL renders them
with the same chat template SFT was trained and is evaluated with.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ragtune.chat import chat_messages
from ragtune.train.lora import TARGET_MODULES, last_complete_checkpoint, stop_callback, with_profile

DPO_FILE = "dpo_training.json"  # in the DPO adapter folder: settings, losses, reward margins


@dataclass
class DPOSettings:
    epochs: float = 2.0
    max_steps: int = 0  # > 0 overrides epochs
    batch_size: int = 2
    gradient_accumulation: int = 1
    learning_rate: float = 5e-5
    beta: float = 0.1  # how far the policy may move from the SFT reference
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    max_length: int = 256  # prompt + answer tokens
    bf16: bool = False
    gradient_checkpointing: bool = False
    seed: int = 0


# embedded: SmolLM2-135M on CPU, a few pairs, seconds; gpu_7b: a 7B model on one 80 GB GPU.
DPO_PROFILES: dict[str, DPOSettings] = {
    "embedded": DPOSettings(),
    "gpu_7b": DPOSettings(epochs=1.0, batch_size=4, gradient_accumulation=4, learning_rate=5e-6, rank=16, alpha=32,
                          max_length=1024, bf16=True, gradient_checkpointing=True),
}


def dpo_settings_for(profile: str, overrides: dict[str, Any]) -> DPOSettings:
    return with_profile(DPO_PROFILES, profile, overrides, "DPO")


@dataclass
class DPOReport:
    pairs: int = 0
    losses: list[dict[str, float]] = field(default_factory=list)  # step, epoch, loss, reward margin, reward accuracy
    epochs_run: float = 0.0
    resumed_from: str | None = None
    trainable_params: int = 0
    seconds: float = 0.0


def conversational(pair: dict[str, Any]) -> dict[str, Any]:
    """A (prompt, chosen, rejected) pair as the chat turns TRL renders with the model's template."""
    return {"prompt": chat_messages(pair["prompt"]), "chosen": [{"role": "assistant", "content": pair["chosen"]}],
            "rejected": [{"role": "assistant", "content": pair["rejected"]}]}


def train_dpo(sft_model, tokenizer, pairs: list[dict[str, Any]], settings: DPOSettings, adapter_dir: Path, work_dir: Path) -> DPOReport:
    """sft_model: the base with the SFT adapter loaded (a peft model); it is merged in place."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    if not pairs:
        raise ValueError("no preference pairs to train on")
    torch.manual_seed(settings.seed)
    merged = sft_model.merge_and_unload()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    work_dir.mkdir(parents=True, exist_ok=True)
    last = last_complete_checkpoint(work_dir)
    args = DPOConfig(
        output_dir=str(work_dir), beta=settings.beta, max_length=settings.max_length,
        num_train_epochs=settings.epochs, max_steps=settings.max_steps if settings.max_steps > 0 else -1,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate, logging_steps=1, save_strategy="epoch", save_total_limit=1,
        bf16=settings.bf16, gradient_checkpointing=settings.gradient_checkpointing, use_cpu=not torch.cuda.is_available(),
        seed=settings.seed, data_seed=settings.seed, report_to=[], disable_tqdm=True, dataloader_num_workers=0,
    )
    peft_config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=TARGET_MODULES,
                             task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=merged, args=args, train_dataset=Dataset.from_list([conversational(p) for p in pairs]),
                         processing_class=tokenizer, peft_config=peft_config, callbacks=[stop_callback()])
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    report = DPOReport(
        pairs=len(pairs),
        losses=[{"step": h["step"], "epoch": round(h["epoch"], 3), "loss": round(h["loss"], 5),
                 "reward_margin": round(h.get("rewards/margins", float("nan")), 5), "reward_accuracy": round(h.get("rewards/accuracies", float("nan")), 3)}
                for h in trainer.state.log_history if "loss" in h],
        epochs_run=round(trainer.state.epoch or 0.0, 3),
        resumed_from=Path(last).name if last else None,
        trainable_params=sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        seconds=round(time.perf_counter() - start, 2),
    )
    shutil.rmtree(adapter_dir, ignore_errors=True)
    adapter_dir.mkdir(parents=True)
    trainer.model.save_pretrained(adapter_dir)
    (adapter_dir / DPO_FILE).write_text(json.dumps({"settings": asdict(settings), "base": "base model + SFT adapter, merged", **asdict(report)},
                                                   indent=2))
    shutil.rmtree(work_dir, ignore_errors=True)
    return report


def load_dpo_model(model, sft_adapter: Path, dpo_adapter: Path):
    """base -> SFT adapter merged -> DPO adapter: the SFT+DPO model, as train_dpo built it."""
    from peft import PeftModel

    merged = PeftModel.from_pretrained(model, str(sft_adapter)).merge_and_unload()
    return PeftModel.from_pretrained(merged, str(dpo_adapter)).eval()
