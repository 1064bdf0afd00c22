"""Inference on images with a TaskModel's own preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import ZooError


def _load_image(item: Any) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2.functional import pil_to_tensor

    if isinstance(item, torch.Tensor):
        return item if item.ndim == 3 else item.unsqueeze(0)
    if isinstance(item, Image.Image):
        return pil_to_tensor(item.convert("RGB"))
    path = Path(item)
    if not path.is_file():
        raise ZooError(f"no such image: {path}")
    try:
        with Image.open(path) as im:
            return pil_to_tensor(im.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        raise ZooError(f"cannot read image {path}; is it a JPEG/PNG?") from None


@torch.no_grad()
def predict_images(model, inputs, top_k: int = 5, batch_size: int = 32) -> list[list[tuple[str, float]]]:
    """Top-k ``(label, probability)`` per input, preprocessed as in evaluation (resize + crop + normalise)."""
    from .datasets import build_transform

    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    transform = build_transform(model.preprocess, train=False, augment="none", from_files=True)
    device = next(model.parameters()).device
    model.eval()
    labels = model.labels
    k = max(1, min(top_k, len(labels)))
    results = []
    for start in range(0, len(items), batch_size):
        batch = torch.stack([transform(_load_image(x)) for x in items[start : start + batch_size]]).to(device)
        probs = model(batch).float().softmax(-1).cpu()
        values, indices = probs.topk(k, dim=-1)
        results += [
            [(labels[i], round(v, 6)) for v, i in zip(vs.tolist(), ix.tolist())] for vs, ix in zip(values, indices)
        ]
    return results
