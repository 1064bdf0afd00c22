"""A real-data detection demo set: Fashion-MNIST items pasted onto canvases, with exact boxes.

No general detection dataset ships in a package that installs offline, so this one is COMPOSED: each
scene is a ``canvas`` px RGB image with a smooth dark random background and 1..``max_objects`` real
Fashion-MNIST items (Zalando, MIT) pasted at random scales, places and tints, never overlapping much.
A box is the tight bounding box of the pasted item's visible pixels, so boxes are exact. Train scenes
use items from Fashion-MNIST's train split, val scenes items from its test split. Everything is
deterministic from the seed and the options, and written once (COCO JSON + PNGs) under the modelzoo
cache, then reused; the data goes through the same COCO loader and validation as user data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 1


def _items(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST items a split's scenes are made of: train items for train, test items for val."""
    from zoo_classification.data import fashion_mnist_arrays

    return fashion_mnist_arrays("train" if split == "train" else "test")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth dark colour gradient with mild noise (so the task is not a threshold)."""
    corners = rng.uniform(0, 70, size=(2, 2, 3))
    t = np.linspace(0, 1, size)[:, None, None]
    s = np.linspace(0, 1, size)[None, :, None]
    top = corners[0, 0] * (1 - s) + corners[0, 1] * s
    bottom = corners[1, 0] * (1 - s) + corners[1, 1] * s
    bg = top * (1 - t) + bottom * t
    return np.clip(bg + rng.normal(0, 6, size=(size, size, 3)), 0, 255)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compose(
    items: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    canvas: int = 160,
    min_objects: int = 1,
    max_objects: int = 4,
    min_scale: float = 1.2,
    max_scale: float = 2.6,
    classes: list[int] | None = None,
) -> list[tuple[np.ndarray, list[tuple[list[float], int]]]]:
    """``count`` scenes as (uint8 HxWx3 image, [(box xyxy, label index)]), deterministic from ``seed``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pool = np.arange(len(items)) if classes is None else np.flatnonzero(np.isin(labels, classes))
    scenes = []
    for _ in range(count):
        img = _background(rng, canvas)
        objects: list[tuple[list[float], int]] = []
        for _ in range(int(rng.integers(min_objects, max_objects + 1))):
            idx = int(rng.choice(pool))
            side = round(28 * rng.uniform(min_scale, max_scale))
            item = np.asarray(Image.fromarray(items[idx]).resize((side, side), Image.BILINEAR), dtype=np.float32)
            mask = item > 24
            if not mask.any():
                continue
            ys, xs = np.nonzero(mask)
            for _attempt in range(20):
                x0 = int(rng.integers(0, canvas - side + 1))
                y0 = int(rng.integers(0, canvas - side + 1))
                box = [float(x0 + xs.min()), float(y0 + ys.min()), float(x0 + xs.max() + 1), float(y0 + ys.max() + 1)]
                if all(_iou(box, other) < 0.15 for other, _ in objects):
                    break
            else:
                continue  # no free place for this one
            tint = rng.uniform(0.55, 1.0, size=3)
            alpha = (item / 255.0)[..., None]
            patch = img[y0 : y0 + side, x0 : x0 + side]
            img[y0 : y0 + side, x0 : x0 + side] = patch * (1 - alpha) + (item[..., None] * tint) * alpha
            objects.append((box, int(labels[idx])))
        scenes.append((np.clip(img, 0, 255).astype(np.uint8), objects))
    return scenes


def write_coco(scenes, names: list[str], images_dir: Path, json_path: Path, prefix: str) -> None:
    """Write scenes as PNG files + one COCO JSON (category ids 1..K in ``names`` order)."""
    from PIL import Image

    images, annotations = [], []
    for i, (img, objects) in enumerate(scenes):
        file_name = f"{prefix}_{i:05d}.png"
        Image.fromarray(img).save(images_dir / file_name, optimize=False, compress_level=1)
        images.append({"id": i + 1, "file_name": file_name, "width": img.shape[1], "height": img.shape[0]})
        for box, label in objects:
            x0, y0, x1, y1 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": label + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    data = {
        "info": {"description": "Fashion-MNIST items pasted onto synthetic canvases (modelzoo demo)"},
        "licenses": [{"id": 1, "name": "MIT (Fashion-MNIST)"}],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)],
    }
    from modelzoo.sdk import atomic_write_text

    atomic_write_text(json_path, json.dumps(data))


def fashion_mnist_scenes(
    seed: int = 0,
    num_train: int = 400,
    num_val: int = 100,
    canvas: int = 160,
    min_objects: int = 1,
    max_objects: int = 4,
    min_scale: float = 1.2,
    max_scale: float = 2.6,
    root: str | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Build (once) and describe the demo set; returns where the object-detection task finds its COCO files."""
    from zoo_classification.data import FASHION_MNIST_LABELS, fashion_mnist_dir

    params = {
        "v": VERSION,
        "seed": seed,
        "num_train": num_train,
        "num_val": num_val,
        "canvas": canvas,
        "objects": [min_objects, max_objects],
        "scale": [min_scale, max_scale],
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    if root is None:
        from modelzoo.sdk import cache_dir

        base = cache_dir() / "datasets" / f"fashion-mnist-scenes-{key}"
    else:
        base = Path(root) / f"fashion-mnist-scenes-{key}"
    names = list(FASHION_MNIST_LABELS)
    done = base / "val.json"
    if not done.is_file():
        (base / "images").mkdir(parents=True, exist_ok=True)
        opts = dict(
            canvas=canvas, min_objects=min_objects, max_objects=max_objects, min_scale=min_scale, max_scale=max_scale
        )
        for split, count, offset, prefix in (("train", num_train, 0, "train"), ("val", num_val, 1, "val")):
            items, labels = _items(split)
            scenes = compose(items, labels, count, seed * 1000 + offset, **opts)
            write_coco(scenes, names, base / "images", base / f"{prefix}.json", prefix)
    return {
        "format": "coco",
        "train_file": str(base / "train.json"),
        "val_file": str(base / "val.json"),
        "images_dir": str(base / "images"),
        "labels": names,
        "info": {
            "source": f"composed from Fashion-MNIST at {fashion_mnist_dir()} into {base}",
            "license": "mit",
            "hub_id": "zalando-datasets/fashion_mnist",
            "composed": params,
        },
    }
