"""ImageFolder checks: mismatched classes, empty classes, unreadable images (error or counted skip)."""

from __future__ import annotations

from pathlib import Path

import pytest
from zoo_classification.data import image_folder

from modelzoo import ZooError

pytestmark = pytest.mark.attack("images")


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
    with pytest.raises(ZooError, match=r"unreadable image .*broken\.png \(.*\); remove it or set data\.on_bad_image"):
        image_folder(str(bad), "train", "val", 0.25, "error", 0)
    train, val, classes, info = image_folder(str(bad), "train", "val", 0.25, "skip", 0)
    assert info["skipped"] == 1 and classes == ["a", "b"] and len(train) + len(val) == 8
    with pytest.raises(ZooError, match="no val/ directory; add one or set data.val_split"):
        image_folder(str(bad), "train", "val", 0.0, "skip", 0)


# -- hostile files: each caught while scanning, never mid-epoch -----------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_broken_data(path: Path) -> None:
    """A PNG whose chunks all have valid CRCs, but whose image data is not a zlib stream."""
    import struct

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"not zlib at all" * 4) + _chunk(b"IEND", b"")
    )


def png_bomb(path: Path) -> None:
    """A tiny PNG whose header claims 30000 x 30000 pixels (a decompression bomb)."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


def truncated_jpeg(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 10, 10)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("make", "name", "why"),
    [
        (truncated_jpeg, "cut.jpg", "truncated|OSError"),
        (png_with_broken_data, "zlib.png", "broken data stream|Error"),
        (png_bomb, "bomb.png", "decompression bomb"),
    ],
)
def test_hostile_images_are_caught_up_front(tmp_path, make, name, why):
    root = tmp_path / "d"
    for i in range(3):
        _png(root / "train" / "a" / f"{i}.png")
        _png(root / "train" / "b" / f"{i}.png")
        _png(root / "val" / "a" / f"{i}.png")
        _png(root / "val" / "b" / f"{i}.png")
    make(root / "train" / "b" / name)
    with pytest.raises(ZooError, match=rf"unreadable image .*{name} \(.*({why}).*\); remove it or set"):
        image_folder(str(root), "train", "val", 0.0, "error", 0)
    train, val, _, info = image_folder(str(root), "train", "val", 0.0, "skip", 0)
    assert info["skipped"] == 1 and len(train) == 6 and len(val) == 6


def test_predict_refuses_a_bomb_in_one_line(tmp_path):
    from modelzoo.sdk import read_image_tensor

    png_bomb(tmp_path / "bomb.png")
    with pytest.raises(ZooError, match="decompression bomb"):
        read_image_tensor(tmp_path / "bomb.png")


def test_a_class_folder_linked_to_its_parent_is_refused(tmp_path):
    root = tmp_path / "flat"
    for i in range(2):
        _png(root / "a" / f"{i}.png")
        _png(root / "b" / f"{i}.png")
    (root / "loop").symlink_to(root, target_is_directory=True)
    with pytest.raises(ZooError, match="class folder .*loop is a symlink to .*, which holds other classes"):
        image_folder(str(root), "train", "val", 0.5, "error", 0)
    (root / "loop").unlink()
    (root / "c").mkdir()
    (root / "c" / "same.png").symlink_to(root / "a" / "0.png")
    with pytest.raises(ZooError, match="is the same file as one in class 'a'"):
        image_folder(str(root), "train", "val", 0.5, "error", 0)
    (root / "c" / "same.png").unlink()
    (root / "c" / "nested").symlink_to(root, target_is_directory=True)  # symlinked folders are not walked
    _png(root / "c" / "own.png")
    train, val, classes, _ = image_folder(str(root), "train", "val", 0.4, "error", 0)
    assert classes == ["a", "b", "c"] and len(train) + len(val) == 5


def test_one_class_is_refused(tmp_path):
    import tomli_w

    import modelzoo

    root = tmp_path / "one"
    for i in range(4):
        _png(root / "only" / f"{i}.png")
    recipe = {
        "task": "image-classification",
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False},
        "data": {"path": str(root), "val_split": 0.25, "image_size": 32},
        "stages": [{"train": "head", "epochs": 1}],
    }
    (tmp_path / "r.toml").write_text(tomli_w.dumps(recipe))
    with pytest.raises(ZooError, match=r"needs at least 2 classes; the data has \['only'\]"):
        modelzoo.finetune(tmp_path / "r.toml", out=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()
