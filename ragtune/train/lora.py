"""LoRA fine-tuning with peft on a transformers causal LM, driven by transformers' Trainer.

Loss counts answer tokens only (the prompt, rendered with the base model's own chat template, is
masked with -100). Eval loss on the held-out split is measured every epoch; training stops early
when it stops improving and the best epoch's adapter is kept. Packing flattens each batch into one
row with restarting position ids; transformers turns those into a block-diagonal mask, so packed
examples never attend to each other. Checkpoints live in a folder named by what was trained, so a
killed run resumes from its last epoch instead of starting over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ragtune.chat import prompt_text
from ragtune.stopping import check_stop

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    epochs: float = 3.0
    max_steps: int = 0  # > 0 overrides epochs with a fixed number of optimizer steps
    batch_size: int = 4
    gradient_accumulation: int = 1
    learning_rate: float = 3e-4
    warmup_ratio: float = 0.0  # fraction of the optimizer steps
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    max_length: int = 256
    packing: bool = False
    from_pt: bool = False  # SFT only: start from the base with the continued-pretraining adapter (pt_adapter) merged in
    early_stopping_patience: int = 2  # epochs without a better eval loss before training stops
    bf16: bool = False
    gradient_checkpointing: bool = False
    seed: int = 0


# The embedded default trains SmolLM2-135M on CPU in seconds; gpu_7b is for Mistral-7B-Instruct or
# Qwen2.5-7B-Instruct on one 80 GB GPU (bf16 weights ~15 GB, activations bounded by checkpointing).
LORA_PROFILES: dict[str, LoraSettings] = {
    "embedded": LoraSettings(),
    "gpu_7b": LoraSettings(
        epochs=3.0, batch_size=8, gradient_accumulation=2, learning_rate=2e-4, warmup_ratio=0.03,
        max_length=1024, packing=True, bf16=True, gradient_checkpointing=True,
    ),
}


@dataclass
class TrainingReport:
    losses: list[dict[str, float]] = field(default_factory=list)  # {"step", "epoch", "loss"}
    eval_losses: list[dict[str, float]] = field(default_factory=list)  # {"epoch", "eval_loss"}
    best_eval_loss: float | None = None
    epochs_run: float = 0.0
    stopped_early: bool = False
    resumed_from: str | None = None
    train_rows: int = 0
    eval_rows: int = 0
    train_tokens: int = 0
    trainable_params: int = 0
    seconds: float = 0.0


def load_base_model(gguf_dir: str, gguf_file: str, cache_dir: Path):
    """(model, tokenizer) in float32 from a GGUF; the dequantized model is saved once as a plain
    transformers checkpoint (dequantizing takes 30-80 s on 2 cores, reloading under a second)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache_dir = Path(cache_dir)
    if (cache_dir / "config.json").exists() and (cache_dir / "tokenizer_config.json").exists():
        return load_pretrained(str(cache_dir), torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = cache_dir.with_name(cache_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(cache_dir, ignore_errors=True)
    tmp.rename(cache_dir)  # atomic: a half-written cache is never picked up
    return load_pretrained(str(cache_dir), torch.float32)  # a plain model: no GGUF quantizer state left on it


def load_pretrained(name_or_path: str, dtype: torch.dtype):
    """(model, tokenizer) from a local transformers folder or a hub id, on the GPU when there is one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    device_map = {"": 0} if torch.cuda.is_available() else None
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype, device_map=device_map)
    return model, tokenizer


def encode_example(tokenizer, row: dict[str, Any], max_length: int) -> dict[str, list[int]]:
    """input_ids and labels; labels are -100 over the prompt so only the answer is learned."""
    prompt = prompt_text(tokenizer, row["instruction"], row.get("input", ""), row.get("history"))
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(row["output"] + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    input_ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:max_length]
    return {"input_ids": input_ids, "labels": labels}


def encode_text(tokenizer, text: str, max_length: int) -> list[dict[str, list[int]]]:
    """Continued pre-training examples of one passage: its tokens (and EOS) in blocks of max_length,
    every token learned (labels = input ids)."""
    ids = tokenizer(text + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    return [{"input_ids": ids[i : i + max_length], "labels": ids[i : i + max_length]} for i in range(0, len(ids), max_length)]


def sft_examples(tokenizer, rows: list[dict[str, Any]], max_length: int) -> list[dict[str, list[int]]]:
    return [encode_example(tokenizer, r, max_length) for r in rows]


def pt_examples(tokenizer, rows: list[dict[str, Any]], max_length: int) -> list[dict[str, list[int]]]:
    """PT corpus records ({"text": ...}) as blocks."""
    return [block for r in rows for block in encode_text(tokenizer, r["text"], max_length)]


def collator(tokenizer, packing: bool):
    """Padded batches, or one flattened row per batch with position ids restarting per example."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    if packing:
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")


def stop_callback():
    """A trainer callback that ends training after the step under way once a stop is asked for (the
    last complete checkpoint resumes it)."""
    from transformers import TrainerCallback

    class StopCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            check_stop()

    return StopCallback()


def run_fingerprint(base_model_id: str, settings: LoraSettings, train_rows: list[dict], eval_rows: list[dict]) -> str:
    payload = json.dumps([base_model_id, asdict(settings), train_rows, eval_rows], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def training_arguments(settings: LoraSettings, output_dir: Path, has_eval: bool):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps if settings.max_steps > 0 else -1,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a fraction of the steps
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        logging_steps=1,
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        bf16=settings.bf16,
        gradient_checkpointing=settings.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        use_cpu=not torch.cuda.is_available(),
        seed=settings.seed,
        data_seed=settings.seed,
        remove_unused_columns=False,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def last_complete_checkpoint(work_dir: Path) -> str | None:
    """The newest checkpoint that was written to the end (a kill can leave a partial one, removed here)."""
    complete = []
    for folder in Path(work_dir).glob("checkpoint-*"):
        if (folder / "trainer_state.json").exists():
            complete.append((int(folder.name.split("-")[-1]), folder))
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return str(max(complete)[1]) if complete else None


def train_lora(
    model,
    tokenizer,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    settings: LoraSettings,
    adapter_dir: Path,
    work_dir: Path,
    examples=sft_examples,
) -> TrainingReport:
    """Train, keep the best epoch (lowest eval loss), save the PEFT adapter to adapter_dir.
    work_dir holds the epoch checkpoints; a rerun of the same training resumes from the last one.
    examples turns rows into token examples: SFT (answer tokens learned) or PT (every token)."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import EarlyStoppingCallback, PrinterCallback, Trainer

    if not train_rows:
        raise ValueError("the training split is empty: no QA pairs survived curation")
    torch.manual_seed(settings.seed)
    config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=TARGET_MODULES, task_type="CAUSAL_LM"
    )
    # Without a KV cache in the forward pass transformers reads packed position ids as separate
    # sequences; with one it would let packed examples attend to each other.
    use_cache, model.config.use_cache = model.config.use_cache, False
    peft_model = get_peft_model(model, config)
    if settings.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    train_set = Dataset.from_list(examples(tokenizer, train_rows, settings.max_length))
    eval_set = Dataset.from_list(examples(tokenizer, eval_rows, settings.max_length)) if eval_rows else None
    work_dir.mkdir(parents=True, exist_ok=True)
    last = last_complete_checkpoint(work_dir)
    callbacks = [stop_callback()] + ([EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience)] if eval_set is not None else [])
    trainer = Trainer(
        model=peft_model,
        args=training_arguments(settings, work_dir, eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator(tokenizer, settings.packing),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # the losses go into the report, not to stdout
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    history = trainer.state.log_history
    report = TrainingReport(
        losses=[{"step": h["step"], "epoch": round(h["epoch"], 3), "loss": round(h["loss"], 5)} for h in history if "loss" in h],
        eval_losses=[{"epoch": round(h["epoch"], 3), "eval_loss": round(h["eval_loss"], 5)} for h in history if "eval_loss" in h],
        best_eval_loss=round(trainer.state.best_metric, 5) if trainer.state.best_metric is not None else None,
        epochs_run=round(trainer.state.epoch or 0.0, 3),
        resumed_from=Path(last).name if last else None,
        train_rows=len(train_rows),
        eval_rows=len(eval_rows),
        train_tokens=sum(len(ids) for ids in train_set["input_ids"]),
        trainable_params=sum(p.numel() for p in peft_model.parameters() if p.requires_grad),
        seconds=round(time.perf_counter() - start, 2),
    )
    planned = trainer.state.max_steps
    report.stopped_early = bool(eval_set is not None and trainer.state.global_step < planned)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    (adapter_dir / "training.json").write_text(json.dumps({"settings": asdict(settings), **asdict(report)}, indent=2))
    shutil.rmtree(work_dir, ignore_errors=True)  # the adapter is saved; the checkpoints are done with
    model.config.use_cache = use_cache
    peft_model.eval()
    return report


def with_profile(profiles: dict[str, Any], profile: str, overrides: dict[str, Any], what: str):
    """A profile's settings with the given fields replaced (None means: the profile's value)."""
    if profile not in profiles:
        raise ValueError(f"unknown {what} profile {profile!r}; profiles are {', '.join(profiles)}")
    return dataclasses.replace(profiles[profile], **{k: v for k, v in overrides.items() if v is not None})


def settings_for(profile: str, overrides: dict[str, Any]) -> LoraSettings:
    return with_profile(LORA_PROFILES, profile, overrides, "LoRA")


# Continued pre-training reads the whole train-side text, far more tokens than the QA rows: one
# epoch by default (about 4 minutes for the sample handbook on 2 cores), more where a GPU pays for it.
PT_PROFILES: dict[str, LoraSettings] = {
    "embedded": dataclasses.replace(LORA_PROFILES["embedded"], epochs=1.0),
    "gpu_7b": dataclasses.replace(LORA_PROFILES["gpu_7b"], epochs=2.0),
}


def pt_settings_for(profile: str, overrides: dict[str, Any]) -> LoraSettings:
    return with_profile(PT_PROFILES, profile, overrides, "PT")


@torch.no_grad()
def answer_loss(model, tokenizer, rows: list[dict[str, Any]], max_length: int, batch_size: int = 8) -> dict[str, Any]:
    """Mean negative log-likelihood per answer token (and its perplexity) of the reference answers:
    an objective measure beside the judge, computed the same way for the base and the tuned model.
    per_row holds each row's own mean, in row order, for a paired comparison of two models."""
    model.eval()
    pad = collator(tokenizer, packing=False)
    device = next(model.parameters()).device
    row_nll: list[float] = []
    row_tokens: list[int] = []
    examples = [encode_example(tokenizer, r, max_length) for r in rows]
    for start in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in pad(examples[start : start + batch_size]).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        labels = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels, ignore_index=-100, reduction="none")
        row_nll += [float(x) for x in nll.sum(dim=1)]
        row_tokens += [int(x) for x in (labels != -100).sum(dim=1)]
    tokens = sum(row_tokens)
    if not tokens:
        raise ValueError("no answer tokens to score: the eval rows are empty or cut off by max_length")
    loss = sum(row_nll) / tokens
    per_row = [round(n / t, 5) if t else None for n, t in zip(row_nll, row_tokens)]
    return {"loss": round(loss, 5), "perplexity": round(math.exp(loss), 3), "tokens": tokens, "per_row": per_row}
