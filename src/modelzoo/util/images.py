"""Reading image files safely, for every vision task plugin.

One place decides what an unreadable image is: a file PIL cannot identify, a truncated or corrupt
one (decoding fails part-way), or a decompression bomb (a small file whose header claims a huge
canvas; PIL's own pixel limit). Each becomes :class:`BadImage`, a :class:`ZooError` naming the file,
so a task can stop with one line or count and skip it, instead of crashing mid-epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ZooError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class BadImage(ZooError):
    """An image file that cannot be decoded (the message names the file and why)."""


def is_image_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def _open_errors():
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError)


def read_image(path: str | os.PathLike, mode: str = "RGB"):
    """Decode ``path`` fully into a PIL image in ``mode``; :class:`BadImage` if it cannot be."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                return im.convert(mode)
    except (*_open_errors(), Image.DecompressionBombWarning) as exc:
        raise BadImage(f"unreadable image {path} ({_reason(exc)})") from None


def check_image(path: str | os.PathLike) -> None:
    """Decode ``path`` through to its last byte (JPEGs at a reduced scale, which still reads every byte),
    so a truncated or corrupt file or a decompression bomb is found before training, not mid-epoch."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
                im.load()
    except (*_open_errors(), Image.DecompressionBombWarning) as exc:
        raise BadImage(f"unreadable image {path} ({_reason(exc)})") from None


def read_image_tensor(item: Any, mode: str = "RGB"):
    """A CHW uint8 tensor from a path, a PIL image or a tensor (passed through, 2-D gets a channel)."""
    import torch
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    if isinstance(item, torch.Tensor):
        return item if item.ndim == 3 else item.unsqueeze(0)
    if isinstance(item, Image.Image):
        return pil_to_tensor(item.convert(mode))
    path = Path(item)
    if not path.is_file():
        raise ZooError(f"no such image: {path}")
    return pil_to_tensor(read_image(path, mode))


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from the header, or None when the file is not an image PIL can open."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except _open_errors():
        return None


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if "DecompressionBomb" in name:
        return "its header claims more pixels than PIL's safety limit; a decompression bomb?"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{name}: {text}"[:160] if text else name
