"""Plots as PNGs (matplotlib, headless Agg backend): the training curves every run writes, and the
helpers task plugins use for their own plots (per-class results...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .files import atomic_write


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG atomically (never a half-written file), then close it."""
    plt = pyplot()
    try:
        return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=dpi))
    finally:
        plt.close(fig)


def plot_curves(history: list[dict[str, Any]], path: Path, metric: str = "accuracy") -> None:
    """Loss and the validation metric per epoch across all stages, with stage boundaries marked."""
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    xs = list(range(1, len(history) + 1))
    ax_loss.plot(xs, [h["train_loss"] for h in history], marker="o", label="train")
    ax_loss.plot(xs, [h["val_loss"] for h in history], marker="o", label="val")
    ax_acc.plot(xs, [h[f"val_{metric}"] for h in history], marker="o", color="tab:green")
    for i in range(1, len(history)):
        if history[i]["stage"] != history[i - 1]["stage"]:
            for ax in (ax_loss, ax_acc):
                ax.axvline(i + 0.5, color="grey", linestyle="--", linewidth=0.8)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title=f"validation {metric}", xlabel="epoch")
    ax_loss.legend()
    fig.tight_layout()
    save_figure(fig, path)
