"""Recipe options that decide what a stage ends with, and every training option resuming exactly:
the moving average (evaluated and saved), early stopping with best-epoch restore, the keep-the-better-
weights guard, and (from the image plugin) augmentation presets, random erasing, mixup / cutmix,
label smoothing and class weights, each interrupted after a checkpoint and resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modelzoo.engine.recipe import validate
from modelzoo.engine.stopping import StageKeeper
from modelzoo.engine.trainer import Interrupted, finetune
from modelzoo.errors import RecipeError
from modelzoo.testing import interrupted_after_checkpoints, write_color_images


@pytest.fixture(scope="module")
def colors(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colors")
    write_color_images(root / "train", 8, seed=0)
    write_color_images(root / "val", 4, seed=1)
    return root


def recipe(colors: Path, tune: dict | None = None, data: dict | None = None, epochs: int = 2) -> dict:
    return {
        "name": "opts",
        "seed": 0,
        "device": "cpu",
        "task": "image-classification",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(colors), "image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3}
        | (data or {}),
        "optimizer": {"lr": 0.01, "layer_decay": 0.5},
        "stages": [
            {"name": "head", "train": "head", "epochs": 2},
            {"name": "tune", "train": "all", "epochs": epochs, "lr": 0.003} | (tune or {}),
        ],
    }


def summary(run) -> dict:
    return json.loads((run.path / "summary.json").read_text())


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


#: a fine-tune stage whose lr ruins the trained head (accuracy 1.0 -> chance)
RUINOUS = {"lr": 3.0, "schedule": "constant"}


def test_keep_better_never_ends_a_stage_worse_than_it_started(colors, tmp_path, capsys):
    kept = finetune(validate(recipe(colors, RUINOUS)), out=tmp_path / "kept")
    err = capsys.readouterr().err
    assert "kept the weights stage 1 'tune' started with: val_accuracy 1.0000 there" in err
    stages = summary(kept)["stages"]
    assert stages[1]["kept"] == "start" and stages[1]["best_epoch"] == 0
    assert kept.metrics["accuracy"] == stages[0]["val"]["accuracy"] == 1.0
    ruined = finetune(validate(recipe(colors, {**RUINOUS, "keep_better": False})), out=tmp_path / "ruined", quiet=True)
    assert ruined.metrics["accuracy"] < 0.7  # what the guard saved us from
    assert summary(ruined)["stages"][1]["kept"] == "last"


def test_early_stopping_stops_and_restores(colors, tmp_path):
    run = finetune(
        validate(recipe(colors, {**RUINOUS, "early_stopping": {"patience": 1}}, epochs=4)), out=tmp_path / "r"
    )
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in rows] == [(0, 0), (0, 1), (1, 0)]  # stopped after one bad epoch
    record = summary(run)["stages"][1]
    assert record["stopped_early"] and record["epochs_run"] == 1 and record["kept"] == "start"
    assert run.metrics["accuracy"] == 1.0


def test_keeper_restores_the_best_epoch():
    model = torch.nn.Linear(2, 1)
    stage = validate(recipe(Path("."), {"early_stopping": {"patience": 2, "min_delta": 0.01}})).stages[1]
    keeper = StageKeeper(model, stage, "accuracy", True, start=None)
    stops = []
    for epoch, acc in enumerate([0.5, 0.7, 0.705, 0.6]):
        model.weight.data.fill_(epoch)
        stops.append(keeper.end_epoch(epoch, {"loss": 1.0, "accuracy": acc}))
    assert stops == [False, False, False, True]  # 0.705 is within min_delta of 0.7: no gain
    results: list[dict] = []
    note = keeper.finish(1, "tune", 4, True, results)
    assert torch.all(model.weight == 1) and results[0]["best_epoch"] == 2 and results[0]["kept"] == "best"
    assert "early stopping after epoch 4" in note and "restored the best epoch's weights: epoch 2" in note


def test_ema_weights_differ_from_the_raw_ones_and_are_saved(colors, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_CHECKPOINT_SECONDS", "0")
    raw = finetune(validate(recipe(colors, {"keep_better": False})), out=tmp_path / "raw", quiet=True)
    ema = finetune(validate(recipe(colors, {"keep_better": False, "ema_decay": 0.9})), out=tmp_path / "ema", quiet=True)
    # the average does not disturb training: the same steps, so the raw run's weights are the raw weights
    assert [h["train_loss"] for h in raw.history] == [h["train_loss"] for h in ema.history]
    a, b = weights(raw.path), weights(ema.path)
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("backbone."))
    shadow = torch.load(ema.path / "checkpoint" / "last.pt", weights_only=True)["stage_state"]["ema"]["shadow"]
    for name, value in shadow.items():
        if name in b:
            assert torch.equal(b[name], value.contiguous()), name  # the saved weights are the average
    assert summary(ema)["stages"][1]["kept"] == "ema"


@pytest.mark.parametrize(
    "tune, data",
    [
        ({"ema_decay": 0.9}, {}),
        ({"early_stopping": {"patience": 2, "metric": "loss"}}, {}),
        ({**RUINOUS}, {}),  # keep_better: the starting weights travel in the checkpoint
        ({"augment": True}, {"augment": "trivialaugment", "random_erasing": 0.5}),
        ({"augment": True}, {"augment": "randaugment", "mixup": 0.5, "cutmix": 0.5}),
        ({}, {"label_smoothing": 0.1, "class_weights": "balanced"}),
    ],
    ids=["ema", "early_stopping", "keep_better", "augment", "mixup_cutmix", "loss_options"],
)
def test_every_option_resumes_exactly(colors, tmp_path, monkeypatch, tune, data):
    monkeypatch.setenv("MODELZOO_CHECKPOINT_SECONDS", "0")  # a checkpoint after every epoch
    r = recipe(colors, tune, data, epochs=3)
    reference = finetune(validate(r), out=tmp_path / "ref", quiet=True)
    with interrupted_after_checkpoints(3), pytest.raises(Interrupted):  # once stage 1's first epoch is checkpointed
        finetune(validate(r), out=tmp_path / "run", quiet=True)
    resumed = finetune(resume=tmp_path / "run", quiet=True)
    assert resumed.metrics == reference.metrics

    def strip(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert strip(resumed.history) == strip(reference.history)
    assert summary(resumed)["stages"] == summary(reference)["stages"]
    a, b = weights(resumed.path), weights(reference.path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ema_decay": 1.5}, "stages.1.ema_decay: 1.5 must be between 0 and 1"),
        ({"early_stopping": {"min_delta": 0.1}}, "stages.1.early_stopping.patience: give a whole number"),
        ({"early_stopping": {"patience": 2, "metric": "f1"}}, "stages.1.early_stopping.metric: 'f1' is not"),
        ({"early_stopping": {"patience": 2, "wait": 1}}, "stages.1.early_stopping.wait: unknown key"),
    ],
)
def test_stage_options_are_checked_in_one_line(colors, change, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(")) as err:
        validate(recipe(colors, change))
    assert "\n" not in str(err.value)


def test_augment_presets_follow_the_tasks_declaration(colors, real_catalog):
    with pytest.raises(
        RecipeError, match=r"data.augment: 'randaugmnt' is not one of none, light, trivialaugment, rand"
    ):
        validate(recipe(colors, data={"augment": "randaugmnt"}))
    detection = {
        "task": "object-detection",
        "model": {"backbone": "timm:mobilenetv3_small_050", "head": "fasterrcnn", "pretrained": False},
        "data": {"augment": "randaugment"},
        "stages": [{"train": "head"}],
    }
    with pytest.raises(RecipeError, match=r"is not one of none, light \(the presets object-detection declares\)"):
        validate(detection)


def test_kill_9_with_every_option_resumes_exactly(colors, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import tomli_w

    r = recipe(
        colors,
        {"ema_decay": 0.9, "early_stopping": {"patience": 3}, "augment": True},
        {"augment": "trivialaugment", "random_erasing": 0.25, "mixup": 0.5, "label_smoothing": 0.1},
        epochs=4,
    )
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(r))
    reference = finetune(str(path), out=tmp_path / "ref", quiet=True)
    run_dir = tmp_path / "killed"
    env = {**os.environ, "MODELZOO_CHECKPOINT_SECONDS": "0"}
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(path), "--out", str(run_dir), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    metrics, deadline = run_dir / "metrics.jsonl", time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # kill -9 during the fine-tune stage
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make the recipe longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = finetune(resume=run_dir, quiet=True)
    assert resumed.metrics == reference.metrics
    assert summary(resumed)["stages"] == summary(reference)["stages"]
    a, b = weights(resumed.path), weights(reference.path)
    assert all(torch.equal(a[k], b[k]) for k in a)
