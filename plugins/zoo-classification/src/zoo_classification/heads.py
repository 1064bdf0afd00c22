"""Classifier heads on pooled features: the classic new head of transfer learning, and an MLP."""

from __future__ import annotations

from torch import nn

from modelzoo.sdk import Backbone, FeatureInfo, ZooError


def _pooled_width(info: FeatureInfo, head: str) -> int:
    if info.output_kind != "pooled" or not info.num_features:
        raise ZooError(f"head {head!r} consumes pooled features; the backbone emits {info.output_kind}")
    return info.num_features


class LinearHead(nn.Sequential):
    """Dropout + one linear layer: the classic new head of transfer learning."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__(nn.Dropout(dropout), nn.Linear(in_features, num_classes))


class MLPHead(nn.Sequential):
    """A hidden layer (Linear-GELU-Dropout) before the classifier, for features far from the task."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__(
            nn.Linear(in_features, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )


def build_linear(backbone: Backbone, num_classes: int, dropout: float = 0.0) -> nn.Module:
    return LinearHead(_pooled_width(backbone.info, "linear"), num_classes, dropout=float(dropout))


def build_mlp(backbone: Backbone, num_classes: int, hidden: int = 512, dropout: float = 0.1) -> nn.Module:
    return MLPHead(_pooled_width(backbone.info, "mlp"), num_classes, hidden=int(hidden), dropout=float(dropout))
