"""GPU bench, for a machine with a CUDA GPU (never needed by the tests):

(1) LoRA training tokens/s and MFU on a randomly initialised Mistral-7B-shaped model, with the
    gpu_7b profile's setup: bf16 weights, LoRA on every projection, gradient checkpointing,
    packed full-length rows;
(2) batched generation tokens/s with transformers' generate on the same model.

Goal: the paper's 2,000-row LoRA epoch (2 h on one A6000) in under 10 minutes on one H100.
The epoch time is rows x tokens per row / measured tokens/s; tokens per row is measured on
data/dataset/train.jsonl (with the dequantized base model's tokenizer in data/models/) when a
demo has run, else --tokens-per-row.

MFU counts model FLOPs per trained token without recompute: 4N (forward 2N, backward through
the frozen weights 2N; LoRA's own weight gradients are negligible) + 12 * layers * hidden * seq
(attention scores and values, forward and backward), over the GPU's dense bf16 peak.

Usage: python bench/gpu.py [--steps 10] [--batch 8] [--seq-len 1024] [--write-to BENCHMARKS.md]
       python bench/gpu.py --tiny --device cpu   (a seconds-long smoke run of the same code)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragtune.benchmarks import write_section  # noqa: E402
from ragtune.train.lora import LORA_PROFILES, TARGET_MODULES  # noqa: E402

HEADING = "## GPU: LoRA training and batched generation (bench/gpu.py)"
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "A6000": 154.8, "L40S": 362.0}


def model_config(tiny: bool):
    from transformers import MistralConfig

    if tiny:
        return MistralConfig(vocab_size=512, hidden_size=64, intermediate_size=224, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    return MistralConfig()  # the defaults are Mistral-7B's shape: 32 layers, 4096 hidden, 14336 MLP, GQA 8


def build_model(config, device: str, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_generation(model, device: str, batch: int, prompt_len: int, new_tokens: int, vocab: int) -> dict:
    prompts = torch.randint(3, vocab, (batch, prompt_len), device=device)
    with torch.no_grad():
        model.generate(prompts[:, :16], max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=0)  # warm-up
        sync(device)
        start = time.perf_counter()
        model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        sync(device)
    seconds = time.perf_counter() - start
    return {"batch": batch, "prompt_len": prompt_len, "new_tokens": new_tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(batch * new_tokens / seconds, 1)}


def bench_lora(model, config, device: str, batch: int, seq_len: int, steps: int, warmup: int) -> dict:
    from peft import LoraConfig, get_peft_model

    profile = LORA_PROFILES["gpu_7b"]
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    peft_model = get_peft_model(model, LoraConfig(r=profile.rank, lora_alpha=profile.alpha, lora_dropout=profile.dropout,
                                                  target_modules=TARGET_MODULES, task_type="CAUSAL_LM"))
    peft_model.train()
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=profile.learning_rate)
    inputs = torch.randint(3, config.vocab_size, (batch, seq_len), device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = 0.0
    for step in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        loss = peft_model(input_ids=inputs, labels=inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if step >= warmup:
            seconds += time.perf_counter() - start
    tokens_per_s = batch * seq_len * steps / seconds
    embedding = config.vocab_size * config.hidden_size
    n_params = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" not in n) - embedding
    flops_per_token = 4 * n_params + 12 * config.num_hidden_layers * config.hidden_size * seq_len
    return {
        "batch": batch, "seq_len": seq_len, "steps": steps, "seconds": round(seconds, 2), "tokens_per_s": round(tokens_per_s, 1),
        "params_b": round(n_params / 1e9, 2), "achieved_tflops": round(flops_per_token * tokens_per_s / 1e12, 1),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1) if device.startswith("cuda") else None,
        "final_loss": round(float(loss), 3),
    }


def tokens_per_row(default: int) -> tuple[int, str]:
    """Mean prompt+answer tokens of the project's train split, if a demo has written one."""
    train = ROOT / "data" / "dataset" / "train.jsonl"
    if not train.exists():
        return default, f"assumed {default}"
    from transformers import AutoTokenizer

    from ragtune.train.lora import encode_example

    tokenizer_dir = next((ROOT / "data" / "models").glob("*/tokenizer_config.json"), None)
    if tokenizer_dir is None:
        return default, f"assumed {default}"
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir.parent)
    rows = [json.loads(line) for line in open(train, encoding="utf-8")]
    lengths = [len(encode_example(tokenizer, r, 4096)["input_ids"]) for r in rows]
    return round(sum(lengths) / len(lengths)), f"measured on {len(rows)} rows of data/dataset/train.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny Mistral-shaped model: a smoke run of this script")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--gen-batch", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--gen-tokens", type=int, default=256)
    parser.add_argument("--rows", type=int, default=2000, help="rows per epoch (the paper's ~2,000)")
    parser.add_argument("--tokens-per-row", type=int, default=400, help="used when no train split is present")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak; default by GPU name")
    parser.add_argument("--write-to", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA GPU (or --tiny --device cpu for a smoke run)")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({args.device})"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    config = model_config(args.tiny)
    model = build_model(config, args.device, dtype)
    generation = bench_generation(model, args.device, args.gen_batch, args.prompt_len, args.gen_tokens, config.vocab_size)
    lora = bench_lora(model, config, args.device, args.batch, args.seq_len, args.steps, args.warmup)
    per_row, source = tokens_per_row(args.tokens_per_row)
    epoch_s = args.rows * per_row / lora["tokens_per_s"]
    mfu = f"{100 * lora['achieved_tflops'] / peak:.1f}%" if peak else "n/a (unknown peak)"
    shape = "tiny Mistral-shaped (smoke run)" if args.tiny else "Mistral-7B-shaped, random weights"
    lines = [
        HEADING,
        "",
        f"{device_name}, {date.today().isoformat()}, torch {torch.__version__}. Model: {shape}, {lora['params_b']} B "
        f"non-embedding params, {str(dtype).replace('torch.', '')}, sdpa attention.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| LoRA training (r={LORA_PROFILES['gpu_7b'].rank}, all projections, gradient checkpointing), batch {lora['batch']} x "
        f"{lora['seq_len']} tokens | {lora['tokens_per_s']} tokens/s |",
        f"| model FLOP/s (4N + 12·L·d·s per token) | {lora['achieved_tflops']} TFLOP/s |",
        f"| MFU (dense bf16 peak {peak} TFLOP/s) | {mfu} |",
        f"| peak GPU memory | {lora['peak_memory_gb']} GB |",
        f"| batched generation, batch {generation['batch']}, {generation['prompt_len']} prompt + {generation['new_tokens']} "
        f"new tokens | {generation['tokens_per_s']} tokens/s |",
        "",
        f"paper's epoch ({args.rows} rows x {per_row} tokens, {source}): {epoch_s / 60:.1f} min (goal < 10 min on one H100)",
        "",
    ]
    section = "\n".join(lines)
    write_section(args.write_to, HEADING, section)
    print(section)


if __name__ == "__main__":
    main()
