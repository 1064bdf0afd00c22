"""``zoo push RUN`` publishes only a finished, intact run: never while ``zoo finetune --resume RUN`` trains
it (the run lock), never a file whose digest changed, never weights of another architecture than the
one its ``config.json`` describes. Real processes against the local Hub server."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import save_file

import modelzoo
from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import finetune
from modelzoo.errors import ZooError
from modelzoo.model.folder import model_files, write_config
from modelzoo.testing import clean_env, hub_env, write_color_images, zoo_subprocess
from modelzoo.util.files import sha256_file

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("push-guards")
    write_color_images(root / "data" / "train", 4, seed=0, size=24)
    write_color_images(root / "data" / "val", 2, seed=1, size=24)
    recipe = {
        "name": "guards",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(root / "data"), "image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.01},
        "stages": [
            {"name": "head", "train": "head", "epochs": 1},
            {"name": "tune", "train": "all", "epochs": 1, "lr": 0.003},
        ],
    }
    run = finetune(validate(recipe), out=root / "run", quiet=True).path
    (run / ".zoo-lock").unlink()  # written by this process: a copy must not carry its pid
    return run


@pytest.fixture
def run(finished, tmp_path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def expect_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.attack("run folder")
def test_push_refuses_a_run_that_is_being_trained(hub_server, run, tmp_path):
    recipe = run / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("epochs = 1\nlr = 0.003", "epochs = 500\nlr = 0.003"))
    trainer = subprocess.Popen(
        [sys.executable, "-m", "modelzoo", "finetune", "--resume", str(run), "--force", "--quiet"],
        env=clean_env(MODELZOO_CHECKPOINT_SECONDS="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock, deadline = run / ".zoo-lock", time.time() + 120
        while time.time() < deadline and trainer.poll() is None:
            if lock.is_file() and lock.read_text().strip() == str(trainer.pid):
                break
            time.sleep(0.05)
        assert trainer.poll() is None, trainer.communicate()
        env = hub_env(hub_server, tmp_path / "home")
        pushed = zoo_subprocess("push", str(run), "org/busy", env=env, timeout=120)
        expect_error(pushed, f"is being trained by pid {trainer.pid} (zoo finetune)", "push a finished run")
    finally:
        trainer.send_signal(signal.SIGTERM)
        _, err = trainer.communicate(timeout=120)
    assert trainer.returncode == 130, err
    # stopped midway: its metrics and recipe are not the ones the finished model was saved with
    expect_error(
        zoo_subprocess("push", str(run), "org/busy", env=env, timeout=120),
        "recipe.toml has sha256",
        f"zoo finetune --resume {run}",
    )


@pytest.mark.attack("files")
def test_push_refuses_a_bit_flipped_run(hub_server, run, tmp_path):
    config = run / "config.json"
    data = bytearray(config.read_bytes())
    data[data.index(b'"red"') + 2] ^= 1  # red -> rdd: still valid JSON
    config.write_bytes(bytes(data))
    pushed = zoo_subprocess("push", str(run), "org/flipped", env=hub_env(hub_server, tmp_path / "home"))
    expect_error(pushed, str(config), "was changed after modelzoo wrote it", f"zoo finetune --resume {run}")


def other_backbone_weights(run: Path) -> None:
    """``model.safetensors`` replaced by a model of another backbone with the same labels."""
    labels = json.loads((run / "config.json").read_text())["labels"]
    other = modelzoo.assemble(
        "timm:test_efficientnet", "classification:linear", labels=labels, num_classes=len(labels), pretrained=False
    )
    state = {k: v.detach().contiguous() for k, v in other.state_dict().items()}
    save_file(state, str(run / "model.safetensors"), metadata={"format": "pt", "library": "modelzoo"})


@pytest.mark.attack("files")
def test_push_refuses_weights_of_another_backbone(hub_server, run, tmp_path):
    other_backbone_weights(run)
    config = json.loads((run / "config.json").read_text())
    # digests re-stamped to match (a folder put together by hand): only the architecture check can tell
    config["sha256"]["model.safetensors"] = sha256_file(run / "model.safetensors")
    write_config(run, config)
    with pytest.raises(ZooError, match="belong to another architecture than its backbone 'timm:test_convnext'"):
        model_files(run)
    # a folder from before digests: the same line from zoo push, before anything is uploaded
    old = {k: v for k, v in config.items() if k not in ("sha256", "config_sha256")}
    (run / "config.json").write_text(json.dumps(old, indent=2))
    pushed = zoo_subprocess("push", str(run), "org/mixed", env=hub_env(hub_server, tmp_path / "home"))
    expect_error(pushed, "model.safetensors does not match", "another architecture")
    listed = zoo_subprocess("list", "--hub", "org", "--json", env=hub_env(hub_server, tmp_path / "home"))
    assert "org/mixed" not in listed.stdout
