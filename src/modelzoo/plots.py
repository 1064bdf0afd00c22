"""Training curves and confusion matrix as PNGs (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .fsutil import atomic_write


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict[str, Any]], path: Path, metric: str = "accuracy") -> None:
    """Loss and the validation metric per epoch across all stages, with stage boundaries marked."""
    plt = _figure()
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
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path) -> None:
    plt = _figure()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * n + 2), max(4, 0.6 * n + 1.5)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (validation)")
    if n <= 20:
        peak = max(max(row) for row in matrix) or 1
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    matrix[i][j],
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[i][j] > peak / 2 else "black",
                )
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)
