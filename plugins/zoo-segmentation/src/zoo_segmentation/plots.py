"""Colour masks, overlays and the picture of predictions beside ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelzoo.sdk import pyplot, save_figure

#: class k's colour (background black); repeats after 20 classes, 255 (ignore) is white
_BASE = [
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128),
]  # fmt: skip


def palette() -> np.ndarray:
    """(256, 3) uint8: colours of class indices 0..254 and white for 255 (ignore)."""
    colours = np.array([_BASE[0]] + [_BASE[1 + (k % (len(_BASE) - 1))] for k in range(254)] + [(255, 255, 255)])
    return colours.astype(np.uint8)


def colour(mask: np.ndarray) -> np.ndarray:
    return palette()[mask.astype(np.int64)]


def mask_image(mask: np.ndarray):
    """A palette PNG image: its pixel values stay the class indices, its colours show them."""
    from PIL import Image

    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(palette().flatten().tolist())
    return img


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with non-background pixels tinted by their class colour."""
    tinted = image.astype(np.float32) * (1 - alpha) + colour(mask).astype(np.float32) * alpha
    fg = (mask != 0)[..., None]
    return np.where(fg, tinted, image.astype(np.float32)).clip(0, 255).astype(np.uint8)


def sample_sheet(samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], labels: list[str], path: Path) -> None:
    """Rows of (image, ground truth, prediction) for the first validation images, with a legend."""
    plt = pyplot()
    rows = len(samples)
    fig, axes = plt.subplots(rows, 3, figsize=(6.6, 2.2 * rows + 0.6), squeeze=False)
    for r, (img, truth, pred) in enumerate(samples):
        for c, (pic, title) in enumerate(
            ((img, "image"), (colour(truth), "ground truth"), (colour(pred), "prediction"))
        ):
            ax = axes[r][c]
            ax.imshow(pic, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
    from matplotlib.patches import Patch

    pal = palette() / 255.0
    handles = [Patch(color=pal[k], label=name) for k, name in enumerate(labels)]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(labels)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, path)
