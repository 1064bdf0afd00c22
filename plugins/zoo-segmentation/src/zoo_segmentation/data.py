"""Semantic-segmentation data: image folders with PNG masks of class indices, or COCO polygons / RLE.

Folder layout (``format = "folder"``, the default)::

    DIR/labels.txt              one class name per line: line i names class index i (or data.labels)
    DIR/train/images/a.jpg      any image format PIL reads
    DIR/train/masks/a.png       same stem, single-channel PNG (mode L or P): class index per pixel, 255 = ignore
    DIR/val/images/...  DIR/val/masks/...     (or no val/: data.val_split holds out a fraction of train)

``DIR/images`` + ``DIR/masks`` (no train/ folder) is one split, to be divided with ``data.val_split``.
COCO (``format = "coco"``): ``train_file`` / ``val_file`` annotation JSONs, images in ``images_dir``
(default: next to the JSON); every annotation's polygons or RLE is painted with its category (classes
are ``background`` then the categories in id order; larger objects first, so small ones stay on top;
``iscrowd`` regions are 255 = ignore).

Everything is checked before training starts and each problem is one line naming the file: an
unreadable image or mask, an image without a mask, a mask of another size than its image, a class
index >= the number of classes. The data are decoded once, resized to ``image_size`` (bilinear for
images, nearest for masks) and kept in memory as uint8.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.sdk import IMAGE_EXTENSIONS, BadImage, ZooError, is_image_file, read_image, read_mask

IGNORE = 255
FORMATS = ("folder", "coco")


@dataclass
class Split:
    """One split in memory: uint8 images (N, 3, S, S), uint8 masks (N, S, S) and the files they came from."""

    images: torch.Tensor
    masks: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices: list[int]) -> Split:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return Split(self.images[idx], self.masks[idx], [self.names[i] for i in indices])


@dataclass
class SegmentationData:
    name: str
    labels: list[str]
    train: Split
    val: Split
    info: dict[str, Any] = field(default_factory=dict)


class SegmentationDataset(Dataset):
    """(normalised float image 3xSxS, long mask SxS, index) triples; ``flip`` mirrors both at random."""

    def __init__(self, split: Split, mean: list[float], std: list[float], flip: bool = False) -> None:
        self.split = split
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.flip = flip

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        img = (self.split.images[index].float() / 255.0 - self.mean) / self.std
        mask = self.split.masks[index].long()
        if self.flip and torch.rand(()) < 0.5:
            img, mask = img.flip(-1), mask.flip(-1)
        return img, mask, index


def resize_pair(image, mask: torch.Tensor | None, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A PIL RGB image and an (H, W) mask resized to size x size: uint8 (3, S, S) and uint8 (S, S)."""
    from PIL import Image

    img = np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)
    out_img = torch.from_numpy(img.copy()).permute(2, 0, 1).contiguous()
    if mask is None:
        return out_img, None
    m = Image.fromarray(mask.numpy().astype(np.uint8), mode="L").resize((size, size), Image.NEAREST)
    return out_img, torch.from_numpy(np.asarray(m, dtype=np.uint8).copy())


def read_labels(root: Path, given: list[str] | None) -> list[str]:
    if given:
        return list(given)
    path = root / "labels.txt"
    if not path.is_file():
        raise ZooError(f"{root}: no labels.txt (one class name per line, line i = class index i); or set data.labels")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise ZooError(f"{path}: no class names")
    if len(set(names)) != len(names):
        raise ZooError(f"{path}: class names repeat; give each class once")
    return names


def _pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    """(image, mask) file pairs by stem; an image without a mask is an error naming it."""
    if not images_dir.is_dir():
        raise ZooError(f"{images_dir}: no such folder (expected images/ and masks/ side by side)")
    images = sorted(p for p in images_dir.iterdir() if p.is_file() and is_image_file(p))
    if not images:
        raise ZooError(f"{images_dir}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    pairs = []
    for img in images:
        mask = masks_dir / f"{img.stem}.png"
        if not mask.is_file():
            raise ZooError(f"{img}: no mask (expected {mask})")
        pairs.append((img, mask))
    return pairs


def load_folder_split(images_dir: Path, masks_dir: Path, num_classes: int, size: int, track=None) -> Split:
    pairs = _pairs(images_dir, masks_dir)
    imgs, masks = [], []
    for img_path, mask_path in track(pairs, desc=f"reading {images_dir}", unit="image") if track else pairs:
        try:
            image = read_image(img_path)
            mask = read_mask(mask_path, num_classes=num_classes, ignore_index=IGNORE, size=image.size)
        except BadImage as exc:
            raise ZooError(str(exc)) from None
        a, b = resize_pair(image, mask, size)
        imgs.append(a)
        masks.append(b)
    return Split(torch.stack(imgs), torch.stack(masks), [str(p) for p, _ in pairs])


def load_coco_split(json_path: Path, images_dir: Path | None, size: int, track=None) -> tuple[Split, list[str]]:
    """A COCO JSON's images with their annotations painted into masks; labels: background + categories."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    if not json_path.is_file():
        raise ZooError(f"{json_path}: no such annotation file")
    try:
        raw = json.loads(json_path.read_text(encoding="utf-8"))
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = raw
            coco.createIndex()
    except (ValueError, KeyError, TypeError) as exc:
        raise ZooError(f"{json_path}: not a COCO annotation file ({type(exc).__name__}: {exc})") from None
    cats = sorted(coco.getCatIds())
    labels = ["background", *(str(coco.cats[c]["name"]) for c in cats)]
    index = {c: i + 1 for i, c in enumerate(cats)}
    images_dir = images_dir or json_path.parent
    imgs, masks, names = [], [], []
    entries = [coco.imgs[i] for i in sorted(coco.imgs)]
    for entry in track(entries, desc=f"reading {json_path.name}", unit="image") if track else entries:
        path = images_dir / str(entry.get("file_name", ""))
        try:
            image = read_image(path)
        except BadImage as exc:
            raise ZooError(f"{json_path}: {exc}") from None
        w, h = image.size
        mask = np.zeros((h, w), dtype=np.uint8)
        anns = sorted(coco.imgToAnns.get(entry["id"], []), key=lambda a: -float(a.get("area") or 0))
        for ann in anns:
            if ann.get("category_id") not in index:
                raise ZooError(
                    f"{json_path}: annotation {ann.get('id')} names unknown category {ann.get('category_id')}"
                )
            seg = ann.get("segmentation")
            try:
                if isinstance(seg, list):
                    rles = mask_utils.frPyObjects(seg, h, w)
                    m = mask_utils.decode(mask_utils.merge(rles))
                elif isinstance(seg, dict) and "counts" in seg:
                    rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
                    if list(rle["size"]) != [h, w]:
                        raise ValueError(f"RLE size {rle['size']} is not the image's {h}x{w}")
                    m = mask_utils.decode(rle)
                else:
                    raise ValueError("no polygons or RLE in 'segmentation'")
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                raise ZooError(
                    f"{json_path}: annotation {ann.get('id')} ({path.name}): bad segmentation ({exc})"
                ) from None
            mask[m.astype(bool)] = IGNORE if ann.get("iscrowd") else index[ann["category_id"]]
        a, b = resize_pair(image, torch.from_numpy(mask), size)
        imgs.append(a)
        masks.append(b)
        names.append(str(path))
    if not names:
        raise ZooError(f"{json_path}: no images")
    return Split(torch.stack(imgs), torch.stack(masks), names), labels


def hold_out(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    if not 0 < fraction < 1:
        raise ZooError("no validation data: give a val/ folder (or data.val_file), or data.val_split between 0 and 1")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=gen).tolist()
    n_val = max(1, round(len(split) * fraction))
    return split.subset(sorted(order[n_val:])), split.subset(sorted(order[:n_val]))


def class_pixels(masks: torch.Tensor, num_classes: int) -> list[int]:
    flat = masks.flatten().long()
    flat = flat[flat != IGNORE]
    return torch.bincount(flat, minlength=num_classes)[:num_classes].tolist()
