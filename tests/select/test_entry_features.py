"""The entry features ``zoo select`` scores beside the final ones: where a recipe's training starts,
what the hook captures there, that a stopping pass runs nothing beyond it, and that a cached
selection reads them back instead of recomputing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import Trainer
from modelzoo.select.entry_features import capture, entry_point, forward_until, pool, stack
from modelzoo.testing import write_color_images

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(tmp_path: Path, train: str) -> Trainer:
    data = tmp_path / "colors"
    write_color_images(data / "train", 4, seed=0)
    write_color_images(data / "val", 2, seed=1)
    recipe = validate(
        {
            "name": "entry",
            "seed": 0,
            "device": "cpu",
            "model": {"backbone": "timm:test_efficientnet", "pretrained": False, "head": "linear"},
            "data": {"path": str(data), "image_size": 32, "batch_size": 4, "mean": [0.5] * 3, "std": [0.5] * 3},
            "optimizer": {"lr": 0.01},
            "stages": [{"name": "head", "train": "head", "epochs": 1}, {"name": "tune", "train": train, "epochs": 1}],
        }
    )
    trainer = Trainer(recipe, tmp_path / "run", quiet=True)
    trainer.setup()
    return trainer


def test_the_entry_is_the_module_holding_the_first_trained_group(tmp_path):
    trainer = _trainer(tmp_path, "last:3")
    entry = entry_point(trainer.model, trainer.recipe)
    assert entry is not None
    names = [p for p, _ in entry.module.named_parameters(prefix=entry.path)]
    from modelzoo.engine.training import backbone_groups

    groups = backbone_groups(trainer.model)
    trained = {p for _, params in groups[-3:] for p in params}
    assert entry.group == groups[-3][0] and names and set(names) <= trained


@pytest.mark.parametrize("train", ["all", "head"])
def test_no_entry_when_nothing_below_training_is_frozen_or_nothing_trains(tmp_path, train):
    trainer = _trainer(tmp_path, train)
    assert entry_point(trainer.model, trainer.recipe) is None


def test_no_entry_when_the_groups_module_also_holds_frozen_layers(tmp_path):
    """timm's last EfficientNet group is the last block plus conv_head and bn2, whose only common
    module is the whole network: its input is the image, not where training starts."""
    trainer = _trainer(tmp_path, "last:1")
    assert entry_point(trainer.model, trainer.recipe) is None
    trainer = _trainer(tmp_path / "2", "last:2")
    entry = entry_point(trainer.model, trainer.recipe)
    assert entry is not None and entry.path == "backbone.model.blocks.3.0"


def test_capture_pools_maps_and_a_stopping_pass_runs_nothing_beyond_the_entry():
    calls: list[str] = []

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 5, 3, padding=1)
            self.b = nn.Conv2d(5, 7, 3, padding=1)

        def forward(self, x):
            calls.append("a")
            x = self.a(x)
            calls.append("b")
            x = self.b(x)
            calls.append("end")
            return x

    from modelzoo.select.entry_features import Entry

    net = Net()
    entry = Entry("b", "b", net.b, channels=5)
    x = torch.randn(2, 3, 6, 6)
    with capture(entry) as seen:
        net(x)
    assert calls == ["a", "b", "end"] and torch.allclose(seen[0], net.a(x).mean(dim=(2, 3)))
    calls.clear()
    with capture(entry, stop=True) as seen:
        forward_until(lambda: net(x))
    assert calls == ["a", "b"] and seen[0].shape == (2, 5)  # stopped at b's input
    out = net(x)  # the hook is gone
    assert out.shape == (2, 7, 6, 6)
    assert stack(seen, 2, 2).shape == (2, 5)
    assert pool(torch.zeros(2, 4, 3), 4) is None and pool(torch.ones(2, 4), None).shape == (2, 4)


def test_pool_finds_the_channel_axis_and_refuses_to_guess():
    nchw = torch.arange(2 * 5 * 3 * 4, dtype=torch.float32).reshape(2, 5, 3, 4)
    assert torch.equal(pool(nchw, 5), nchw.mean(dim=(2, 3)))
    nhwc = nchw.permute(0, 2, 3, 1)  # the same map, channels last (as Swin-style stages take it)
    assert torch.equal(pool(nhwc, 5), nchw.mean(dim=(2, 3)))
    assert pool(torch.zeros(2, 4, 3, 4), 4) is None  # both axes match: ambiguous
    assert pool(nchw, 7) is None and pool(nchw, None) is None  # neither matches, or width unknown
    assert stack([torch.ones(2, 3), torch.zeros(2, 3)], 3, 4).shape == (3, 3)
    assert stack([torch.ones(2, 3), None], 2, 4) is None and stack([torch.ones(2, 3)], 2, 3) is None
