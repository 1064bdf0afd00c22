"""The lr range test (``zoo finetune RECIPE --find-lr``) on a tiny timm model and tiny image files:
it suggests an lr inside the tested range and below where the loss blows up, writes its plot, is
deterministic, leaves no run behind, and rejects bad arguments with one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from modelzoo.cli.main import main
from modelzoo.engine.lr_finder import find_lr, suggest
from modelzoo.engine.recipe import validate
from modelzoo.errors import ZooError
from modelzoo.testing import write_color_images

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run faster on one thread


@pytest.fixture(autouse=True)
def only_the_plugins_used(monkeypatch):
    """The image task and timm's test models are all these tests build (a smaller catalog, faster)."""
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,classification,timm")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colors")
    write_color_images(root / "train", 8, seed=0, size=16)
    write_color_images(root / "val", 2, seed=1, size=16)
    return root


def recipe(folder: Path) -> dict:
    return {
        "name": "tiny",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_efficientnet", "pretrained": False, "head": "linear"},
        "data": {"path": str(folder), "image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.01, "layer_decay": 0.5},
        "stages": [
            {"name": "head", "train": "head", "epochs": 1},
            {"name": "tune", "train": "last:1", "epochs": 1, "lr": 0.005},
        ],
    }


def test_suggestion_lies_in_the_range_below_the_divergence(folder, tmp_path):
    out = tmp_path / "find"
    result = find_lr(validate(recipe(folder)), out=out, stage=1, start_lr=1e-5, end_lr=100.0, steps=60, quiet=True)
    assert result.stage == 1 and result.stage_name == "tune"
    # the lrs grow geometrically from start_lr; the test stopped early because the loss blew up
    assert result.lrs[0] == pytest.approx(1e-5)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios)) and ratios[0] > 1
    assert result.diverged_at is not None and len(result.lrs) < 60, "lr 100 must make the loss diverge"
    assert result.diverged_at == result.lrs[-1]
    assert 1e-5 <= result.suggestion < result.diverged_at
    assert 1e-5 <= result.steepest < result.diverged_at
    # the suggestion sits where the loss is falling: below the loss at the start of the test
    at = result.lrs.index(result.suggestion)
    assert result.losses[at] < result.losses[len(result.lrs) // 10]
    assert (out / "lr_finder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "lr_finder.json").read_text())
    assert saved["suggestion"] == result.suggestion and len(saved["lrs"]) == len(result.lrs)
    # no run is left behind: the folder can still take the real run
    assert not (out / "checkpoint").exists() and not (out / "model.safetensors").exists()


def test_head_stage_on_cached_features_is_deterministic(folder, tmp_path):
    runs = [
        find_lr(validate(recipe(folder)), out=tmp_path / f"r{i}", stage=0, steps=40, end_lr=1e3, quiet=True)
        for i in range(2)
    ]
    assert runs[0].raw_losses == runs[1].raw_losses
    assert runs[0].suggestion == runs[1].suggestion
    assert list((tmp_path / "r0" / "cache").glob("features-*.pt")), "a frozen stage trains on cached features"


def test_cli_prints_the_suggestion(folder, tmp_path, capsys):
    import tomli_w

    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(recipe(folder)))
    code = main(["finetune", str(path), "--find-lr", "0", "--out", str(tmp_path / "f"), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    shown = json.loads(out)
    assert shown["stage"] == 0 and 1e-7 <= shown["suggestion"] <= 10
    assert (tmp_path / "f" / "lr_finder.png").is_file()
    # the flag first: it must not swallow the recipe
    code = main(["finetune", "--find-lr", str(path), "--out", str(tmp_path / "g"), "--quiet"])
    out, _ = capsys.readouterr()
    assert code == 0 and "stage 1 'tune'" in out and "--set stages.1.lr=" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--find-lr", "2"], "no such stage; the recipe's stages are 0 'head', 1 'tune' (give 0 to 1)"),
        (["--find-lr", "-1"], "no such stage"),
        (["--find-lr", "x"], "not a stage index"),
        (["--find-lr", "--resume", "somewhere"], "cannot be combined with --resume"),
    ],
)
def test_cli_bad_arguments_are_one_line(folder, tmp_path, capsys, argv, message):
    import tomli_w

    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(recipe(folder)))
    code = main(["finetune", str(path), *argv, "--out", str(tmp_path / "f")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "f" / "lr_finder.png").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "need 0 < start_lr < end_lr"),
        ({"start_lr": 0.0}, "need 0 < start_lr < end_lr"),
        ({"end_lr": math.inf}, "end_lr must be a finite number"),
        ({"steps": 3}, "steps must be a whole number >= 10"),
        ({"diverge": 1.0}, "diverge must be > 1"),
    ],
)
def test_api_bad_arguments_are_one_line(folder, tmp_path, kwargs, message):
    with pytest.raises(ZooError) as err:
        find_lr(validate(recipe(folder)), out=tmp_path / "f", **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "f").exists(), "arguments are checked before anything is built"


def test_valley_is_the_middle_of_the_longest_fall_and_too_short_a_test_is_an_error():
    lrs = [10 ** (-6 + i * 0.1) for i in range(60)]
    # flat, then falling from step 10 to 40, then rising: the valley is in the middle of the fall
    losses = [2.0] * 10 + [2.0 - 0.05 * i for i in range(1, 31)] + [0.5 + 0.3 * i for i in range(1, 21)]
    valley, steepest, method = suggest(lrs, losses)
    assert method == "valley" and lrs[20] <= valley <= lrs[30]
    assert lrs[9] <= steepest <= lrs[40]
    # flat (a trained head: noise around 0.24), then rising from step 40: the edge, not the noise
    wiggle = [0.24 + 0.004 * ((i * 7) % 5 - 2) for i in range(40)]
    valley, _, method = suggest(lrs, wiggle + [0.26 + 0.05 * i for i in range(20)])
    assert method == "flat" and lrs[35] <= valley <= lrs[40]
    with pytest.raises(ZooError, match="too soon to suggest an lr; lower start_lr"):
        suggest(lrs[:6], [1.0, 0.9, 5.0, math.inf, math.inf, math.inf])
