"""PNG plots for asset metadata: Dagster shows them as base64 images inside markdown."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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
