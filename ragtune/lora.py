"""LoRA fine-tuning with peft on a causal LM loaded by transformers (here: SmolLM2 from its GGUF).

Loading a GGUF dequantizes it (30-80 s on 2 cores), so the float32 model is saved once as a
plain transformers checkpoint and reloaded from there (under a second). Loss counts answer
tokens only: the prompt part of each example is masked with -100.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    steps: int = 12
    batch_size: int = 4
    learning_rate: float = 3e-4
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    max_length: int = 256
    seed: int = 0


def load_base_model(gguf_dir: str, gguf_file: str, cache_dir: Path):
    """(model, tokenizer) in float32; converts from the GGUF once and caches the result."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache_dir = Path(cache_dir)
    if (cache_dir / "config.json").exists() and (cache_dir / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(cache_dir)
        model = AutoModelForCausalLM.from_pretrained(cache_dir, dtype=torch.float32)
        return model, tokenizer
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
    return model, tokenizer


def prompt_text(tokenizer, instruction: str, context: str = "") -> str:
    user = f"{instruction}\n\n{context}".strip() if context else instruction
    return tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)


def encode_example(tokenizer, row: dict[str, Any], max_length: int) -> tuple[list[int], list[int]]:
    prompt_ids = tokenizer(prompt_text(tokenizer, row["instruction"], row.get("input", "")), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(row["output"] + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    input_ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:max_length]
    return input_ids, labels


def _batch(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def train_lora(model, tokenizer, rows: list[dict[str, Any]], settings: LoraSettings, adapter_dir: Path) -> list[float]:
    """Train, save the PEFT adapter to adapter_dir, and return the loss of every step."""
    from peft import LoraConfig, get_peft_model

    if not rows:
        raise ValueError("the training split is empty: no QA pairs survived filtering")
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=TARGET_MODULES,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    peft_model.train()
    examples = [encode_example(tokenizer, row, settings.max_length) for row in rows]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=settings.learning_rate)
    order: list[int] = []
    losses: list[float] = []
    for _ in range(settings.steps):
        if len(order) < settings.batch_size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order.extend(fresh * max(1, settings.batch_size // len(fresh) + 1))
        picked = [examples[order.pop()] for _ in range(settings.batch_size)]
        output = peft_model(**_batch(picked, pad_id))
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(peft_model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(round(float(output.loss.detach()), 5))
    adapter_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    (adapter_dir / "training.json").write_text(
        json.dumps({"settings": asdict(settings), "losses": losses, "train_rows": len(rows), "trainable_params": trainable}, indent=2)
    )
    peft_model.eval()
    return losses
