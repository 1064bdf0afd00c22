"""Recipe validation (one line naming the field and the fix) and --set overrides, through the default recipe's
task (image classification, from zoo-classification): the core validates the generic fields, the task its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelzoo.engine.recipe import apply_overrides, load_recipe, validate
from modelzoo.errors import RecipeError

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "zoo" / "effnet-lite0-fashion-mnist.toml"


def base() -> dict:
    return {
        "model": {"backbone": "tf_efficientnet_lite0"},
        "data": {"dataset": "fashion-mnist"},
        "stages": [{"train": "head", "epochs": 1}, {"train": "last:2", "epochs": 1}],
    }


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.backbon=x", r"model\.backbon: unknown field; did you mean: backbone"),
        ("data.batch_size=0", r"data\.batch_size: must be a positive integer"),
        ("data.batch_size='big'", r"data\.batch_size: expected int"),
        ("data.path='/x'", r"data: give exactly one of data\.dataset"),
        ("data.augment=heavy", r"data\.augment: 'heavy' is not one of none, light"),
        ("data.val_split=1.5", r"data\.val_split"),
        ("optimizer.name=adamx", r"optimizer\.name: 'adamx' is not one of adamw, sgd; did you mean: adamw"),
        ("optimizer.layer_decay=0", r"optimizer\.layer_decay: must be in \(0, 1\]"),
        ("stages.0.epochs=0", r"stages\.0\.epochs: must be a positive integer"),
        ("stages.1.train=some", r"stages\.1\.train: 'some' is not"),
        ("stages.1.train='last:x'", r"last:N.*whole number"),
        ("stages.0.schedule=cosin", r"stages\.0\.schedule: 'cosin' is not one of .*did you mean: cosine"),
        ("stages.0.warmup_epochs=5", r"stages\.0\.warmup_epochs: must be between 0"),
        ("task=pose-estimation", r"task: unknown task"),
        ("device=tpu", r"device: 'tpu' is not"),
        ("epochs=3", r"epochs: unknown top-level field"),
    ],
)
@pytest.mark.attack("recipes")
def test_each_bad_field_gets_one_line_naming_it(override, message):
    with pytest.raises(RecipeError, match=message) as info:
        validate(apply_overrides(base(), [override]))
    assert "\n" not in str(info.value)


@pytest.mark.attack("recipes")
def test_missing_sections_and_stages():
    with pytest.raises(RecipeError, match=r"\[model\] is missing"):
        validate({"data": {}, "stages": []})
    with pytest.raises(RecipeError, match="at least one"):
        validate({**base(), "stages": []})


def test_overrides_reach_nested_and_list_fields():
    recipe = load_recipe(DEFAULT, ["stages.1.epochs=5", "data.batch_size=64", "model.pretrained=false", "seed=7"])
    assert recipe.stages[1].epochs == 5 and recipe.data.batch_size == 64
    assert recipe.model.pretrained is False and recipe.seed == 7
    with pytest.raises(RecipeError, match="out of range"):
        load_recipe(DEFAULT, ["stages.9.epochs=1"])
    with pytest.raises(RecipeError, match="expected dotted.key=value"):
        load_recipe(DEFAULT, ["stages"])


def test_data_seed_defaults_to_seed_and_is_checked():
    assert load_recipe(DEFAULT, ["seed=7"]).seed_for_data == 7
    recipe = load_recipe(DEFAULT, ["seed=7", "data_seed=3"])
    assert (recipe.seed, recipe.data_seed, recipe.seed_for_data) == (7, 3, 3)
    assert "data_seed" not in load_recipe(DEFAULT).to_dict()  # absent unless set: old run folders resume
    with pytest.raises(RecipeError, match="data_seed: -1 must be a whole number >= 0"):
        load_recipe(DEFAULT, ["data_seed=-1"])


def test_default_recipe_round_trips_through_toml(tmp_path):
    recipe = load_recipe(DEFAULT)
    path = tmp_path / "r.toml"
    path.write_text(recipe.to_toml())
    assert load_recipe(path).to_dict() == recipe.to_dict()


@pytest.mark.attack("recipes")
def test_cli_reports_recipe_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[model]\nbackbone = "tf_efficientnet_lite0"\n[data]\ndataset = "fashion-mnist"\nbatch_size = -1\n[[stages]]\ntrain = "head"\n'
    )
    out = subprocess.run([sys.executable, "-m", "modelzoo", "finetune", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: data.batch_size: must be a positive integer"
