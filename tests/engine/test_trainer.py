"""The fine-tune engine on a tiny timm model and tiny real image files: stages, freezing,
layer decay, feature cache, resume after kill -9, eval/predict round trip, run-folder safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import modelzoo
from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import Trainer, compute_features, finetune
from modelzoo.engine.training import backbone_groups, param_groups, select_groups, set_trainable, train_mode
from modelzoo.errors import ZooError
from modelzoo.testing import write_color_images


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colors")
    write_color_images(root / "train", 12, seed=0)
    write_color_images(root / "val", 4, seed=1)
    return root


def recipe_dict(folder: Path, backbone: str = "timm:test_convnext", **stages_override) -> dict:
    return {
        "name": "tiny",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": backbone, "pretrained": False, "head": "linear"},
        "data": {
            "path": str(folder),
            "image_size": 32,
            "batch_size": 8,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        },
        "optimizer": {"lr": 0.01, "layer_decay": 0.5},
        "stages": stages_override.get(
            "stages",
            [
                {"name": "head", "train": "head", "epochs": 2},
                {"name": "tune", "train": "last:1", "epochs": 2, "lr": 0.005, "warmup_epochs": 0.5},
            ],
        ),
    }


@pytest.fixture()
def trainer(folder, tmp_path) -> Trainer:
    # an EfficientNet: BatchNorm everywhere, so freezing its statistics can be checked
    t = Trainer(validate(recipe_dict(folder, backbone="timm:test_efficientnet")), tmp_path / "run", quiet=True)
    t.setup()
    return t


def test_head_stage_freezes_backbone_and_its_batchnorm(trainer):
    model = trainer.model
    n = set_trainable(model, trainer.groups, [])
    assert n == sum(p.numel() for p in model.head.parameters())
    assert all(not p.requires_grad for p in model.backbone.parameters())
    bn = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    train_mode(model, backbone_frozen=True)
    model(torch.randn(4, 3, 32, 32) * 3 + 1).sum().backward()
    assert torch.equal(bn.running_mean, before), "frozen BatchNorm statistics must not move"
    assert model.head.training and not model.backbone.training


def test_unfreezing_last_group_gives_gradients_only_there(trainer):
    model, groups = trainer.model, trainer.groups
    last = select_groups("last:1", groups, "stages.1")
    assert last == [groups[-1][0]]
    set_trainable(model, groups, last)
    train_mode(model, backbone_frozen=False)
    model.zero_grad()
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    trainable = set(groups[-1][1])
    for name, p in model.named_parameters():
        has_grad = p.grad is not None and bool(p.grad.abs().sum() > 0)
        if name.startswith("head.") or name in trainable:
            assert p.requires_grad
        else:
            assert not p.requires_grad and not has_grad, name
    # BN layers in frozen groups stay in eval mode, those in trainable groups train
    frozen_bn = [
        m
        for n, m in model.backbone.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d) and not m.weight.requires_grad
    ]
    assert frozen_bn and all(not m.training for m in frozen_bn)


def test_select_groups_errors_name_the_groups(trainer):
    names = [g for g, _ in trainer.groups]
    with pytest.raises(ZooError, match="unknown group"):
        select_groups(["nope"], trainer.groups, "stages.1")
    with pytest.raises(ZooError, match=f"has {len(names)} groups"):
        select_groups(f"last:{len(names) + 1}", trainer.groups, "stages.1")
    assert select_groups("all", trainer.groups, "s") == names


def test_layer_decay_scales_learning_rates(trainer):
    model, groups = trainer.model, trainer.groups
    set_trainable(model, groups, [g for g, _ in groups])
    pg = param_groups(model, groups, lr=1.0, weight_decay=0.05, layer_decay=0.5)
    by_name = {g["name"]: g for g in pg}
    n = len(groups)
    for i, (gname, _) in enumerate(groups):
        assert by_name[f"backbone:{gname}"]["lr"] == pytest.approx(0.5 ** (n - i))
    assert by_name["head"]["lr"] == 1.0
    assert by_name["head/no_decay"]["weight_decay"] == 0.0  # biases are not decayed
    covered = sum(len(g["params"]) for g in pg)
    assert covered == sum(1 for p in model.parameters() if p.requires_grad)


def test_feature_cache_equals_recomputed_features(trainer):
    loader = trainer.loader(trainer.task.dataset("val"), shuffle=False)
    feats, ys = compute_features(trainer.model, loader, trainer.task)
    trainer.model.eval()
    with torch.no_grad():
        # in the memory format the feature pass uses (channels_last where measured faster: under load the
        # measurement can flip, and NCHW sums in another order)
        direct = torch.cat([trainer.model.backbone(trainer.task.to_device(x)) for x, _ in loader])
    torch.testing.assert_close(feats, direct, rtol=1e-4, atol=1e-5)
    assert ys.tolist() == trainer.task.loaded.val.targets


def test_data_seed_holds_the_data_while_seed_varies(folder, tmp_path):
    """Subsets are drawn with data_seed (default: seed): two training seeds with one data_seed load
    the same examples, and the feature cache key follows the data, not the training seed."""

    def trainers(**top):
        out = []
        for seed in (0, 1):
            raw = recipe_dict(folder)
            raw["data"]["train_limit"] = 18
            t = Trainer(validate({**raw, "seed": seed, **top}), tmp_path / f"r{seed}", quiet=True)
            t.setup()
            out.append(t)
        out[1].model.backbone.load_state_dict(out[0].model.backbone.state_dict())  # same weights: only data differs
        return out

    a, b = trainers(data_seed=5)
    assert a.task.loaded.train.paths == b.task.loaded.train.paths and a.feature_key() == b.feature_key()
    a, b = trainers()
    assert a.task.loaded.train.paths != b.task.loaded.train.paths and a.feature_key() != b.feature_key()


def test_finetune_writes_complete_run_folder_and_learns(folder, tmp_path):
    run = finetune(validate(recipe_dict(folder)), out=tmp_path / "run", quiet=True)
    for f in (
        "config.json",
        "model.safetensors",
        "recipe.toml",
        "metrics.jsonl",
        "summary.json",
        "training_curves.png",
        "confusion_matrix.png",
        "checkpoint/last.pt",
    ):
        assert (run.path / f).is_file(), f
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert run.metrics["accuracy"] >= 0.9, run.metrics  # colours are trivially separable
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["labels"] == ["blue", "green", "red"] and cfg["preprocess"]["input_size"] == [3, 32, 32]
    # the run folder refuses to be overwritten
    with pytest.raises(ZooError, match="already holds a run"):
        finetune(validate(recipe_dict(folder)), out=run.path, quiet=True)


def test_eval_and_predict_round_trip(folder, tmp_path):
    run = finetune(validate(recipe_dict(folder)), out=tmp_path / "run", quiet=True)
    model = modelzoo.load(run.path)
    img = folder / "val" / "red" / "0.png"
    (label, score), *_ = model.predict([img], top_k=2)[0]
    assert label == "red" and 0 < score <= 1
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [sys.executable, "-m", "modelzoo", "eval", str(run.path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result = json.loads(out.stdout)
    summary = json.loads((run.path / "summary.json").read_text())
    assert result["accuracy"] == pytest.approx(summary["metrics"]["accuracy"])
    assert sum(map(sum, result["confusion_matrix"])) == 12
    out = subprocess.run(
        [sys.executable, "-m", "modelzoo", "eval", str(run.path), "--data", str(folder / "val"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(out.stdout)["accuracy"] == pytest.approx(result["accuracy"])  # the same images, given as a folder
    out = subprocess.run(
        [sys.executable, "-m", "modelzoo", "predict", str(run.path), str(img), "--top-k", "1", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(out.stdout)[0]["predictions"][0]["label"] == "red"


def test_resume_after_kill_9_matches_uninterrupted_run(folder, tmp_path):
    recipe = tmp_path / "r.toml"
    d = recipe_dict(
        folder,
        stages=[
            {"name": "head", "train": "head", "epochs": 3},
            {"name": "tune", "train": "all", "epochs": 3, "lr": 0.003},
        ],
    )
    import tomli_w

    recipe.write_text(tomli_w.dumps(d))
    reference = finetune(str(recipe), out=tmp_path / "ref", quiet=True)

    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(recipe), "--out", str(run_dir), "--quiet"]
    # a checkpoint after every epoch, however fast, so the kill lands between two of them
    env = {**os.environ, "MODELZOO_CHECKPOINT_SECONDS": "0"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    ckpt = run_dir / "checkpoint" / "last.pt"
    # kill -9 once the fine-tune stage is under way (after the 4th checkpoint: stage 1 epoch 1 running)
    while time.time() < deadline and proc.poll() is None:
        if (
            ckpt.exists()
            and (run_dir / "metrics.jsonl").exists()
            and len((run_dir / "metrics.jsonl").read_text().splitlines()) >= 4
        ):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make the recipe longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "model.safetensors").exists()

    resumed = finetune(resume=run_dir, quiet=True)
    assert resumed.metrics == reference.metrics

    def strip(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert strip(resumed.history) == strip(reference.history)
    a, b = load_file(str(run_dir / "model.safetensors")), load_file(str(tmp_path / "ref" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_different_recipe(folder, tmp_path):
    import tomli_w

    run = finetune(
        validate(recipe_dict(folder, stages=[{"train": "head", "epochs": 1}])), out=tmp_path / "run", quiet=True
    )
    other = tmp_path / "other.toml"
    other.write_text(tomli_w.dumps(recipe_dict(folder, stages=[{"train": "head", "epochs": 2}])))
    with pytest.raises(ZooError, match="differs"):
        finetune(str(other), resume=run.path, quiet=True)


def test_backbone_groups_cover_every_parameter(trainer):
    grouped = [p for _, params in backbone_groups(trainer.model) for p in params]
    assert sorted(grouped) == sorted(n for n, _ in trainer.model.backbone.named_parameters(prefix="backbone"))
    assert len(grouped) == len(set(grouped))


def test_freeze_bn_stats_keeps_trainable_batchnorm_in_eval(trainer):
    model, groups = trainer.model, trainer.groups
    set_trainable(model, groups, [g for g, _ in groups])
    train_mode(model, backbone_frozen=False)
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.training for m in bns)
    train_mode(model, backbone_frozen=False, freeze_bn_stats=True)
    assert all(not m.training for m in bns) and model.head.training
    before = bns[-1].running_var.clone()
    model(torch.randn(4, 3, 32, 32) * 5).sum().backward()
    assert torch.equal(bns[-1].running_var, before)
    assert bns[-1].weight.grad is not None  # still trained, only the statistics are fixed
