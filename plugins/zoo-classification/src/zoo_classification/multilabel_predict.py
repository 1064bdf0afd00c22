"""Multi-label inference on images with a TaskModel's own preprocessing and per-label thresholds."""

from __future__ import annotations

import torch

from modelzoo.sdk import read_image_tensor


@torch.no_grad()
def predict_labels(model, inputs, thresholds: list[float], batch_size: int = 32) -> list[list[tuple[str, float]]]:
    """Every ``(label, probability)`` whose sigmoid score reaches its threshold, per input, highest first;
    preprocessed as in evaluation (resize + crop + normalise)."""
    from .data import build_transform

    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    transform = build_transform(model.preprocess, train=False, augment="none", from_files=True)
    device = next(model.parameters()).device
    cuts = torch.tensor(thresholds, dtype=torch.float32)
    labels = model.labels
    model.eval()
    results = []
    for start in range(0, len(items), batch_size):
        batch = torch.stack([transform(read_image_tensor(x)) for x in items[start : start + batch_size]]).to(device)
        probs = model(batch).float().sigmoid().cpu()
        for row in probs:
            keep = torch.nonzero(row >= cuts).flatten().tolist()
            found = sorted(((labels[i], round(float(row[i]), 6)) for i in keep), key=lambda p: -p[1])
            results.append(found)
    return results
