"""Per-pixel metrics from a confusion matrix: mIoU, pixel accuracy, per-class IoU.

Pixels marked 255 (ignore) count nowhere. A class with no pixel in the ground truth and none
predicted has no IoU (None, left out of the mean), never 0 or 1.
"""

from __future__ import annotations

from typing import Any

import torch

IGNORE = 255


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts, rows = ground truth, columns = prediction."""
    keep = target != IGNORE
    t = target[keep].long()
    p = pred[keep].long()
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).view(num_classes, num_classes)


def scores(conf: torch.Tensor, labels: list[str], per_class: bool = False) -> dict[str, Any]:
    conf = conf.double()
    tp = conf.diag()
    gt = conf.sum(1)
    union = gt + conf.sum(0) - tp
    iou = [float(tp[k] / union[k]) if union[k] > 0 else None for k in range(len(labels))]
    present = [v for v in iou if v is not None]
    total = float(conf.sum())
    out: dict[str, Any] = {
        "miou": sum(present) / len(present) if present else 0.0,
        "pixel_accuracy": float(tp.sum()) / total if total else 0.0,
    }
    if per_class:
        out["per_class_iou"] = [
            {"label": name, "iou": v, "pixels": int(gt[k])} for k, (name, v) in enumerate(zip(labels, iou))
        ]
    return out
