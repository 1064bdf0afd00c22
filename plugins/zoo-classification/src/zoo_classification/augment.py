"""Training-time augmentation of image classification, on torchvision.transforms.v2.

``data.augment`` presets (applied in stages with ``augment = true``):

* ``none``: the evaluation transform;
* ``light``: random resized crop (70-100% of the area) + horizontal flip;
* ``trivialaugment`` / ``randaugment`` / ``autoaugment``: ``light`` followed by TrivialAugmentWide,
  RandAugment (2 ops, magnitude 9) or AutoAugment's ImageNet policy, on the uint8 image;

plus ``data.random_erasing`` (the probability of erasing a random rectangle of the normalised image)
and, per batch, ``data.mixup`` / ``data.cutmix``: the probability that a batch is mixed with MixUp or
CutMix (Beta(``mixup_alpha``) / Beta(``cutmix_alpha``)), its labels mixed in the same proportions.
Every random draw comes from torch's generator, which the engine reseeds per epoch: a resumed run
draws exactly what the uninterrupted one did.
"""

from __future__ import annotations

from typing import Any

import torch

PRESETS = ("none", "light", "trivialaugment", "randaugment", "autoaugment")


def policy(preset: str, interpolation: Any) -> list:
    """The automatic augmentation policy of a preset (none for ``none`` and ``light``)."""
    from torchvision.transforms import InterpolationMode, v2

    if interpolation not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
        interpolation = InterpolationMode.BILINEAR  # the policies' tensor kernels take only these two
    if preset == "trivialaugment":
        return [v2.TrivialAugmentWide(interpolation=interpolation)]
    if preset == "randaugment":
        return [v2.RandAugment(num_ops=2, magnitude=9, interpolation=interpolation)]
    if preset == "autoaugment":
        return [v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET, interpolation=interpolation)]
    return []


def check(data: Any) -> None:
    """The augmentation fields of ``[data]``, each problem one line."""
    from modelzoo.sdk import RecipeError

    if not 0.0 <= data.random_erasing <= 1.0:
        raise RecipeError(f"data.random_erasing: {data.random_erasing} must be a probability in [0, 1] (e.g. 0.25)")
    for key in ("mixup", "cutmix"):
        if not 0.0 <= getattr(data, key) <= 1.0:
            raise RecipeError(f"data.{key}: {getattr(data, key)} must be a probability in [0, 1] (e.g. 0.5)")
        if getattr(data, f"{key}_alpha") <= 0:
            raise RecipeError(f"data.{key}_alpha: must be > 0 (typical: mixup 0.2-0.8, cutmix 1.0)")
    if data.mixup + data.cutmix > 1.0:
        raise RecipeError(
            f"data.mixup + data.cutmix = {data.mixup + data.cutmix:g}: a batch is mixed one way at most; make them sum"
            " to at most 1"
        )


def mix_batch(x: torch.Tensor, y: torch.Tensor, num_classes: int, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, soft labels)``: MixUp with probability ``data.mixup``, else CutMix with probability
    ``data.cutmix``, else the batch as it is (one-hot labels). Each image is mixed with its neighbour."""
    from torchvision.transforms import v2

    u = float(torch.rand(()))
    if u < data.mixup:
        mixer = v2.MixUp(alpha=data.mixup_alpha, num_classes=num_classes)
    elif u < data.mixup + data.cutmix:
        mixer = v2.CutMix(alpha=data.cutmix_alpha, num_classes=num_classes)
    else:
        return x, torch.nn.functional.one_hot(y, num_classes).to(torch.float32)
    mixed, soft = mixer(x, y)
    return mixed, soft.to(torch.float32)
