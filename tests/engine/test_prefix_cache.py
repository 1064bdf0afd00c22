"""The frozen-prefix cache (:mod:`modelzoo.engine.prefixcache`): a stage fine-tuning the last layer groups
trains on the frozen layers' outputs computed once, with the result of the full model; where the frozen
layers are random in training (drop path) it measures that and runs them every epoch; and a run using it
resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import Interrupted, finetune
from modelzoo.testing import interrupted_after_checkpoints, write_color_images

pytestmark = pytest.mark.usefixtures("one_thread", "real_catalog")


@pytest.fixture(scope="module")
def colors(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colors")
    write_color_images(root / "train", 8, seed=0)
    write_color_images(root / "val", 4, seed=1)
    return root


def recipe(
    colors: Path, backbone_options: dict | None = None, epochs: int = 2, backbone: str = "timm:test_convnext"
) -> dict:
    return {
        "name": "prefix",
        "seed": 0,
        "device": "cpu",
        "task": "image-classification",
        "model": {
            "backbone": backbone,
            "pretrained": False,
            "head": "linear",
            "backbone_options": backbone_options or {},
        },
        "data": {"path": str(colors), "image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.01, "layer_decay": 0.5},
        "stages": [
            {"name": "head", "train": "head", "epochs": 1},
            {"name": "tune", "train": "last:2", "epochs": epochs, "lr": 0.003, "keep_better": False},
        ],
    }


def no_prefix_cache(monkeypatch) -> None:
    import zoo_classification.task as image_task

    monkeypatch.setattr(image_task.ImageClassification, "batch_input", None)


def strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_a_partial_fine_tune_trains_on_the_frozen_layers_outputs_with_the_full_models_result(
    colors, tmp_path, monkeypatch, capsys
):
    cached = finetune(validate(recipe(colors)), out=tmp_path / "cached")
    said = capsys.readouterr().err
    assert "stage 1 'tune': train head + group4, group5 on cached group4 inputs" in said, said
    no_prefix_cache(monkeypatch)
    full = finetune(validate(recipe(colors)), out=tmp_path / "full")
    assert "cached group4 inputs" not in capsys.readouterr().err
    for a, b in zip(strip(cached.history), strip(full.history)):
        assert a.keys() == b.keys()
        assert all(a[k] == (pytest.approx(b[k], rel=1e-4, abs=1e-5) if isinstance(b[k], float) else b[k]) for k in a)
    assert cached.metrics == pytest.approx(full.metrics, rel=1e-4, abs=1e-5)
    x, y = load_file(str(cached.path / "model.safetensors")), load_file(str(full.path / "model.safetensors"))
    assert x.keys() == y.keys()  # the skipped layers' weights are in the model, saved
    assert all(torch.allclose(x[k], y[k], rtol=1e-4, atol=1e-5) for k in x)


def test_frozen_layers_that_are_random_in_training_run_every_epoch(colors, tmp_path, capsys):
    """Drop path in the frozen residual blocks makes their output random in training: measured, not cached.
    (Residual branches must be live for that: timm zero-initialises ResNet's last BatchNorm of each block,
    and ConvNeXt scales its branches by 1e-6, so at random init their outputs agree and caching is right.)"""
    options = {"drop_path_rate": 0.5, "zero_init_last": False}
    finetune(validate(recipe(colors, options, backbone="timm:test_resnet")), out=tmp_path / "run")
    said = capsys.readouterr().err
    assert "the frozen layers run every epoch: the frozen layers below the entry differ in training mode" in said
    assert "cached group3 inputs" not in said and "stage 1 'tune': train head + group3, group4 (" in said


def test_a_run_on_cached_frozen_outputs_resumes_exactly(colors, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_CHECKPOINT_SECONDS", "0")  # a checkpoint after every epoch
    r = recipe(colors, epochs=3)
    reference = finetune(validate(r), out=tmp_path / "ref", quiet=True)
    with interrupted_after_checkpoints(2) as saved, pytest.raises(Interrupted):  # in stage 1, after its first epoch
        finetune(validate(r), out=tmp_path / "run", quiet=True)
    resumed = finetune(resume=tmp_path / "run", quiet=True)
    assert saved[-1] == (1, 1)
    assert strip(resumed.history) == strip(reference.history)
    assert resumed.metrics == reference.metrics
    a, b = load_file(str(resumed.path / "model.safetensors")), load_file(str(reference.path / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
