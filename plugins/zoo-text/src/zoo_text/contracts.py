"""What the text-classification task requires of a backbone and a head, declared as base classes.

The core knows no model family, so text models meet the task through two small classes instead of
attribute guessing: a backbone that reads text subclasses :class:`TextBackbone` (it tokenizes, and
says how long an input may be), and a head that pools token states itself subclasses
:class:`SequenceClassifierHead` (pooling and classifying are separate steps, so the engine's feature
cache can store pooled embeddings of a frozen encoder and train only the classifier on them). The
task checks both with ``isinstance``; a plugin that forgets a method fails with its class's name.

A text backbone's input is what :func:`pad_batch` builds: ``{"input_ids", "attention_mask"}``, both
``(B, T)`` long tensors, padded per batch with the backbone's ``pad_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from modelzoo.sdk import Backbone, ZooError

if TYPE_CHECKING:
    from modelzoo.sdk import TaskModel


class TextBackbone(Backbone):
    """A backbone that reads text: ``{"input_ids", "attention_mask"}`` -> ``sequence`` ``(hidden (B, T, C),
    mask (B, T))`` or ``pooled`` ``(B, C)`` features, plus the tokenizer that makes those ids.

    Subclasses implement the three members below; the tokenizer's files travel with a saved model
    through the ``save_files`` / ``load_files`` every :class:`~modelzoo.sdk.Backbone` declares.
    """

    def encode_texts(self, texts: list[str], max_length: int) -> tuple[list[list[int]], int]:
        """Token ids per text (special tokens included, at most ``max_length``) and how many texts were cut."""
        raise NotImplementedError(f"{type(self).__name__}.encode_texts")

    @property
    def pad_id(self) -> int:
        """The token id that fills a batch up to its longest text (the attention mask hides it)."""
        raise NotImplementedError(f"{type(self).__name__}.pad_id")

    @property
    def max_positions(self) -> int:
        """The longest input the encoder can take, in tokens (a recipe's ``max_length`` may not exceed it)."""
        raise NotImplementedError(f"{type(self).__name__}.max_positions")


class SequenceClassifierHead(nn.Module):
    """A head on ``sequence`` features: ``pool`` the token states to one vector, then ``classify`` it.

    ``pool`` must have no parameters: with a frozen encoder the feature cache stores its output once
    per example and only ``classify`` trains on it. A head whose pooling learns (attention pooling)
    should not subclass this; the task then trains it without the cache.
    """

    def pool(self, features: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``(hidden (B, T, C), mask (B, T))`` -> ``(B, C)``."""
        raise NotImplementedError(f"{type(self).__name__}.pool")

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` pooled features -> ``(B, num_classes)`` logits."""
        raise NotImplementedError(f"{type(self).__name__}.classify")

    def forward(self, features: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.classify(self.pool(features))


def text_backbone(model: TaskModel) -> TextBackbone:
    """The model's backbone, checked to be a text encoder (it tokenizes)."""
    bb = model.backbone
    if not isinstance(bb, TextBackbone):
        raise ZooError(
            f"backbone {model.config['backbone']['name']!r} is not a text encoder (no tokenizer); pick one from"
            " zoo list --task text --kind backbone"
        )
    return bb


def pad_batch(ids: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Token ids of several texts as one batch, padded to the longest (dynamic padding, not ``max_length``)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}
