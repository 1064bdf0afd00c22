"""The confusion matrix of a classifier as a PNG."""

from __future__ import annotations

from pathlib import Path

from modelzoo.sdk import pyplot, save_figure


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path) -> None:
    plt = pyplot()
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
    save_figure(fig, path)
