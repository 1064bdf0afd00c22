"""ImageFolder checks: mismatched classes, empty classes, unreadable images (error or counted skip)."""

from __future__ import annotations

from pathlib import Path

import pytest
from zoo_classification.data import image_folder

from modelzoo import ZooError


def _png(path: Path, ok: bool = True) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if ok:
        Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    else:
        path.write_bytes(b"not an image")


def test_image_folder_validation(tmp_path):
    root = tmp_path / "d"
    _png(root / "train" / "a" / "1.png")
    _png(root / "train" / "b" / "1.png")
    _png(root / "val" / "a" / "1.png")
    _png(root / "val" / "c" / "1.png")
    with pytest.raises(ZooError, match=r"only in train: \['b'\]; only in val: \['c'\]"):
        image_folder(str(root), "train", "val", 0.0, "error", 0)

    flat = tmp_path / "flat"
    _png(flat / "a" / "1.png")
    (flat / "empty").mkdir()
    with pytest.raises(ZooError, match="class 'empty' .* has no readable images"):
        image_folder(str(flat), "train", "val", 0.2, "error", 0)

    bad = tmp_path / "bad"
    for i in range(4):
        _png(bad / "a" / f"{i}.png")
        _png(bad / "b" / f"{i}.png")
    _png(bad / "b" / "broken.png", ok=False)
    with pytest.raises(ZooError, match=r"unreadable image .*broken\.png; remove it or set data\.on_bad_image"):
        image_folder(str(bad), "train", "val", 0.25, "error", 0)
    train, val, classes, info = image_folder(str(bad), "train", "val", 0.25, "skip", 0)
    assert info["skipped"] == 1 and classes == ["a", "b"] and len(train) + len(val) == 8
    with pytest.raises(ZooError, match="no val/ directory; add one or set data.val_split"):
        image_folder(str(bad), "train", "val", 0.0, "skip", 0)
