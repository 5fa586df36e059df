"""LoRA training on the real SmolLM2-135M (dequantized from its GGUF) with transformers' Trainer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ragtune.train.lora import (
    LORA_PROFILES,
    answer_loss,
    collator,
    encode_example,
    settings_for,
    train_lora,
    training_arguments,
)
from tests.conftest import load_embedded_model

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

TRAIN = [
    {"instruction": "What is the first-line treatment for panic disorder?",
     "output": "Cognitive behavioural therapy with interoceptive exposure, or an SSRI."},
    {"instruction": "How long must worry last for generalized anxiety disorder?",
     "output": "Excessive worry on most days for at least six months."},
    {"instruction": "Which structure does lithium need monitored?",
     "output": "Blood levels, kidney function and thyroid function."},
    {"instruction": "What defines a panic attack?",
     "output": "An abrupt surge of intense fear that peaks within minutes."},
    {"instruction": "I can't stop checking the stove.", "input": "", "history": [["Hello.", "Hello, what brings you in?"]],
     "output": "That sounds exhausting; tell me what happens when you try not to check."},
]
EVAL = [
    {"instruction": "How long must symptoms last for generalized anxiety disorder?",
     "output": "At least six months of excessive worry on most days."},
    {"instruction": "What is a panic attack?", "output": "A sudden surge of intense fear peaking within minutes."},
]


def test_loss_counts_answer_tokens_only_with_the_chat_template(base_model_cache):
    _, tokenizer = load_embedded_model(base_model_cache)
    encoded = encode_example(tokenizer, TRAIN[4], 512)
    answer = [t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != -100]
    assert tokenizer.decode(answer).startswith("That sounds exhausting")
    prompt = tokenizer.decode([t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label == -100])
    assert "<|im_start|>user\nHello.<|im_end|>" in prompt and "<|im_start|>assistant\nHello, what brings you in?" in prompt
    assert prompt.rstrip().endswith("<|im_start|>assistant")  # SmolLM2's own chat template


def test_packed_batches_score_like_padded_ones(tmp_path, base_model_cache):
    """Packing flattens a batch with restarting position ids; without a KV cache transformers masks
    across examples, so the loss equals the padded batch's. Attention leaking across examples
    (positions not restarting, or a cache in the forward pass) changes it."""
    model, tokenizer = load_embedded_model(base_model_cache)
    examples = [encode_example(tokenizer, row, 256) for row in TRAIN[:3]]
    with torch.no_grad():
        padded = model(**collator(tokenizer, packing=False)(examples)).loss
        packed_batch = collator(tokenizer, packing=True)(examples)
        packed = model(**packed_batch, use_cache=False).loss
        shifted = dict(packed_batch, position_ids=torch.arange(packed_batch["input_ids"].shape[1])[None])
        leaking = model(**shifted, use_cache=False).loss
        cached = model(**packed_batch, use_cache=True).loss
    assert packed_batch["input_ids"].shape[0] == 1
    assert abs(float(packed) - float(padded)) < 1e-3
    assert abs(float(leaking) - float(padded)) > 1e-2 and abs(float(cached) - float(padded)) > 1e-2

    first_steps = []
    for packing in (False, True):  # the Trainer's first step sees the same batch before any update
        model, tokenizer = load_embedded_model(base_model_cache)
        settings = settings_for("embedded", {"max_steps": 1, "batch_size": 3, "packing": packing, "max_length": 256})
        report = train_lora(model, tokenizer, TRAIN, [], settings, tmp_path / f"adapter-{packing}", tmp_path / f"work-{packing}")
        first_steps.append(report.losses[0]["loss"])
    assert abs(first_steps[0] - first_steps[1]) < 1e-3


def test_training_evaluates_each_epoch_keeps_the_best_and_the_adapter_loads_with_peft(tmp_path, base_model_cache):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model, tokenizer = load_embedded_model(base_model_cache)
    settings = settings_for("embedded", {"epochs": 3, "batch_size": 2, "learning_rate": 1e-3, "max_length": 128})
    before = answer_loss(model, tokenizer, TRAIN, 128)
    report = train_lora(model, tokenizer, TRAIN, EVAL, settings, tmp_path / "adapter", tmp_path / "work")
    assert [e["epoch"] for e in report.eval_losses] == [1.0, 2.0, 3.0] and len(report.losses) == 9
    assert report.best_eval_loss == min(e["eval_loss"] for e in report.eval_losses)
    assert not (tmp_path / "work").exists()  # checkpoints are removed once the adapter is saved
    saved = json.loads((tmp_path / "adapter" / "training.json").read_text())
    assert saved["eval_losses"] == report.eval_losses and saved["settings"]["epochs"] == 3
    after = answer_loss(model, tokenizer, TRAIN, 128)
    assert after["loss"] < before["loss"]  # it learned its training answers
    # per-row means, in row order, batched or not: a row scored alone gives its own entry
    assert len(after["per_row"]) == len(TRAIN) and answer_loss(model, tokenizer, TRAIN[1:2], 128)["per_row"] == pytest.approx([after["per_row"][1]], abs=1e-3)
    assert min(after["per_row"]) <= after["loss"] <= max(after["per_row"])

    fresh = AutoModelForCausalLM.from_pretrained(base_model_cache, dtype=torch.float32)
    prompt = tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": EVAL[1]["instruction"]}], tokenize=False,
                                                     add_generation_prompt=True), return_tensors="pt")
    with torch.no_grad():
        base_logits = fresh(**prompt).logits
        tuned = PeftModel.from_pretrained(fresh, str(tmp_path / "adapter"))
        assert not torch.allclose(tuned(**prompt).logits, base_logits)
        output = tuned.generate(**prompt, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    assert output.shape[1] > prompt["input_ids"].shape[1]
    assert tokenizer.decode(output[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_training_stops_early_when_eval_loss_gets_worse(tmp_path, base_model_cache):
    model, tokenizer = load_embedded_model(base_model_cache)
    settings = settings_for("embedded", {"epochs": 6, "batch_size": 5, "learning_rate": 0.05, "early_stopping_patience": 1, "max_length": 96})
    report = train_lora(model, tokenizer, TRAIN, EVAL, settings, tmp_path / "adapter", tmp_path / "work")
    assert report.stopped_early and len(report.eval_losses) < 6
    assert report.best_eval_loss == min(e["eval_loss"] for e in report.eval_losses)


def test_a_killed_training_resumes_from_its_last_epoch(tmp_path, base_model_cache):
    load_embedded_model(base_model_cache)  # the dequantized checkpoint exists before the child starts
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from ragtune.train.lora import load_base_model, settings_for, train_lora
from tests.conftest import load_embedded_model
model, tokenizer = load_base_model("", "", Path({str(base_model_cache)!r}))
rows = json.loads(Path({str(tmp_path / 'rows.json')!r}).read_text())
settings = settings_for("embedded", {{"epochs": 40, "batch_size": 5, "max_length": 96, "early_stopping_patience": 100}})
train_lora(model, tokenizer, rows["train"], rows["eval"], settings, Path({str(tmp_path / 'adapter')!r}), Path({str(tmp_path / 'work')!r}))
"""
    (tmp_path / "rows.json").write_text(json.dumps({"train": TRAIN, "eval": EVAL}))
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 300
    while not list((tmp_path / "work").glob("checkpoint-*")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.5)
    time.sleep(1.0)  # let the checkpoint finish writing
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    done = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "work").glob("checkpoint-*") if (p / "trainer_state.json").exists())
    assert done and not (tmp_path / "adapter").exists()
    model, tokenizer = load_embedded_model(base_model_cache)
    settings = settings_for("embedded", {"epochs": done[-1] + 1, "batch_size": 5, "max_length": 96, "early_stopping_patience": 100})
    report = train_lora(model, tokenizer, TRAIN, EVAL, settings, tmp_path / "adapter", tmp_path / "work")
    assert report.resumed_from == f"checkpoint-{done[-1]}"
    assert [h["step"] for h in report.losses][-1] == done[-1] + 1  # one more epoch of one step, not a restart


def test_gpu_profile_is_bf16_with_gradient_checkpointing_and_packing_and_runs(tmp_path, base_model_cache):
    profile = LORA_PROFILES["gpu_7b"]
    assert profile.bf16 and profile.gradient_checkpointing and profile.packing and profile.max_length >= 1024
    args = training_arguments(profile, tmp_path, has_eval=True)
    assert args.bf16 and args.gradient_checkpointing and args.eval_strategy == "epoch" and args.load_best_model_at_end
    model, tokenizer = load_embedded_model(base_model_cache)  # the same code path on CPU, bf16 autocast, for 2 steps
    settings = settings_for("gpu_7b", {"max_steps": 2, "batch_size": 2, "gradient_accumulation": 1, "max_length": 128})
    report = train_lora(model, tokenizer, TRAIN, EVAL, settings, tmp_path / "adapter", tmp_path / "work")
    assert len(report.losses) == 2 and all(0 < h["loss"] < 20 for h in report.losses)
    with pytest.raises(ValueError, match="unknown LoRA profile"):
        settings_for("tpu", {})


def test_gpu_bench_script_runs_end_to_end_on_a_tiny_model(tmp_path):
    """bench/gpu.py needs a GPU for its numbers; its code is kept working by a tiny CPU run."""
    out = tmp_path / "BENCH.md"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--tiny", "--device", "cpu", "--steps", "2", "--warmup", "1",
                             "--batch", "2", "--seq-len", "64", "--gen-batch", "2", "--prompt-len", "8", "--gen-tokens", "4",
                             "--write-to", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert "tokens/s" in text and "paper's epoch (2000 rows" in text and "MFU" in text
    refused = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--write-to", str(out)], capture_output=True, text=True,
                             env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert refused.returncode != 0 and "needs a CUDA GPU" in refused.stderr


def test_continued_pretraining_learns_every_token_and_sft_starts_from_it(tmp_path, base_model_cache):
    """The PT rung: every token of the passage is a label, blocks keep every token once, training lowers
    the loss of its own text; SFT then trains on the base with the PT adapter merged in (pt_adapter ->
    lora_adapter with from_pt, as pipeline_assets.train.start_model does)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ragtune.train.lora import encode_text, pt_examples, pt_settings_for

    model, tokenizer = load_embedded_model(base_model_cache)
    text = (ROOT / "sample_handbook" / "source" / "02-anxiety-disorders.md").read_text(encoding="utf-8")
    passages = [p for p in text.split("\n\n") if len(p.split()) > 25][:10]
    blocks = encode_text(tokenizer, passages[0] * 3, 64)
    whole = tokenizer(passages[0] * 3 + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    assert len(blocks) > 1 and [t for b in blocks for t in b["input_ids"]] == whole
    assert all(b["labels"] == b["input_ids"] and len(b["input_ids"]) <= 64 for b in blocks)

    records = [{"id": str(i), "text": p} for i, p in enumerate(passages)]
    settings = pt_settings_for("embedded", {"max_steps": 6, "batch_size": 4, "learning_rate": 1e-3, "max_length": 128})
    assert pt_settings_for("embedded", {}).epochs == 1.0  # the default PT run: one pass over the text
    as_answers = [{"instruction": "Continue the handbook.", "output": r["text"]} for r in records[:-2]]
    before = answer_loss(model, tokenizer, as_answers, 256)["loss"]
    report = train_lora(model, tokenizer, records[:-2], records[-2:], settings, tmp_path / "pt", tmp_path / "work", examples=pt_examples)
    assert len(report.losses) == 6 and report.train_tokens == sum(len(b["input_ids"]) for b in pt_examples(tokenizer, records[:-2], 128))
    assert answer_loss(model, tokenizer, as_answers, 256)["loss"] < before  # it learned the handbook's text

    base = AutoModelForCausalLM.from_pretrained(base_model_cache, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(tmp_path / "pt")).merge_and_unload()
    sft = train_lora(merged, tokenizer, TRAIN, EVAL, settings_for("embedded", {"max_steps": 2, "batch_size": 2, "max_length": 128,
                                                                                "from_pt": True}),
                     tmp_path / "sft", tmp_path / "work_sft")
    assert sft.losses and json.loads((tmp_path / "sft" / "training.json").read_text())["settings"]["from_pt"] is True
