"""The embedded model in llama.cpp as shipped (Q4_1) and as the embedded backend runs it (the same
weights re-encoded as Q8_0, ragtune.llm.backends.llamacpp.default_gguf_path): seconds per request on
prompts the size of the judge's (passages from the sample handbook, ~400-900 tokens), measured in one
run with the two models alternating per prompt, and how often their greedy answers are the same.

Usage: python bench/llamacpp_quant.py [--prompts 12] [--max-tokens 48] [--write-to BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import date
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragtune.benchmarks import machine, write_section  # noqa: E402
from ragtune.llm.backends.llamacpp import default_gguf_path, packaged_gguf_path  # noqa: E402

HEADING = "## llama.cpp: Q4_1 as shipped vs re-encoded Q8_0 (bench/llamacpp_quant.py)"
SOURCE = ROOT / "sample_handbook" / "source"


def prompts(n: int, seed: int = 0) -> list[list[dict]]:
    """Chat requests shaped like the grounded judge's: a system line, 2-4 handbook paragraphs, a question."""
    paragraphs = [p.strip() for f in sorted(SOURCE.glob("*.md")) for p in f.read_text(encoding="utf-8").split("\n\n")
                  if len(p.split()) > 30]
    rng = random.Random(seed)
    requests = []
    for _ in range(n):
        passages = "\n\n".join(rng.sample(paragraphs, rng.randint(2, 4)))
        requests.append([
            {"role": "system", "content": "You are a strict reviewer of training data for clinicians."},
            {"role": "user", "content": f"Reference passages:\n{passages}\n\nWhat does the first passage say about the course "
                                        "of the disorder? Answer in one sentence."},
        ])
    return requests


def timed(llama, messages: list[dict], max_tokens: int) -> tuple[float, int, list[int]]:
    llama.reset()  # no prefix reuse from the previous prompt: both models read every prompt in full
    start = time.perf_counter()
    out = llama.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0, seed=0)
    seconds = time.perf_counter() - start
    text = out["choices"][0]["message"]["content"] or ""
    return seconds, out["usage"]["prompt_tokens"], llama.tokenize(text.encode(), add_bos=False)


def bootstrap(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(mean(rng.choices(values, k=len(values))) for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--write-to", type=Path, default=None)
    args = parser.parse_args()
    from llama_cpp import Llama

    threads = args.threads or os.cpu_count() or 1
    models = {"Q4_1": packaged_gguf_path(), "Q8_0": default_gguf_path()}
    llamas = {name: Llama(model_path=path, n_ctx=4096, n_threads=threads, verbose=False) for name, path in models.items()}
    requests = prompts(args.prompts)
    for name in llamas:  # warm-up
        timed(llamas[name], requests[0], 4)
    ratios, same, shared_prefix, seconds, prompt_tokens = [], 0, [], {n: [] for n in llamas}, []
    for i, messages in enumerate(requests):
        order = list(llamas) if i % 2 == 0 else list(reversed(llamas))
        results = {name: timed(llamas[name], messages, args.max_tokens) for name in order}
        (t4, n_prompt, a), (t8, _, b) = results["Q4_1"], results["Q8_0"]
        prompt_tokens.append(n_prompt)
        seconds["Q4_1"].append(t4)
        seconds["Q8_0"].append(t8)
        ratios.append(t4 / t8)
        same += a == b
        prefix = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        shared_prefix.append(prefix / max(1, max(len(a), len(b))))
        print(f"prompt {i + 1}: {n_prompt} tokens, Q4_1 {t4:.2f} s, Q8_0 {t8:.2f} s, same answer: {a == b}", flush=True)
    low, high = bootstrap(ratios)
    lines = [
        HEADING, "",
        f"{machine()}, {date.today().isoformat()}, {threads} threads: {len(requests)} chat requests of {min(prompt_tokens)}-"
        f"{max(prompt_tokens)} prompt tokens (mean {mean(prompt_tokens):.0f}) and up to {args.max_tokens} greedy answer tokens, "
        "each read in full by both models (no prefix reuse), the two alternating per request.", "",
        "| model | mean s per request |", "|---|---|",
        *[f"| {name} | {mean(values):.2f} |" for name, values in seconds.items()], "",
        f"Q4_1 time / Q8_0 time per request: mean {mean(ratios):.2f}, 95% bootstrap CI [{low:.2f}, {high:.2f}]. "
        f"Greedy answers identical on {same} of {len(requests)} requests; the answers agree on their first "
        f"{100 * mean(shared_prefix):.0f}% of tokens on average.", "",
    ]
    print("\n".join(lines))
    if args.write_to:
        write_section(args.write_to, HEADING, "\n".join(lines))


if __name__ == "__main__":
    main()
