"""Multi-label image data: a labels file (CSV or JSONL) naming each image's label list, and a demo set.

Formats (relative image paths resolve against the labels file's folder, never the working directory):

* CSV with a header row: an ``image`` (or ``path``) column and a ``labels`` column whose labels are
  separated by ``data.label_separator`` (default ``|``)::

      image,labels
      photos/001.jpg,cat|dog

* JSONL, one object per line: ``{"image": "photos/001.jpg", "labels": ["cat", "dog"]}``.
* A folder holding ``train.csv`` / ``train.jsonl`` (and ``val.csv`` / ``val.jsonl``), or one
  ``labels.csv`` / ``labels.jsonl`` (then ``data.val_split`` holds part of it out).

Everything is checked before training: an unreadable labels file, a missing or unreadable image, an
empty label list and a label the model does not know each stop the run with one line naming the file
and the line. The demo set (:func:`fashion_mnist_multilabel`) composes scenes of several real
Fashion-MNIST items; its labels are the set of classes present.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.sdk import BadImage, ZooError, check_image, did_you_mean, read_image

LABEL_FILES = ("labels.csv", "labels.jsonl")
MAX_LABEL_FILE = 512 * 1024 * 1024


@dataclass
class MultiSplit:
    """One split: multi-hot ``targets`` (N, C) and either in-memory uint8 images (N,H,W,3) or file paths."""

    targets: torch.Tensor
    images: torch.Tensor | None = None
    paths: list[str] | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: list[int]) -> MultiSplit:
        return MultiSplit(
            targets=self.targets[indices],
            images=self.images[indices] if self.images is not None else None,
            paths=[self.paths[i] for i in indices] if self.paths is not None else None,
        )


@dataclass
class MultiLabelData:
    name: str
    labels: list[str]
    train: MultiSplit
    val: MultiSplit
    info: dict[str, Any] = field(default_factory=dict)


class MultiLabelDataset(Dataset):
    """(image tensor, multi-hot float targets) pairs with the given transform applied."""

    def __init__(self, split: MultiSplit, transform) -> None:
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        if self.split.images is not None:
            img = self.split.images[index]
            img = img.unsqueeze(0) if img.ndim == 2 else img.permute(2, 0, 1)
        else:
            from torchvision.transforms.v2.functional import pil_to_tensor

            img = pil_to_tensor(read_image(self.split.paths[index]))
        return self.transform(img), self.split.targets[index]


# -- labels files -----------------------------------------------------------------------------
@dataclass
class Row:
    image: Path
    labels: list[str]
    where: str  # "file:line", for messages


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_LABEL_FILE:
            raise ZooError(f"{path}: {size} bytes is too large for a labels file (at most {MAX_LABEL_FILE})")
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ZooError(f"{path}: not UTF-8 text (byte {exc.start}); save the labels file as UTF-8") from None
    except OSError as exc:
        raise ZooError(f"{path}: cannot read the labels file ({exc.strerror or type(exc).__name__})") from None


def _csv_rows(path: Path, separator: str) -> list[tuple[str, Any, str]]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise ZooError(f"{path}:1: not a valid CSV header ({exc})") from None
    image_col = next((header.index(n) for n in ("image", "path") if n in header), None)
    if image_col is None or "labels" not in header:
        raise ZooError(f"{path}:1: the header must name an 'image' (or 'path') and a 'labels' column, got {header}")
    labels_col = header.index("labels")
    rows = []
    try:
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if not any(cell.strip() for cell in record):
                continue
            if len(record) <= max(image_col, labels_col):
                raise ZooError(f"{where}: expected {len(header)} columns ({','.join(header)}), got {len(record)}")
            labels = [part.strip() for part in record[labels_col].split(separator)]
            rows.append((record[image_col].strip(), [lbl for lbl in labels if lbl], where))
    except csv.Error as exc:
        raise ZooError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    return rows


def _jsonl_rows(path: Path) -> list[tuple[str, Any, str]]:
    rows = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ZooError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ZooError(f'{where}: expected an object like {{"image": "a.jpg", "labels": ["cat"]}}')
        image = obj.get("image", obj.get("path"))
        labels = obj.get("labels")
        if not isinstance(image, str) or not image.strip():
            raise ZooError(f'{where}: "image" must be an image file name')
        if not isinstance(labels, list) or not all(isinstance(lbl, str) for lbl in labels):
            raise ZooError(f'{where}: "labels" must be a list of label names, got {type(labels).__name__}')
        rows.append((image.strip(), [lbl.strip() for lbl in labels if lbl.strip()], where))
    return rows


def read_labels_file(path: str | Path, separator: str = "|") -> list[Row]:
    """Every row of a CSV / JSONL labels file, image paths resolved against the file's folder; each image
    exists and decodes, each label list is non-empty (duplicates dropped, first-seen order kept)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ZooError(f"{path}: labels file not found (give a .csv or .jsonl file, or a folder holding one)")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ZooError(f"{path}: a labels file must end in .csv (image,labels) or .jsonl (image + labels)")
    raw = _csv_rows(path, separator) if suffix == ".csv" else _jsonl_rows(path)
    if not raw:
        raise ZooError(f"{path}: no rows; add one line per image with its labels")
    rows = []
    for image, labels, where in raw:
        file = Path(image).expanduser()
        file = file if file.is_absolute() else path.parent / file
        if not labels:
            raise ZooError(f"{where}: {image} has an empty label list; give it at least one label")
        if not file.is_file():
            raise ZooError(f"{where}: image {image} not found (looked for {file}; relative to the labels file)")
        try:
            check_image(file)
        except BadImage as exc:
            raise ZooError(f"{where}: {exc}") from None
        rows.append(Row(image=file, labels=list(dict.fromkeys(labels)), where=where))
    return rows


def split_from_rows(rows: list[Row], labels: list[str]) -> MultiSplit:
    """Multi-hot targets in ``labels`` order; a label not in ``labels`` is one line naming file and line."""
    index = {name: i for i, name in enumerate(labels)}
    targets = torch.zeros(len(rows), len(labels))
    for r, row in enumerate(rows):
        for name in row.labels:
            if name not in index:
                raise ZooError(
                    f"{row.where}: unknown label {name!r}{did_you_mean(name, labels)}; the labels are"
                    f" {', '.join(labels)} (set data.labels to list every label)"
                )
            targets[r, index[name]] = 1.0
    return MultiSplit(targets=targets, paths=[str(row.image) for row in rows])


def labels_files(path: str | Path) -> tuple[Path, Path | None]:
    """A labels file, or a folder's ``train.*`` (+ ``val.*``) or ``labels.*`` file: (train file, val file)."""
    root = Path(path).expanduser()
    if root.is_file():
        return root, None
    if not root.is_dir():
        raise ZooError(f"data.path {str(path)!r} is neither a labels file (.csv / .jsonl) nor a folder")
    for stem in ("train", "labels"):
        found = [root / f"{stem}{ext}" for ext in (".csv", ".jsonl") if (root / f"{stem}{ext}").is_file()]
        if len(found) > 1:
            raise ZooError(f"{root} holds both {found[0].name} and {found[1].name}; keep one")
        if found:
            val = [root / f"val{ext}" for ext in (".csv", ".jsonl") if (root / f"val{ext}").is_file()]
            return found[0], (val[0] if val and stem == "train" else None)
    raise ZooError(f"{root}: no labels file; add train.csv (+ val.csv) or {' or '.join(LABEL_FILES)} (image,labels)")


def looks_like_labels_file(path: Path) -> bool:
    """Whether ``path``'s first line is a labels header (CSV) or record (JSONL); reads one line only."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = fh.readline(65536).strip()
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix.lower() == ".csv":
        header = [h.strip().lower() for h in next(csv.reader([first]), [])]
        return "labels" in header and ("image" in header or "path" in header)
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and "labels" in obj and ("image" in obj or "path" in obj)


def load_multilabel_files(cfg, seed: int) -> tuple[MultiSplit, MultiSplit, list[str], dict[str, Any]]:
    """``data.path`` (+ ``data.val_path`` or ``data.val_split``) as train/val splits and the label names."""
    train_file, val_file = labels_files(cfg.path)
    if cfg.val_path:
        val_file, _ = labels_files(cfg.val_path)
    train_rows = read_labels_file(train_file, cfg.label_separator)
    val_rows = read_labels_file(val_file, cfg.label_separator) if val_file else None
    labels = list(cfg.labels) if cfg.labels else sorted({name for row in train_rows for name in row.labels})
    train = split_from_rows(train_rows, labels)
    info: dict[str, Any] = {"source": str(train_file)}
    if val_rows is not None:
        val = split_from_rows(val_rows, labels)
        info["val_source"] = str(val_file)
    elif cfg.val_split > 0:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
        n_val = max(1, round(len(order) * cfg.val_split))
        val, train = train.subset(sorted(order[:n_val])), train.subset(sorted(order[n_val:]))
        info["val_split"] = cfg.val_split
    else:
        raise ZooError(
            f"{train_file}: no validation labels; add val.csv beside it, set data.val_path, or set data.val_split = 0.2"
        )
    return train, val, labels, info


def load_multilabel_data(cfg, seed: int, registered: Callable[[str], tuple[Any, Callable[..., Any]]]) -> MultiLabelData:
    """Resolve ``recipe.data`` to train/val splits and labels; every label has a training example."""
    if cfg.dataset:
        spec, builder = registered(cfg.dataset)
        train, val, labels, info = builder(seed=seed, **cfg.options)
        name = spec.name
        info = {**info, **{k: v for k, v in spec.meta.items() if k in ("hub_id", "license")}}
    else:
        train, val, labels, info = load_multilabel_files(cfg, seed)
        name = Path(cfg.path).stem
    train = _limit(train, cfg.train_limit, seed)
    val = _limit(val, cfg.val_limit, seed + 1)
    counts = train.targets.sum(0)
    missing = [labels[i] for i in range(len(labels)) if counts[i] == 0]
    if missing:
        raise ZooError(
            f"labels with no training example: {missing}; add images with them, raise data.train_limit,"
            " or drop them from data.labels"
        )
    info = {**info, "num_train": len(train), "num_val": len(val)}
    return MultiLabelData(name=name, labels=labels, train=train, val=val, info=info)


def _limit(split: MultiSplit, limit: int | None, seed: int) -> MultiSplit:
    if limit is None or limit >= len(split):
        return split
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).tolist()
    return split.subset(sorted(order[:limit]))


# -- the demo set: scenes of several real Fashion-MNIST items ----------------------------------
def compose_scenes(
    items: np.ndarray,
    classes: np.ndarray,
    count: int,
    seed: int,
    num_classes: int,
    canvas: int = 96,
    min_items: int = 1,
    max_items: int = 4,
    min_scale: float = 0.9,
    max_scale: float = 1.4,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` RGB scenes (uint8, N x canvas x canvas x 3) of ``min_items``..``max_items`` items pasted at
    random scales, places and tints on smooth dark backgrounds (overlaps at most a third of an item), and their
    multi-hot labels (N x num_classes): the set of classes present. Deterministic from ``seed``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    scenes = np.zeros((count, canvas, canvas, 3), dtype=np.uint8)
    targets = np.zeros((count, num_classes), dtype=np.float32)
    grid = np.linspace(0, 1, canvas)
    for n in range(count):
        corners = rng.uniform(0, 60, size=(2, 2, 3))
        top = corners[0, 0] * (1 - grid[None, :, None]) + corners[0, 1] * grid[None, :, None]
        bottom = corners[1, 0] * (1 - grid[None, :, None]) + corners[1, 1] * grid[None, :, None]
        img = top * (1 - grid[:, None, None]) + bottom * grid[:, None, None] + rng.normal(0, 5, (canvas, canvas, 3))
        taken = np.zeros((canvas, canvas), dtype=bool)
        for _ in range(int(rng.integers(min_items, max_items + 1))):
            idx = int(rng.integers(len(items)))
            side = min(canvas, round(28 * rng.uniform(min_scale, max_scale)))
            item = np.asarray(Image.fromarray(items[idx]).resize((side, side), Image.BILINEAR), dtype=np.float32)
            mask = item > 24
            for _attempt in range(20):
                x0, y0 = (int(v) for v in rng.integers(0, canvas - side + 1, size=2))
                if (taken[y0 : y0 + side, x0 : x0 + side] & mask).sum() <= mask.sum() / 3:
                    break
            else:
                continue  # no free place for this one (never the first: the canvas is empty)
            alpha = (item / 255.0)[..., None]
            patch = img[y0 : y0 + side, x0 : x0 + side]
            img[y0 : y0 + side, x0 : x0 + side] = (
                patch * (1 - alpha) + item[..., None] * rng.uniform(0.6, 1.0, 3) * alpha
            )
            taken[y0 : y0 + side, x0 : x0 + side] |= mask
            targets[n, int(classes[idx])] = 1.0
        scenes[n] = np.clip(img, 0, 255).astype(np.uint8)
    return scenes, targets


def fashion_mnist_multilabel(
    seed: int = 0,
    num_train: int = 1200,
    num_val: int = 300,
    canvas: int = 96,
    min_items: int = 1,
    max_items: int = 4,
    **_: Any,
) -> tuple[MultiSplit, MultiSplit, list[str], dict[str, Any]]:
    """SYNTHETIC scenes of REAL Fashion-MNIST items (Zalando, MIT), in memory: train scenes from its train
    split, val scenes from its test split; each scene's labels are the classes of the items it holds."""
    from .data import FASHION_MNIST_LABELS, fashion_mnist_arrays, fashion_mnist_dir

    if not 1 <= min_items <= max_items <= 8:
        raise ZooError(f"data.options: need 1 <= min_items ({min_items}) <= max_items ({max_items}) <= 8")
    if not 32 <= canvas <= 512:
        raise ZooError(f"data.options.canvas: {canvas} must be between 32 and 512 pixels")
    splits = []
    for name, count, offset in (("train", num_train, 0), ("test", num_val, 1)):
        items, classes = fashion_mnist_arrays(name)
        scenes, targets = compose_scenes(
            items, classes, int(count), seed * 1000 + offset, len(FASHION_MNIST_LABELS), canvas, min_items, max_items
        )
        splits.append(MultiSplit(targets=torch.from_numpy(targets), images=torch.from_numpy(scenes)))
    info = {
        "source": f"composed in memory from Fashion-MNIST at {fashion_mnist_dir()}",
        "license": "mit",
        "hub_id": "zalando-datasets/fashion_mnist",
        "composed": {"seed": seed, "canvas": canvas, "items": [min_items, max_items]},
    }
    return splits[0], splits[1], list(FASHION_MNIST_LABELS), info
