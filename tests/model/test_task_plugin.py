"""A task that exists only in this test goes through the whole lifecycle with zero core edits.

``zoo plugins new --task image-regression`` writes a task plugin (one number per image, metric MAE) that
lists no backbone of its own: it fine-tunes the catalog's ``tf_efficientnet_lite0.in1k_pkg`` (zoo-timm);
real pip installs it into a throw-away environment layered over this one; then, through its entry
point only: ``zoo list --kind task`` -> ``zoo finetune`` -> ``zoo eval`` -> ``zoo predict`` ->
``zoo push`` -> ``zoo pull`` -> ``modelzoo.load`` against the local Hub server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from modelzoo.testing import hub_env

pytestmark = pytest.mark.slow

TASK = "image-regression"


def write_images(root: Path, count: int, seed: int) -> Path:
    """Grey images whose brightness is the target, and their CSV."""
    gen = torch.Generator().manual_seed(seed)
    lines = ["image,target"]
    for i in range(count):
        level = float(torch.rand(1, generator=gen))
        noise = torch.randint(-8, 8, (24, 24, 3), generator=gen)
        pixels = (torch.full((24, 24, 3), level * 255) + noise).clamp(0, 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(root / f"s{seed}_{i}.png")
        lines.append(f"s{seed}_{i}.png,{level:.4f}")
    path = root / f"set{seed}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_a_task_plugin_from_the_tests_runs_the_whole_lifecycle(plugin_env, hub_server, tmp_path):
    plugin = "ztregress"
    assert ok(plugin_env.zoo("plugins", "new", f"zoo-{plugin}", "--task", TASK, "--dir", tmp_path))
    ok(plugin_env.pip("install", "--no-deps", "-e", tmp_path / f"zoo-{plugin}"))
    # the skeleton's own tests pass as written
    assert "3 passed" in ok(plugin_env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", tmp_path / f"zoo-{plugin}"))

    # the catalog lists the task as data (its class is not imported to list it)
    listed = ok(plugin_env.zoo("list", "--kind", "task"))
    row = next(line.split() for line in listed.splitlines() if line.startswith(TASK))
    assert row[1:] == ["task", TASK, "metric", "mae", "-", plugin, "-"]
    spec = json.loads(ok(plugin_env.zoo("info", TASK, "--json")))
    assert spec["meta"]["higher_is_better"] is False and spec["plugin"] == plugin

    # fine-tune
    data = tmp_path / "data"
    data.mkdir()
    train, val = write_images(data, 48, 0), write_images(data, 16, 1)
    recipe = tmp_path / "regress.toml"
    recipe.write_text(
        f'name = "regress"\ntask = "{TASK}"\ndevice = "cpu"\n'
        f'[model]\nbackbone = "tf_efficientnet_lite0.in1k_pkg"\nhead = "{plugin}-linear"\n'
        f'[data]\ntrain_file = "{train}"\nval_file = "{val}"\nimage_size = 32\nbatch_size = 16\n'
        '[[stages]]\nname = "head"\ntrain = "head"\nepochs = 40\nlr = 0.03\n'
        '[[stages]]\nname = "tune"\ntrain = "last:1"\nepochs = 2\nlr = 0.0005\nfreeze_bn_stats = true\n'
    )
    run = tmp_path / "run"
    out = ok(plugin_env.zoo("finetune", recipe, "--out", run, "--quiet"))
    assert out.startswith(f"run {run}: mae ")
    mae = float(out.split("mae ")[1].split(",")[0])
    assert mae < 0.1  # predicting the mean brightness (~0.5) would be off by ~0.25
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == TASK and config["labels"] == ["target"]
    assert {"model.safetensors", "summary.json", "metrics.jsonl", "training_curves.png"} <= {
        p.name for p in run.iterdir()
    }
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["stage_name"] == "head"

    # evaluate: on the run's own split, and on data given on the command line
    assert ok(plugin_env.zoo("eval", run)).startswith("loss ")
    result = json.loads(ok(plugin_env.zoo("eval", run, "--data", val, "--json")))
    assert result["mae"] == pytest.approx(mae, abs=1e-4)

    # predict, as text and as JSON; a foreign flag is refused with one line
    images = [str(data / f"s1_{i}.png") for i in range(3)]
    lines = ok(plugin_env.zoo("predict", run, *images)).splitlines()
    assert [line.split(": ")[0] for line in lines] == images
    local = [row["prediction"] for row in json.loads(ok(plugin_env.zoo("predict", run, *images, "--json")))]
    assert all(isinstance(v, float) for v in local)
    proc = plugin_env.zoo("predict", run, images[0], "--top-k", "3")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: --top-k is not an option of {TASK} models (options: none)"

    # publish, pull and load from the Hub
    env = hub_env(hub_server, tmp_path / "hf-home")
    pushed = ok(plugin_env.zoo("push", run, "test-org/regress", env=env)).splitlines()
    assert pushed[0].endswith("test-org/regress")
    sha = pushed[1]
    pulled = ok(plugin_env.zoo("pull", f"test-org/regress@{sha}", "--to", tmp_path / "pulled", env=env)).splitlines()
    assert pulled[0] == sha
    card = (tmp_path / "pulled" / "README.md").read_text()
    assert "library_name: modelzoo" in card and "Mean absolute error" in card
    code = (
        "import json, sys, modelzoo\n"
        f"model = modelzoo.load('hf-hub:test-org/regress@{sha}')\n"
        "print(json.dumps(model.predict(sys.argv[1:])))\n"
    )
    from_hub = json.loads(ok(plugin_env.run("-c", code, *images, env=env)))
    assert from_hub == pytest.approx(local, abs=1e-5)
