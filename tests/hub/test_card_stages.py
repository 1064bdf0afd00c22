"""The model card says which epoch's weights each stage kept (early stopping, keep_better, EMA)."""

from __future__ import annotations

from modelzoo.hub.card import stage_lines


def test_card_names_the_best_epoch_and_the_weights_kept():
    stages = [
        {"name": "head", "epochs_run": 3, "stopped_early": False, "best_epoch": 3, "kept": "last"},
        {"name": "tune", "epochs_run": 4, "stopped_early": True, "best_epoch": 2, "kept": "best"},
        {"name": "more", "epochs_run": 2, "stopped_early": False, "best_epoch": 0, "kept": "start"},
    ]
    text = "\n".join(stage_lines(stages))
    assert "- stage `tune`: 4 epoch(s), stopped early, best epoch 2; kept the best epoch's weights" in text
    assert "- stage `more`: 2 epoch(s), no epoch improved on its start; kept the weights it started with" in text
    assert stage_lines(None) == [] and stage_lines("junk") == []
