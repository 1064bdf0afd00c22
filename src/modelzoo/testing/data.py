"""Tiny real data for engine tests: images any backbone learns in a few steps."""

from __future__ import annotations

from pathlib import Path

# -- tiny real data -------------------------------------------------------------------------------
COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def write_color_images(root: Path, per_class: int, seed: int, size: int = 24) -> Path:
    """An ImageFolder of noisy red / green / blue PNGs (``root/<colour>/<i>.png``): a task any backbone
    learns in a few steps, for tests of the engine rather than of a model."""
    import torch
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)
    for name, rgb in COLORS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = torch.randint(-40, 40, (size, size, 3), generator=gen)
            arr = (torch.tensor(rgb) + noise).clamp(0, 255).to(torch.uint8).numpy()
            Image.fromarray(arr).save(root / name / f"{i}.png")
    return root
