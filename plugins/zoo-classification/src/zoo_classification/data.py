"""Image-classification data: ImageFolder directories, Fashion-MNIST and other registered datasets.

Everything is validated before training starts (empty classes, train/val label mismatch,
unreadable images), so a bad file stops the run with its name, or is counted and skipped when the
recipe says ``on_bad_image = "skip"`` — never a crash mid-epoch.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.sdk import (
    IMAGE_EXTENSIONS,
    BadImage,
    ZooError,
    cache_dir,
    check_image,
    check_label,
    check_preprocess,
    read_image,
)

FASHION_MNIST_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)


@dataclass
class Split:
    """One split: either in-memory uint8 images (N,H,W[,3]) or image file paths, with targets."""

    targets: list[int]
    images: torch.Tensor | None = None
    paths: list[str] | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: list[int]) -> Split:
        return Split(
            targets=[self.targets[i] for i in indices],
            images=self.images[indices] if self.images is not None else None,
            paths=[self.paths[i] for i in indices] if self.paths is not None else None,
        )


@dataclass
class ImageData:
    name: str
    labels: list[str]
    train: Split
    val: Split
    info: dict[str, Any] = field(default_factory=dict)


class ImageDataset(Dataset):
    """(image tensor, label) pairs with the given transform applied."""

    def __init__(self, split: Split, transform) -> None:
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


# -- registered datasets ----------------------------------------------------------------------
def read_idx(path: Path, offset: int) -> np.ndarray:
    """The bytes of a gzipped IDX file after its header (``offset``: 16 for images, 8 for labels)."""
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


def fashion_mnist_dir() -> Path:
    """The Debian package's files, else a download from the official source into the cache."""
    for candidate in (os.environ.get("MODELZOO_FASHION_MNIST"), *FASHION_MNIST_DIRS):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    root = cache_dir() / "datasets"
    raw = root / "FashionMNIST" / "raw"
    if (raw / "train-images-idx3-ubyte.gz").is_file():
        return raw
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as exc:
        raise ZooError(
            f"Fashion-MNIST not found and the download failed ({type(exc).__name__}); "
            "install it with: apt-get install dataset-fashion-mnist"
        ) from None
    return raw


def fashion_mnist_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's ``"train"`` or ``"test"`` split as (uint8 images N x 28 x 28, int labels N)."""
    root = fashion_mnist_dir()
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz", 8).astype(int)
    return images, labels


def fashion_mnist(seed: int = 0) -> tuple[Split, Split, list[str], dict[str, Any]]:
    """Fashion-MNIST (Zalando, MIT): 60k train / 10k test 28x28 grey images, 10 classes."""
    root = fashion_mnist_dir()

    def split(name: str) -> Split:
        images, targets = fashion_mnist_arrays(name)
        return Split(targets=targets.tolist(), images=torch.from_numpy(images.copy()))

    info = {
        "source": str(root),
        "license": "mit",
        "hub_id": "zalando-datasets/fashion_mnist",
        "val_is": "official test split",
    }
    return split("train"), split("test"), list(FASHION_MNIST_LABELS), info


# -- ImageFolder ------------------------------------------------------------------------------
def _class_folders(root: Path) -> list[str]:
    """The class sub-folders of ``root``; a symlink to ``root``, above it or to a sibling would mix classes."""
    real_root = root.resolve()
    classes = []
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or not d.is_dir():
            continue
        if d.is_symlink():
            target = d.resolve()
            if target == real_root or target in real_root.parents or real_root in target.parents:
                raise ZooError(
                    f"class folder {d} is a symlink to {target}, which holds other classes; replace it with a"
                    " folder of its own images"
                )
        classes.append(d.name)
    return classes


def _image_files(folder: Path) -> list[Path]:
    """Image files below ``folder``, sorted; symlinked files count, symlinked folders are not walked (loops)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        found += [Path(dirpath) / f for f in filenames if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def _scan(
    root: Path, on_bad: str, counters: dict[str, int], track: Callable[..., Any] | None = None
) -> tuple[list[str], list[str], list[int]]:
    """Every image of every class, each decoded once here (truncated files, broken data and decompression
    bombs stop the run with the file's name, or are counted and skipped): never a crash mid-epoch."""
    classes = _class_folders(root)
    if not classes:
        raise ZooError(f"{root}: no class sub-directories; ImageFolder expects {root}/<class>/<image>")
    for name in classes:  # folder names become labels: never undecodable bytes (a non-UTF-8 locale) nor controls
        check_label(name, f"class folder {name!a} in {str(root)!a}")
    files = [(idx, f) for idx, name in enumerate(classes) for f in _image_files(root / name)]
    track = track or (lambda items, *a, **k: items)
    paths, targets, seen = [], [], {}
    good = [0] * len(classes)
    for idx, f in track(files, f"checking images in {root}", total=len(files), unit="images"):
        real = str(f.resolve())
        if real in seen and seen[real] != idx:
            raise ZooError(
                f"{f} is the same file as one in class {classes[seen[real]]!r}; an image belongs to one class"
            )
        seen[real] = idx
        try:
            check_image(f)
        except BadImage as exc:
            if on_bad == "skip":
                counters["skipped"] = counters.get("skipped", 0) + 1
                continue
            raise ZooError(f'{exc}; remove it or set data.on_bad_image = "skip"') from None
        paths.append(str(f))
        targets.append(idx)
        good[idx] += 1
    empty = [name for name, n in zip(classes, good) if n == 0]
    if empty:
        raise ZooError(f"class {empty[0]!r} in {root} has no readable images; add some or remove the directory")
    return classes, paths, targets


def image_folder_split(
    root: Path, on_bad: str, track: Callable[..., Any] | None = None
) -> tuple[list[str], Split, dict[str, Any]]:
    """One ImageFolder (``root/<class>/<image>``) as a single split: classes, the split, skip counts."""
    if not root.is_dir():
        raise ZooError(f"{root} is not a directory; give an ImageFolder (<class>/<image> sub-directories)")
    counters: dict[str, int] = {}
    classes, paths, targets = _scan(root, on_bad, counters, track)
    return classes, Split(targets=targets, paths=paths), {"source": str(root), "skipped": counters.get("skipped", 0)}


def image_folder(
    path: str,
    train_dir: str,
    val_dir: str,
    val_split: float,
    on_bad: str,
    seed: int,
    track: Callable[..., Any] | None = None,
):
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ZooError(f"data.path {path!r} is not a directory")
    counters: dict[str, int] = {}
    if (root / train_dir).is_dir():
        classes, paths, targets = _scan(root / train_dir, on_bad, counters, track)
        train = Split(targets=targets, paths=paths)
        if (root / val_dir).is_dir():
            val_classes, vpaths, vtargets = _scan(root / val_dir, on_bad, counters, track)
            if val_classes != classes:
                only_train = sorted(set(classes) - set(val_classes))
                only_val = sorted(set(val_classes) - set(classes))
                raise ZooError(
                    f"train and val classes differ (only in train: {only_train or '-'}; only in val: {only_val or '-'});"
                    " make the class directories match"
                )
            val = Split(targets=vtargets, paths=vpaths)
            return train, val, classes, {"source": str(root), "skipped": counters.get("skipped", 0)}
    else:
        classes, paths, targets = _scan(root, on_bad, counters, track)
        train = Split(targets=targets, paths=paths)
    if val_split <= 0:
        raise ZooError(f"{root} has no {val_dir}/ directory; add one or set data.val_split = 0.2")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(order) * val_split))
    val, train = train.subset(sorted(order[:n_val])), train.subset(sorted(order[n_val:]))
    return train, val, classes, {"source": str(root), "skipped": counters.get("skipped", 0), "val_split": val_split}


def _limit(split: Split, limit: int | None, seed: int) -> Split:
    if limit is None or limit >= len(split):
        return split
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).tolist()
    return split.subset(sorted(order[:limit]))


def load_image_data(
    cfg, seed: int, registered: Callable[[str], tuple[Any, Callable[..., Any]]], track: Callable[..., Any] | None = None
) -> ImageData:
    """Resolve ``recipe.data`` to train/val splits and labels (``registered``: a dataset name to its
    spec and builder, checked to be for this task)."""
    if cfg.dataset:
        spec, builder = registered(cfg.dataset)
        train, val, labels, info = builder(seed=seed, **cfg.options)
        name = spec.name
        info = {**info, **{k: v for k, v in spec.meta.items() if k in ("hub_id", "license")}}
    else:
        train, val, labels, info = image_folder(
            cfg.path, cfg.train_dir, cfg.val_dir, cfg.val_split, cfg.on_bad_image, seed, track
        )
        name = Path(cfg.path).name
    train = _limit(train, cfg.train_limit, seed)
    val = _limit(val, cfg.val_limit, seed + 1)
    missing = sorted(set(range(len(labels))) - set(train.targets))
    if missing:
        raise ZooError(
            f"classes with no training images: {[labels[i] for i in missing]}; raise data.train_limit or add images"
        )
    info = {**info, "num_train": len(train), "num_val": len(val)}
    return ImageData(name=name, labels=labels, train=train, val=val, info=info)


class _GreyToRGB(torch.nn.Module):
    """Repeat a single grey channel three times (a module, so DataLoader workers can pickle it)."""

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t.expand(3, -1, -1) if t.shape[0] == 1 else t


def _checked_preprocess(preprocess: dict[str, Any]) -> tuple[int, list[float], list[float]]:
    """Input size, mean and std from a model's config, checked (a hand-edited config.json can hold anything)."""
    check_preprocess(preprocess, "the model's config.json")  # sizes, crop_pct, mean/std: modelzoo.sdk's bounds
    try:
        size = int(preprocess["input_size"][-1])
        mean = [float(v) for v in preprocess["mean"]]
        std = [float(v) for v in preprocess["std"]]
    except (KeyError, TypeError, ValueError, IndexError):
        raise ZooError(
            "the model's config.json: preprocess lacks a valid input_size, mean or std; its config.json is broken"
        ) from None
    if len(mean) == 1 and len(std) == 1:  # one value for every channel (grey input is repeated to RGB)
        mean, std = mean * 3, std * 3
    if len(mean) != 3 or len(std) != 3:
        raise ZooError("the model's config.json: preprocess.mean and .std must both hold 1 or 3 numbers")
    return size, mean, std


def build_transform(
    preprocess: dict[str, Any], train: bool, augment: str, from_files: bool, random_erasing: float = 0.0
):
    """Resize (+ the ``augment`` preset when training: :mod:`.augment`), grey->RGB, float, normalise
    (+ random erasing when training)."""
    from torchvision.transforms import InterpolationMode, v2

    from .augment import policy

    size, mean, std = _checked_preprocess(preprocess)
    interp = {"bicubic": InterpolationMode.BICUBIC, "nearest": InterpolationMode.NEAREST}.get(
        preprocess.get("interpolation", "bilinear"), InterpolationMode.BILINEAR
    )
    steps: list = []
    if train and augment != "none":
        steps += [
            v2.RandomResizedCrop(size, scale=(0.7, 1.0), interpolation=interp, antialias=True),
            v2.RandomHorizontalFlip(),
            *([_GreyToRGB(), *policy(augment, interp)] if policy(augment, interp) else []),
        ]
    elif from_files:
        crop_pct = float(preprocess.get("crop_pct") or 1.0)
        steps += [v2.Resize(int(size / crop_pct), interpolation=interp, antialias=True), v2.CenterCrop(size)]
    else:  # small in-memory images: no crop, it would cut the object off
        steps += [v2.Resize((size, size), interpolation=interp, antialias=True)]
    steps += [
        _GreyToRGB(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ]
    if train and random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing, value=0))
    return v2.Compose(steps)
