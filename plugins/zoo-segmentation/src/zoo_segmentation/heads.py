"""Segmentation heads on a backbone's ``pyramid`` (a list of maps, finest first, ``backbone.info.levels``
giving each one's channels and stride).

Every head reads some of the levels (``use``: their indices) and turns them into class logits at the
stride of the finest level it reads (``out_stride``): ``forward(pyramid) = decode(select(pyramid))``,
where ``select`` keeps the levels it reads and ``decode`` makes the logits. The task upsamples the
logits to the image's size.

* ``fpn``: an FPN-style decoder (lateral 1x1 convs, top-down sum, 3x3 smoothing, every level
  upsampled to the finest and summed, then a 3x3 conv and a 1x1 classifier).
* ``lraspp``: torchvision's ``LRASPPHead`` (Searching for MobileNetV3) on the deepest level and one
  low-level map.
* ``deeplabv3``: torchvision's ``DeepLabHead`` (ASPP) on the deepest level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.sdk import Backbone, Level, ZooError


class SegmentationHead(nn.Module):
    """Base of the heads: which levels are read and at what stride the logits come out."""

    def __init__(self, use: list[int], out_stride: int) -> None:
        super().__init__()
        self.use = list(use)
        self.out_stride = int(out_stride)

    def select(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        return [pyramid[i] for i in self.use]

    def decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        return self.decode(self.select(pyramid))


def _levels(backbone: Backbone, head: str) -> list[Level]:
    info = getattr(backbone, "info", None)
    if info is None or info.output_kind != "pyramid" or not info.levels:
        raise ZooError(f"head {head!r} needs a backbone built with output='pyramid' (levels with channels and strides)")
    return list(info.levels)


def _conv_bn(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class FPNHead(SegmentationHead):
    def __init__(self, levels: list[Level], use: list[int], num_classes: int, channels: int, dropout: float) -> None:
        super().__init__(use, levels[use[0]].stride)
        self.lateral = nn.ModuleList(nn.Conv2d(levels[i].channels, channels, 1) for i in use)
        self.smooth = nn.ModuleList(_conv_bn(channels, channels) for _ in use)
        self.fuse = _conv_bn(channels, channels)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        lat = [conv(m) for conv, m in zip(self.lateral, maps)]
        for i in range(len(lat) - 2, -1, -1):  # top-down: coarse into fine
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        size = lat[0].shape[-2:]
        out = sum(
            F.interpolate(s(x), size=size, mode="bilinear", align_corners=False) if j else s(x)
            for j, (s, x) in enumerate(zip(self.smooth, lat))
        )
        return self.classifier(self.dropout(self.fuse(out)))


class TorchvisionHead(SegmentationHead):
    """torchvision's LR-ASPP (two maps: low, high) or DeepLabV3 (one map) head."""

    def __init__(self, head: nn.Module, use: list[int], out_stride: int, two_maps: bool) -> None:
        super().__init__(use, out_stride)
        self.head = head
        self.two_maps = two_maps

    def decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        if self.two_maps:
            return self.head({"low": maps[0], "high": maps[1]})
        return self.head(maps[0])


def build_fpn(
    backbone: Backbone,
    num_classes: int,
    channels: int = 64,
    min_stride: int = 4,
    max_stride: int = 32,
    dropout: float = 0.1,
) -> FPNHead:
    """An FPN-style decoder over the levels with strides in [min_stride, max_stride]."""
    levels = _levels(backbone, "fpn")
    use = [i for i, lv in enumerate(levels) if min_stride <= lv.stride <= max_stride]
    if not use:
        strides = [lv.stride for lv in levels]
        raise ZooError(f"head 'fpn': no level has a stride in [{min_stride}, {max_stride}] (the backbone's: {strides})")
    return FPNHead(levels, use, num_classes, channels, dropout)


def build_lraspp(
    backbone: Backbone, num_classes: int, inter_channels: int = 128, low_stride: int = 8
) -> TorchvisionHead:
    """torchvision's LR-ASPP on the deepest level and the level of stride ``low_stride`` (or the nearest)."""
    from torchvision.models.segmentation.lraspp import LRASPPHead

    levels = _levels(backbone, "lraspp")
    if len(levels) < 2:
        raise ZooError("head 'lraspp' needs a pyramid of at least two levels")
    high = len(levels) - 1
    low = min(range(high), key=lambda i: (abs(levels[i].stride - low_stride), -levels[i].stride))
    head = LRASPPHead(levels[low].channels, levels[high].channels, num_classes, inter_channels)
    return TorchvisionHead(head, [low, high], levels[low].stride, two_maps=True)


def build_deeplabv3(backbone: Backbone, num_classes: int, rates: list[int] | None = None) -> TorchvisionHead:
    """torchvision's DeepLabV3 head (ASPP with ``rates``) on the deepest level."""
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead

    levels = _levels(backbone, "deeplabv3")
    deepest = len(levels) - 1
    head = DeepLabHead(levels[deepest].channels, num_classes, list(rates or [6, 12, 18]))
    return TorchvisionHead(head, [deepest], levels[deepest].stride, two_maps=False)


def check_head(model) -> SegmentationHead:
    head = getattr(model, "head", None)
    if not isinstance(head, SegmentationHead):
        raise ZooError(
            f"semantic-segmentation needs a segmentation head (zoo list --kind head --task segmentation);"
            f" got {type(head).__name__}"
        )
    return head
