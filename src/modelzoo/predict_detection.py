"""Inference for object detectors: boxes, labels and scores per image, and images with them drawn.

The detector's head resizes and normalises (its own transform), so images go in as they are: paths,
PIL images, or CHW tensors (uint8, or float in [0, 1]). Boxes come back in the input's pixels, xyxy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import ZooError

PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _as_float_image(item: Any) -> torch.Tensor:
    from .predict import _load_image

    img = _load_image(item)
    if img.ndim == 2:
        img = img.unsqueeze(0)
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    if img.shape[0] == 4:
        img = img[:3]
    return img.float() / 255 if not img.is_floating_point() else img.float()


def to_items(det: dict[str, torch.Tensor], labels: list[str], score_threshold: float = 0.0) -> list[dict[str, Any]]:
    """A detector's output for one image (labels 0-based) as ``[{label, score, box}]``, best first."""
    items = []
    for box, score, label in zip(det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist()):
        if score >= score_threshold:
            items.append(
                {"label": labels[int(label)], "score": round(float(score), 4), "box": [round(v, 1) for v in box]}
            )
    return sorted(items, key=lambda d: -d["score"])


@torch.no_grad()
def predict_detections(
    model,
    inputs,
    score_threshold: float = 0.5,
    batch_size: int = 8,
    max_detections: int | None = None,
    **_: Any,
) -> list[list[dict[str, Any]]]:
    """Per input, the detections scoring at least ``score_threshold``: ``{"label", "score", "box": [x0, y0, x1, y1]}``."""
    if not callable(getattr(model.head, "detect", None)):
        raise ZooError(f"{model.config.get('head', {}).get('name')} is not a detection head (no detect method)")
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    device = next(model.parameters()).device
    model.eval()
    labels = model.labels
    results: list[list[dict[str, Any]]] = []
    for start in range(0, len(items), batch_size):
        images = [_as_float_image(x).to(device) for x in items[start : start + batch_size]]
        _, dets = model.head.detect(model.backbone, images)
        for d in dets:
            d = {
                "boxes": d["boxes"].float().cpu(),
                "scores": d["scores"].float().cpu(),
                "labels": d["labels"].cpu() - 1,
            }
            found = to_items(d, labels, score_threshold)
            results.append(found[:max_detections] if max_detections else found)
    return results


def _color(label: str, labels: list[str] | None) -> tuple[int, int, int]:
    index = labels.index(label) if labels and label in labels else sum(map(ord, label))
    return PALETTE[index % len(PALETTE)]


def draw_detections(
    image: Any,
    detections: list[dict[str, Any]],
    out: str | Path | None = None,
    labels: list[str] | None = None,
    color: tuple[int, int, int] | None = None,
    width: int = 2,
    show_labels: bool = True,
    scale: int = 1,
):
    """``image`` (path, PIL image or CHW tensor) with boxes, labels and scores drawn; saved to ``out`` if given.

    Returns a PIL image. Colours are per label (``labels`` fixes their order), or ``color`` for all;
    ``scale`` enlarges small images first (nearest neighbour) so the label text stays readable.
    """
    from torchvision.transforms.v2.functional import to_pil_image
    from torchvision.utils import draw_bounding_boxes

    img = _as_float_image(image)
    if scale > 1:
        img = torch.nn.functional.interpolate(img[None], scale_factor=scale, mode="nearest")[0]
    img = (img * 255).round().clamp(0, 255).to(torch.uint8)
    if detections:
        boxes = torch.tensor([d["box"] for d in detections], dtype=torch.float32) * scale
        text = [f"{d['label']} {d['score']:.2f}" if "score" in d else d["label"] for d in detections]
        colors = [color or _color(d["label"], labels) for d in detections]
        img = draw_bounding_boxes(img, boxes, labels=text if show_labels else None, colors=colors, width=width)
    pil = to_pil_image(img)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        pil.save(out)
    return pil


def save_annotated(inputs: list[Any], results: list[list[dict[str, Any]]], out: str | Path, labels=None) -> list[Path]:
    """Draw each input's detections: one input and an image file name -> that file; else ``out/<name>.png``."""
    out = Path(out)
    if len(inputs) == 1 and out.suffix.lower() in IMAGE_SUFFIXES:
        targets = [out]
    else:
        if out.suffix.lower() in IMAGE_SUFFIXES:
            raise ZooError(f"--out {out}: give a directory when predicting {len(inputs)} images")
        out.mkdir(parents=True, exist_ok=True)
        targets = [
            out / f"{Path(str(x)).stem if not hasattr(x, 'shape') else f'image{i}'}.png" for i, x in enumerate(inputs)
        ]
    for item, dets, path in zip(inputs, results, targets):
        draw_detections(item, dets, out=path, labels=labels)
    return targets
