"""Inference on images with a TaskModel's own preprocessing."""

from __future__ import annotations

import torch

from modelzoo.sdk import read_image_tensor

from .classify import top_k as best_k


@torch.no_grad()
def predict_images(model, inputs, top_k: int = 5, batch_size: int = 32) -> list[list[tuple[str, float]]]:
    """Top-k ``(label, probability)`` per input, preprocessed as in evaluation (resize + crop + normalise)."""
    from .data import build_transform

    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    transform = build_transform(model.preprocess, train=False, augment="none", from_files=True)
    device = next(model.parameters()).device
    model.eval()
    results = []
    for start in range(0, len(items), batch_size):
        batch = torch.stack([transform(read_image_tensor(x)) for x in items[start : start + batch_size]]).to(device)
        probs = model(batch).float().softmax(-1).cpu()
        results += best_k(probs, model.labels, top_k)
    return results


# -- zoo predict RUN DIR/: files decoded and preprocessed in DataLoader workers ----------------------
class FileInput:
    """One image file as the model's evaluation preprocessing makes it (built once per process)."""

    def __init__(self) -> None:
        self.transform = None

    def __call__(self, model, path: str) -> torch.Tensor:
        if self.transform is None:
            from .data import build_transform

            self.transform = build_transform(model.preprocess, train=False, augment="none", from_files=True)
        return self.transform(read_image_tensor(path))


@torch.no_grad()
def predict_tensor_batch(model, batch: torch.Tensor, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-k ``(label, probability)`` per row of an already preprocessed batch."""
    device = next(model.parameters()).device
    probs = model(batch.to(device)).float().softmax(-1).cpu()
    return best_k(probs, model.labels, top_k)
