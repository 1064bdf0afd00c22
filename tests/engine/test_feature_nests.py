"""The feature cache stores any nest of tensors per example (a pyramid list, a dict), checks what a
task's ``features`` returns (one line blaming the task plugin otherwise), and its key follows the
task plugin's code: the same fingerprint rule as zoo select's score cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from modelzoo.engine.featurecache import FeatureSet, compute_features
from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import Trainer, finetune
from modelzoo.errors import ZooError
from modelzoo.testing import write_color_images
from modelzoo.util.nest import cat_nests, check_nest, index_nest, nest_rows, nests_equal


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colours")
    write_color_images(root / "train", 6, seed=0, size=16)
    write_color_images(root / "val", 2, seed=1, size=16)
    return root


def recipe(folder: Path, epochs: int = 2) -> dict:
    return {
        "name": "nests",
        "task": "image-classification",
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(folder), "image_size": 32, "batch_size": 6, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.01},
        "stages": [{"name": "head", "train": "head", "epochs": epochs}],
    }


def test_nest_helpers_keep_the_structure():
    a = {"pooled": torch.ones(2, 3), "pyramid": [torch.zeros(2, 4, 8, 8), torch.zeros(2, 8, 4, 4)]}
    b = {"pooled": torch.full((1, 3), 2.0), "pyramid": [torch.ones(1, 4, 8, 8), torch.ones(1, 8, 4, 4)]}
    joined = cat_nests([a, b])
    assert nest_rows(joined) == 3 and check_nest(joined) == 3 and isinstance(joined["pyramid"], list)
    assert nests_equal(index_nest(joined, torch.tensor([2])), b)
    with pytest.raises(ValueError, match=r"rows"):
        check_nest([torch.zeros(2, 3), torch.zeros(3, 3)])
    with pytest.raises(ValueError, match=r"holds a float"):
        check_nest([torch.zeros(2), 1.5])
    dataset = FeatureSet(joined, torch.arange(3))
    batch = DataLoader(dataset, batch_size=2, collate_fn=dataset.collate)
    feats, y = next(iter(batch))
    assert y.tolist() == [0, 1] and feats["pyramid"][1].shape == (2, 8, 4, 4)


def pyramid_task(monkeypatch, seen: list):
    """The image-classification task, its cached features made a pyramid of maps + the pooled vector."""
    from zoo_classification.classify import ClassificationTask

    original = (ClassificationTask.features, ClassificationTask.head_loss, ClassificationTask.evaluate_features)

    def features(self, model, batch):
        pooled, y = original[0](self, model, batch)
        return ({"pyramid": [pooled[:, :, None, None].expand(-1, -1, 2, 2), pooled[:, :4, None, None]],
                 "pooled": pooled}, y)  # fmt: skip

    def head_loss(self, model, feats, targets):
        seen.append(type(feats["pyramid"]))
        return original[1](self, model, feats["pyramid"][0].mean((2, 3)), targets)

    def evaluate_features(self, model, feats, targets):
        return original[2](self, model, feats["pooled"], targets)

    monkeypatch.setattr(ClassificationTask, "features", features)
    monkeypatch.setattr(ClassificationTask, "head_loss", head_loss)
    monkeypatch.setattr(ClassificationTask, "evaluate_features", evaluate_features)


def test_a_head_trains_on_cached_pyramids_and_reuses_them(folder, tmp_path, monkeypatch):
    seen: list = []
    pyramid_task(monkeypatch, seen)
    run = finetune(validate(recipe(folder)), out=tmp_path / "run", quiet=True)
    assert seen and set(seen) == {list} and run.metrics["loss"] > 0
    (cached,) = (tmp_path / "run" / "cache").glob("features-*.pt")
    stored = torch.load(cached, weights_only=True)
    assert isinstance(stored["train"]["pyramid"], list) and stored["train"]["pyramid"][1].shape == (18, 4, 1, 1)
    computed = []
    import modelzoo.engine.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "compute_features", lambda *a, **k: computed.append(1))
    finetune(validate(recipe(folder)), out=tmp_path / "again", quiet=True)
    assert computed == []  # the shared cache gave the same nest back


def test_a_wrong_features_return_is_one_line_blaming_the_task_plugin(folder, tmp_path, monkeypatch):
    from zoo_classification.classify import ClassificationTask

    monkeypatch.setattr(ClassificationTask, "features", lambda self, model, batch: [0.5, 0.25])
    trainer = Trainer(validate(recipe(folder)), tmp_path, quiet=True)
    trainer.setup()
    loader = trainer.loader(trainer.task.dataset("val"), shuffle=False)
    with pytest.raises(ZooError) as caught:
        compute_features(trainer.model, loader, trainer.task)
    message = str(caught.value)
    assert "\n" not in message and "modelzoo" not in message.split("(docs/")[0]
    assert message.startswith("task 'image-classification' (plugin classification): Task.features returned list")
    assert message.endswith("fix that task plugin")


def test_the_feature_key_follows_the_task_plugins_code(folder, tmp_path, monkeypatch, fake_site):
    import modelzoo.engine.trainer as trainer_module
    from modelzoo.catalog.plugins import code_fingerprint

    trainer = Trainer(validate(recipe(folder)), tmp_path, quiet=True)
    trainer.setup()
    key = trainer.feature_key()
    assert trainer.feature_key() == key
    monkeypatch.setattr(trainer_module, "task_fingerprint", lambda task: "edited")
    assert trainer.feature_key() != key
    # the fingerprint itself: a class's package source, edited in place (an editable install)
    fake_site.add_module("fpplug", "class T:\n    def features(self):\n        return 1\n")
    import importlib

    first = code_fingerprint(importlib.import_module("fpplug").T)
    fake_site.add_module("fpplug", "class T:\n    def features(self):\n        return [1]\n")
    assert code_fingerprint(importlib.import_module("fpplug").T)["source"] != first["source"]
