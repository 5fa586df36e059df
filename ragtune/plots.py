"""PNG plots for asset metadata: Dagster shows them as base64 images inside markdown."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def loss_curve(losses: list[float], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(range(1, len(losses) + 1), losses, marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (answer tokens)")
    ax.set_title("LoRA training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def score_bars(totals: dict[str, float], out: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    names = list(totals)
    bars = ax.bar(names, [totals[n] for n in names], color=["#8c8c8c", "#2c7fb8", "#41ab5d"][: len(names)])
    ax.bar_label(bars)
    ax.set_ylabel("total judge score")
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
    """Stacked train/eval rows per chapter (the paper's Table II as a chart)."""
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(counts) + 1.6), dpi=100)
    names = [c["chapter_key"] for c in counts]
    train = [c["train"] for c in counts]
    ax.barh(names, train, color="#2c7fb8", label="train")
    bars = ax.barh(names, [c["eval"] for c in counts], left=train, color="#41ab5d", label="eval")
    ax.bar_label(bars, labels=[str(c["total"]) for c in counts], padding=3)
    ax.invert_yaxis()
    ax.set_xlim(0, max([c["total"] for c in counts] + [1]) * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("QA rows")
    ax.set_title("Rows per chapter")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
