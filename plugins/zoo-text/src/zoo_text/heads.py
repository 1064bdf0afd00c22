"""Classifier heads for ``sequence`` encoders: pool the tokens (first token or masked mean), then classify.

Pooling is part of the head, not the encoder, so one encoder serves both styles: BERT was
pre-trained with its ``[CLS]`` token, sentence-transformers models (MiniLM) with mean pooling.
``pool`` has no parameters, so the engine's feature cache can store pooled embeddings of a frozen
encoder and train only ``classify`` on them: the heads are :class:`~zoo_text.contracts.SequenceClassifierHead`
subclasses, which is how the text-classification task knows it may call the two halves.
"""

from __future__ import annotations

import torch
from torch import nn

from modelzoo.sdk import Backbone, ZooError

from .contracts import SequenceClassifierHead
from .encoders import pool


class PoolingClassifier(SequenceClassifierHead):
    """``(hidden, mask)`` -> pooled ``(B, C)`` -> dropout -> [Linear-GELU-Dropout] -> Linear -> logits."""

    def __init__(self, width: int, num_classes: int, pooling: str, dropout: float = 0.1, hidden: int = 0) -> None:
        super().__init__()
        self.pooling = pooling
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)

    def pool(self, features: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        hidden, mask = features
        return pool(hidden, mask, self.pooling)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)


def _width(backbone: Backbone, head: str) -> int:
    if backbone.info.output_kind != "sequence" or not backbone.info.num_features:
        raise ZooError(f"head {head!r} consumes sequence features; the backbone emits {backbone.info.output_kind}")
    return int(backbone.info.num_features)


def build_mean(backbone: Backbone, num_classes: int, dropout: float = 0.1, hidden: int = 0) -> PoolingClassifier:
    return PoolingClassifier(_width(backbone, "mean-pool"), num_classes, "mean", float(dropout), int(hidden))


def build_cls(backbone: Backbone, num_classes: int, dropout: float = 0.1, hidden: int = 0) -> PoolingClassifier:
    return PoolingClassifier(_width(backbone, "cls-pool"), num_classes, "cls", float(dropout), int(hidden))
