"""PNG plots for asset metadata: Dagster shows them as base64 images inside markdown."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def loss_curve(losses: list[dict], eval_losses: list[dict], out: Path) -> Path:
    """Training loss per step and validation loss per epoch (the paper's Fig. 3)."""
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot([h["epoch"] for h in losses], [h["loss"] for h in losses], marker="o", markersize=3, label="train (answer tokens)")
    if eval_losses:
        ax.plot([h["epoch"] for h in eval_losses], [h["eval_loss"] for h in eval_losses], marker="s", color="#d95f02", label="validation (early stopping)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("LoRA loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def score_bars(models: dict[str, dict], out: Path, title: str) -> Path:
    """Mean judge score per model with its 95% bootstrap interval, labelled with the paper-style
    total (the paper's Fig. 4)."""
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    names = list(models)
    means = [models[n]["mean"] or 0 for n in names]
    errors = [
        [m - models[n]["ci95"][0] if models[n]["ci95"] else 0 for n, m in zip(names, means)],
        [models[n]["ci95"][1] - m if models[n]["ci95"] else 0 for n, m in zip(names, means)],
    ]
    bars = ax.bar(names, means, yerr=errors, capsize=6, color=["#8c8c8c", "#2c7fb8", "#41ab5d"][: len(names)])
    ax.bar_label(bars, labels=[f"total {models[n]['total']}" for n in names], label_type="center", color="white")
    ax.set_ylim(0, 10)
    ax.set_ylabel("mean judge score (1-10), 95% CI")
    ax.set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def markdown_image(path: Path, alt: str) -> str:
    encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"


def rows_per_chapter_bars(counts: list[dict], out: Path) -> Path:
    """Stacked train/validation/test rows per chapter (the paper's Table II as a chart)."""
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(counts) + 1.6), dpi=100)
    names = [c["chapter_key"] for c in counts]
    left = [0] * len(counts)
    for split, colour in (("train", "#2c7fb8"), ("validation", "#fdae61"), ("test", "#41ab5d")):
        bars = ax.barh(names, [c[split] for c in counts], left=left, color=colour, label=split)
        left = [a + c[split] for a, c in zip(left, counts)]
    ax.bar_label(bars, labels=[str(c["total"]) for c in counts], padding=3)
    ax.invert_yaxis()
    ax.set_xlim(0, max([c["total"] for c in counts] + [1]) * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("QA rows")
    ax.set_title("Rows per chapter")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
