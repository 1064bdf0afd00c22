"""``zoo eval RUN --errors N``: the validation examples a classifier got wrong most confidently, as a CSV
and, where the examples are pictures, a gallery PNG (true class, predicted class and its probability)."""

from __future__ import annotations

import csv
import heapq
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelzoo.sdk import atomic_write_text, pyplot, save_figure

#: the gallery shows at most this many pictures (the CSV lists all N)
GALLERY_MAX = 64


@torch.no_grad()
def confident_mistakes(task: Any, model: Any, loader: Any, n: int) -> list[tuple[float, int, int, int, float]]:
    """``(confidence, index, predicted, true, p(true))`` of the ``n`` most confident wrong predictions, in
    that order (the validation split in loader order; only ``n`` are kept, whatever the split's size)."""
    model.eval()
    kept: list[tuple[float, int, int, int, float]] = []
    seen = 0
    for batch in loader:
        x, y = task.to_device(batch)
        with task.autocast():
            probs = model(x).float().softmax(-1).cpu()
        y = y.cpu()
        conf, pred = probs.max(-1)
        for j in torch.nonzero(pred != y).flatten().tolist():
            item = (conf[j].item(), seen + j, pred[j].item(), y[j].item(), probs[j, y[j]].item())
            if len(kept) < n:
                heapq.heappush(kept, item)
            else:
                heapq.heappushpop(kept, item)
        seen += len(y)
    return sorted(kept, key=lambda t: (-t[0], t[1]))


def write_errors(task: Any, model: Any, loader: Any, n: int, out: Path) -> list[Path]:
    """``out/errors.csv`` and, when the task can draw its examples, ``out/errors.png``."""
    mistakes = confident_mistakes(task, model, loader, n)
    labels = model.labels
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "example", "true", "predicted", "confidence", "true_probability"])
    shown = []
    for rank, (conf, index, pred, true, p_true) in enumerate(mistakes, 1):
        name, picture = task.error_example(loader.dataset, index)
        writer.writerow([rank, name, labels[true], labels[pred], round(conf, 6), round(p_true, 6)])
        if picture is not None and len(shown) < GALLERY_MAX:
            shown.append((picture, f"{labels[true]} → {labels[pred]}\n{conf:.2f}"))
    written = [atomic_write_text(out / "errors.csv", buf.getvalue())]
    if shown:
        written.append(gallery(shown, out / "errors.png", f"{len(mistakes)} most confident mistakes"))
    return written


def gallery(items: list[tuple[Any, str]], path: Path, title: str) -> Path:
    """Pictures in a grid, each with its caption."""
    plt = pyplot()
    cols = min(8, len(items))
    rows = (len(items) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 2.1 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (picture, caption) in zip(axes.flat, items):
        ax.imshow(np.asarray(picture), cmap="gray" if np.asarray(picture).ndim == 2 else None)
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
