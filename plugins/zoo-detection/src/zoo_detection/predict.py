"""Inference for object detectors: boxes, labels and scores per image, and images with them drawn.

The detector's head resizes and normalises (its own transform), so images go in as they are: paths,
PIL images, or CHW tensors (uint8, or float in [0, 1]). Boxes come back in the input's pixels, xyxy.
Files are decoded by the SDK's ``read_image_tensor``, so a truncated or hostile image is one line
naming the file, never a crash half-way through a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from modelzoo.sdk import IMAGE_EXTENSIONS, TaskModel, ZooError, atomic_write, read_image_tensor

from .heads import DetectionHead

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
HEAD_HINT = "pick a detection head (zoo list --kind head --task object-detection)"


def check_detector(model: TaskModel) -> DetectionHead:
    """The model's head, checked to implement the declared detection contract (one line if not)."""
    head = model.head
    if not isinstance(head, DetectionHead):
        name = model.config.get("head", {}).get("name", type(head).__name__)
        raise ZooError(
            f"head {name!r} is not a detection head (a zoo_detection.heads.DetectionHead with"
            f" detect(backbone, images, targets)); {HEAD_HINT}"
        )
    return head


def as_float_image(item: Any) -> torch.Tensor:
    """A float CHW RGB tensor in [0, 1] from a path, a PIL image or a tensor (grey and RGBA become RGB)."""
    img = read_image_tensor(item)
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


def check_options(score_threshold: Any, max_detections: Any) -> None:
    """One line for an option that would silently give nothing or everything (a typo, a percentage)."""
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)):
        raise ZooError(f"score_threshold must be a number between 0 and 1, got {score_threshold!r}")
    if not 0.0 <= score_threshold <= 1.0:
        raise ZooError(f"score_threshold {score_threshold} is outside [0, 1]; scores are probabilities")
    if max_detections is not None and (
        isinstance(max_detections, bool) or not isinstance(max_detections, int) or max_detections < 1
    ):
        raise ZooError(f"max_detections must be a whole number >= 1, got {max_detections!r}")


@torch.no_grad()
def predict_detections(
    model: TaskModel,
    inputs: Any,
    score_threshold: float = 0.5,
    max_detections: int | None = None,
    batch_size: int = 8,
) -> list[list[dict[str, Any]]]:
    """Per input, the detections scoring at least ``score_threshold``, best first (at most
    ``max_detections``): ``{"label", "score", "box": [x0, y0, x1, y1]}`` in the input's pixels."""
    check_options(score_threshold, max_detections)
    head = check_detector(model)
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    device = next(model.parameters()).device
    model.eval()
    labels = model.labels
    results: list[list[dict[str, Any]]] = []
    for start in range(0, len(items), batch_size):
        images = [as_float_image(x).to(device) for x in items[start : start + batch_size]]
        _, dets = head.detect(model.backbone, images)
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
    The file is written atomically, in the format its suffix names.
    """
    from torchvision.transforms.v2.functional import to_pil_image
    from torchvision.utils import draw_bounding_boxes

    img = as_float_image(image)
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
        save_image(pil, out)
    return pil


def save_image(pil, path: str | Path) -> Path:
    """Write a PIL image atomically (never a half-written file), in the format of the file's suffix."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    return atomic_write(path, lambda p: pil.save(p, format=fmt))


def save_annotated(inputs: list[Any], results: list[list[dict[str, Any]]], out: str | Path, labels=None) -> list[Path]:
    """Draw each input's detections: one input and an image file name -> that file; else ``out/<name>.png``.

    Inputs whose names repeat (``a/x.jpg`` and ``b/x.jpg``) get ``-2``, ``-3``... so none overwrites another.
    """
    out = Path(out)
    if len(inputs) == 1 and out.suffix.lower() in IMAGE_EXTENSIONS:
        targets = [out]
    else:
        if out.suffix.lower() in IMAGE_EXTENSIONS:
            raise ZooError(f"--out {out}: give a folder when predicting {len(inputs)} images")
        if out.exists() and not out.is_dir():
            raise ZooError(f"--out {out}: exists and is not a folder; give a folder for the drawn images")
        out.mkdir(parents=True, exist_ok=True)
        targets, seen = [], {}
        for i, item in enumerate(inputs):
            stem = Path(str(item)).stem if isinstance(item, (str, Path)) else f"image{i}"
            seen[stem] = seen.get(stem, 0) + 1
            targets.append(out / (f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png"))
    for item, dets, path in zip(inputs, results, targets):
        draw_detections(item, dets, out=path, labels=labels)
    return targets
