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
                return to_8bit(im).convert(mode)
    except (*_open_errors(), Image.DecompressionBombWarning) as exc:
        raise BadImage(f"unreadable image {path} ({_reason(exc)})") from None


#: PIL modes of more than 8 bits per pixel, which ``convert`` would clip to 0..255
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def to_8bit(im: Any) -> Any:
    """A 16-bit, 32-bit or float single-channel image scaled to 8 bits over its dynamic range, never
    clipped (PIL's ``convert`` would turn a dark 16-bit PNG almost white): 16-bit values by their full
    range (v / 257), floats in [0, 1] times 255, other ranges by their own minimum and maximum.
    8-bit images are returned as they are."""
    if im.mode not in WIDE_MODES:
        return im
    import numpy as np
    from PIL import Image

    arr = np.asarray(im, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if im.mode.startswith("I;16") or (im.mode == "I" and low >= 0 and high <= 65535):
        scaled = arr / 257.0
    elif im.mode == "F" and low >= 0 and high <= 1:
        scaled = arr * 255.0
    else:
        scaled = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


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
        return pil_to_tensor(to_8bit(item).convert(mode))
    path = Path(item)
    if not path.is_file():
        raise ZooError(f"no such image: {path}")
    return pil_to_tensor(read_image(path, mode))


#: PIL modes that hold one integer per pixel (a palette PNG's values are its palette indices)
MASK_MODES = ("L", "P", "I", "I;16", "1")


def read_mask(
    path: str | os.PathLike,
    num_classes: int | None = None,
    ignore_index: int = 255,
    size: tuple[int, int] | None = None,
):
    """A mask of class indices as an (H, W) ``torch.long`` tensor: a single-channel PNG (mode L, P or
    16-bit) whose pixel values are class indices, ``ignore_index`` (255) marking pixels no loss or
    metric counts. Raises :class:`BadImage` (one line naming the file) for a file that is missing,
    unreadable, a colour image, not ``size`` = (width, height) when given (its image's size), or
    holds an index >= ``num_classes`` (when given) other than ``ignore_index``."""
    import warnings

    import numpy as np
    import torch
    from PIL import Image

    if not Path(path).is_file():
        raise BadImage(f"no such mask: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                mode, im_size = im.mode, im.size
                if mode not in MASK_MODES:
                    raise BadImage(
                        f"mask {path} is a {mode} image; a mask is a single-channel PNG of class indices"
                        f" (mode L or P, {ignore_index} = ignore)"
                    )
                values = np.array(im, dtype=np.int64)
    except (*_open_errors(), Image.DecompressionBombWarning) as exc:
        raise BadImage(f"unreadable mask {path} ({_reason(exc)})") from None
    if size is not None and tuple(im_size) != tuple(size):
        raise BadImage(
            f"mask {path} is {im_size[0]}x{im_size[1]} px but its image is {size[0]}x{size[1]}; masks must match"
            " their images pixel for pixel"
        )
    mask = torch.from_numpy(values)
    if num_classes is not None:
        bad = mask[(mask != ignore_index) & ((mask < 0) | (mask >= num_classes))]
        if bad.numel():
            raise BadImage(
                f"mask {path} holds class index {int(bad.max())}, but there are {num_classes} classes"
                f" (0-{num_classes - 1}; {ignore_index} = ignore)"
            )
    return mask


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
