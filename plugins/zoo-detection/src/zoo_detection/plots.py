"""What a detection run draws: validation images with their boxes, and AP per class."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from modelzoo.sdk import pyplot, save_figure

from .data import Record
from .predict import draw_detections, save_image, to_items


def sample_sheet(
    samples: list[tuple[Record, dict[str, torch.Tensor] | None]], labels: list[str], path: Path, threshold: float
) -> None:
    """Up to three tiles a row: ground truth as thin green boxes, predictions scoring >= ``threshold``
    coloured and labelled; small images are enlarged (nearest neighbour) so the labels stay readable."""
    from PIL import Image

    tiles = []
    for rec, det in samples:
        scale = 2 if max(rec.width, rec.height) < 320 else 1
        truth = [{"label": labels[lb], "box": b} for b, lb in zip(rec.boxes, rec.labels)]
        img = draw_detections(rec.path, truth, color=(0, 200, 0), width=1, show_labels=False, scale=scale)
        found = to_items(det, labels, threshold) if det else []
        for d in found:
            d["box"] = [v * scale for v in d["box"]]
        tiles.append(draw_detections(img, found, labels=labels, width=2))
    w, h = max(t.width for t in tiles), max(t.height for t in tiles)
    cols = min(3, len(tiles))
    sheet = Image.new("RGB", (w * cols, h * math.ceil(len(tiles) / cols)), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * w, (i // cols) * h))
    save_image(sheet, path)


def plot_per_class_ap(result: dict[str, Any], path: Path) -> None:
    """AP@[.5:.95] as bars and AP@.5 as dots per class (a class without objects shows 0)."""
    plt = pyplot()
    rows = result["per_class_ap"]
    names = [r["label"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(rows) + 1), 3.2))
    ax.bar(names, [r["ap"] or 0 for r in rows], color="#4c72b0", label="AP@[.5:.95]")
    ax.plot(names, [r["ap_50"] or 0 for r in rows], "o", color="#dd8452", label="AP@.5")
    ax.set_ylim(0, 1)
    ax.set_title(f"per-class AP (mAP {result['map']:.3f}, mAP@.5 {result['map_50']:.3f})")
    ax.legend(loc="upper right", fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
