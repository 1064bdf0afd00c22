"""Macro averages count the classes an evaluation has (or predicts), not every class of the model."""

from __future__ import annotations

import torch
from zoo_classification.classify import summarize


def test_an_eval_on_a_subset_of_classes_is_not_dragged_down_by_absent_ones():
    targets = torch.tensor([0, 0, 1, 1])
    logits = torch.nn.functional.one_hot(targets, 5).float() * 10  # every answer right, 3 classes never seen
    out = summarize(logits, targets, num_classes=5, with_confusion=True)
    assert out["accuracy"] == 1.0
    assert out["macro_precision"] == 1.0 and out["macro_recall"] == 1.0  # was 0.4: averaged over all 5
    wrong = summarize(torch.nn.functional.one_hot(torch.tensor([2, 0, 1, 1]), 5).float(), targets, 5, True)
    assert abs(wrong["macro_recall"] - (0.5 + 1.0 + 0.0) / 3) < 1e-6  # class 2 was predicted, so it counts
