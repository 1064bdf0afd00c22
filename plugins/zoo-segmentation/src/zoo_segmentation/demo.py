"""A real-data segmentation demo set: Fashion-MNIST items pasted onto canvases, with exact masks.

The scenes are COMPOSED the way ``zoo_detection.demo`` composes its detection scenes: a ``canvas`` px
RGB image with a smooth dark random background and 1..``max_objects`` real Fashion-MNIST items
(Zalando, MIT) pasted at random scales, places and tints. Each item's mask is its own silhouette:
the resized item's pixels brighter than ``threshold`` (so masks are exact, holes and all). Items are
placed where their boxes overlap earlier ones little (IoU < ``max_overlap``); where they do touch, the
later item covers the earlier one in image and mask alike. Only the classes in ``classes`` are used
(distinct silhouettes by default); class 0 is background. Train scenes use items from Fashion-MNIST's
train split, val scenes items from its test split. Deterministic from the seed and the options,
written once (PNG images + PNG masks + labels.txt, the plugin's folder layout) under the modelzoo cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .plugin import DEMO_CLASSES

VERSION = 2


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth dark colour gradient with mild noise (so the task is not a threshold)."""
    corners = rng.uniform(0, 70, size=(2, 2, 3))
    t = np.linspace(0, 1, size)[:, None, None]
    s = np.linspace(0, 1, size)[None, :, None]
    top = corners[0, 0] * (1 - s) + corners[0, 1] * s
    bottom = corners[1, 0] * (1 - s) + corners[1, 1] * s
    return np.clip(top * (1 - t) + bottom * t + rng.normal(0, 6, size=(size, size, 3)), 0, 255)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compose(
    items: np.ndarray,
    labels: np.ndarray,
    classes: list[int],
    count: int,
    seed: int,
    canvas: int = 96,
    max_objects: int = 3,
    min_scale: float = 1.2,
    max_scale: float = 2.2,
    threshold: int = 24,
    max_overlap: float = 0.15,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` scenes as (uint8 HxWx3 image, uint8 HxW mask: 0 background, k+1 = ``classes[k]``)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(np.isin(labels, classes))
    to_class = {c: k + 1 for k, c in enumerate(classes)}
    scenes = []
    for _ in range(count):
        img = _background(rng, canvas)
        mask = np.zeros((canvas, canvas), dtype=np.uint8)
        boxes: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            idx = int(rng.choice(pool))
            side = min(canvas, round(28 * rng.uniform(min_scale, max_scale)))
            item = np.asarray(Image.fromarray(items[idx]).resize((side, side), Image.BILINEAR), dtype=np.float32)
            ys, xs = np.nonzero(item > threshold)
            if not len(ys):
                continue
            for _attempt in range(20):  # a place where it overlaps the others little (as zoo_detection's scenes)
                x0 = int(rng.integers(0, canvas - side + 1))
                y0 = int(rng.integers(0, canvas - side + 1))
                box = (x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1)
                if all(_iou(box, other) < max_overlap for other in boxes):
                    break
            else:
                continue  # no free place for this one
            boxes.append(box)
            tint = rng.uniform(0.55, 1.0, size=3)
            alpha = (item / 255.0)[..., None]
            patch = img[y0 : y0 + side, x0 : x0 + side]
            img[y0 : y0 + side, x0 : x0 + side] = patch * (1 - alpha) + (item[..., None] * tint) * alpha
            region = mask[y0 : y0 + side, x0 : x0 + side]
            region[item > threshold] = to_class[int(labels[idx])]
        scenes.append((np.clip(img, 0, 255).astype(np.uint8), mask))
    return scenes


def fashion_mnist_segments(
    seed: int = 0,
    num_train: int = 600,
    num_val: int = 200,
    canvas: int = 96,
    max_objects: int = 3,
    min_scale: float = 1.2,
    max_scale: float = 2.2,
    classes: list[str] | None = None,
    holdout: bool = False,
    root: str | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Build (once) and describe the demo set; returns where the task finds its folder layout.

    ``holdout``: for tuning a recipe without looking at the reported split, the val scenes are made of
    Fashion-MNIST *train* items 50,000-59,999 and the train scenes of train items 0-49,999 (disjoint)."""
    from PIL import Image
    from zoo_classification.data import FASHION_MNIST_LABELS, fashion_mnist_arrays

    from modelzoo.sdk import ZooError, atomic_write_text, cache_dir

    names = list(classes or DEMO_CLASSES)
    unknown = [n for n in names if n not in FASHION_MNIST_LABELS]
    if unknown:
        raise ZooError(f"data.options.classes: {unknown} are not Fashion-MNIST classes ({FASHION_MNIST_LABELS})")
    params = {
        "v": VERSION,
        "seed": seed,
        "num_train": num_train,
        "num_val": num_val,
        "canvas": canvas,
        "max_objects": max_objects,
        "scale": [min_scale, max_scale],
        "classes": names,
        **({"holdout": True} if holdout else {}),
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    base = (Path(root) if root else cache_dir() / "datasets") / f"fashion-mnist-segments-{key}"
    labels = ["background", *names]
    if not (base / "labels.txt").is_file():
        ids = [FASHION_MNIST_LABELS.index(n) for n in names]
        opts = dict(canvas=canvas, max_objects=max_objects, min_scale=min_scale, max_scale=max_scale)
        for split, count, offset in (("train", num_train, 0), ("val", num_val, 1)):
            items, item_labels = fashion_mnist_arrays("train" if split == "train" or holdout else "test")
            if holdout:
                items, item_labels = (
                    (items[:50000], item_labels[:50000]) if split == "train" else (items[50000:], item_labels[50000:])
                )
            (base / split / "images").mkdir(parents=True, exist_ok=True)
            (base / split / "masks").mkdir(parents=True, exist_ok=True)
            for i, (img, mask) in enumerate(compose(items, item_labels, ids, count, seed * 1000 + offset, **opts)):
                Image.fromarray(img).save(base / split / "images" / f"{split}_{i:05d}.png", compress_level=1)
                Image.fromarray(mask, mode="L").save(base / split / "masks" / f"{split}_{i:05d}.png")
        atomic_write_text(base / "labels.txt", "\n".join(labels) + "\n")  # last: marks the set complete
    return {
        "format": "folder",
        "path": str(base),
        "labels": labels,
        "info": {
            "source": "composed from Fashion-MNIST (Debian dataset-fashion-mnist)",
            "license": "mit",
            "hub_id": "zalando-datasets/fashion_mnist",
            "composed": params,
        },
    }
