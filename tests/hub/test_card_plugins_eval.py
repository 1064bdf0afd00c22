"""A pushed model's card names the plugins (distribution and version) it needs and never a local
absolute path; ``zoo eval hf-hub:ORG/NAME@REV`` evaluates on the recipe.toml pushed with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelzoo.testing import hub_env, write_color_images, zoo_subprocess
from modelzoo.testing.hubserver import HubServer

torch = pytest.importorskip("torch")

import modelzoo  # noqa: E402
from modelzoo.hub.card import build_card, redact_paths  # noqa: E402
from modelzoo.model.task import required_plugins  # noqa: E402


def colour_run(root: Path) -> tuple[Path, Path]:
    """A run folder whose recipe reads an ImageFolder under an absolute path (as zoo recipe new writes)."""
    data = write_color_images(root / "private-data" / "colours", per_class=3, seed=0, size=16)
    torch.manual_seed(0)
    labels = sorted(p.name for p in data.iterdir())
    model = modelzoo.assemble(
        "timm:test_efficientnet", "classification:linear", labels=labels, pretrained=False, task="image-classification"
    )
    model.config["dataset"] = {"name": str(data), "num_train": 9, "num_val": 9}
    model.config["plugins"] = required_plugins(model.config)
    run = root / "run"
    modelzoo.save_model(model, run)
    (run / "recipe.toml").write_text(
        f'name = "colours"\ntask = "image-classification"\n[model]\nbackbone = "timm:test_efficientnet"\n'
        f'pretrained = false\n[data]\npath = "{data}"\nval_split = 0.5\nimage_size = 16\n'
        '[[stages]]\nname = "head"\nepochs = 1\n'
    )
    (run / "summary.json").write_text(json.dumps({"metrics": {"accuracy": 0.5, "loss": 1.0}}))
    return run, data


def test_the_card_names_the_plugins_and_no_local_path(tmp_path):
    run, _ = colour_run(tmp_path)
    config = json.loads((run / "config.json").read_text())
    files = {p.name: p for p in run.iterdir() if p.is_file()}
    card = build_card("org/colours", config, files, json.loads((run / "summary.json").read_text()))
    dists = {p["distribution"]: p["version"] for p in config["plugins"]}
    assert {"zoo-classification", "zoo-timm"} <= set(dists) and "modelzoo" not in dists
    for dist, version in dists.items():
        assert f"`{dist}` {version}" in card and f"{dist}=={version}" in card
    assert str(tmp_path) not in card and "/private-data/" not in card
    assert "…/colours" in card  # the folder's own name stays: it says what the data was
    # a model trained before plugins were recorded: the installed ones are named
    del config["plugins"]
    assert "zoo-classification==" in build_card("org/colours", config, files)
    assert redact_paths("see https://huggingface.co/org/x and C:\\Users\\me\\d") == (
        "see https://huggingface.co/org/x and …/d"
    )


@pytest.mark.slow
def test_zoo_eval_of_a_hub_model_uses_its_pushed_recipe(tmp_path):
    run, _ = colour_run(tmp_path)
    with HubServer() as server:
        env = hub_env(server, tmp_path / "hf-home")
        pushed = zoo_subprocess("push", str(run), "org/colours", "--tag", "v1", env=env)
        assert pushed.returncode == 0, pushed.stderr
        evaluated = zoo_subprocess("eval", "hf-hub:org/colours@v1", "--json", env=env, cwd=str(tmp_path))
    assert evaluated.returncode == 0, evaluated.stderr
    assert set(json.loads(evaluated.stdout)) >= {"loss", "accuracy"}
