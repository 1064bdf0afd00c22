"""Torch under an address-space limit (``prlimit --as``), a real one: below what torch maps to load,
``import torch`` aborts in the dynamic loader or OpenBLAS before Python can speak; zoo says one line
naming the limit and the fix. Above it, the same command runs (its workers too)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from modelzoo.testing import clean_env, write_color_images

pytestmark = [
    pytest.mark.attack("training faults"),
    pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit"),
]
ZOO = str(Path(sys.executable).parent / "zoo")
GIB = 2**30


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("limits")
    write_color_images(root / "colors" / "train", 4, seed=0)
    write_color_images(root / "colors" / "val", 2, seed=1)
    spec = {
        "name": "limits",
        "task": "image-classification",
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(root / "colors"), "image_size": 32, "batch_size": 4, "mean": [0.5] * 3, "std": [0.5] * 3},
        "stages": [{"name": "tune", "train": "all", "epochs": 1, "lr": 0.01}],
    }
    path = root / "limits.toml"
    path.write_text(tomli_w.dumps(spec))
    return path


def limited(gib: float, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = ["prlimit", f"--as={int(gib * GIB)}", ZOO, *args]
    env = clean_env(MODELZOO_PLUGINS="classification,timm", OMP_NUM_THREADS="1")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("nproc", [[], ["--nproc", "2"]], ids=["one-process", "launcher"])
def test_too_small_an_address_space_for_torch_is_one_line(tmp_path, recipe, nproc):
    proc = limited(2.5, "finetune", str(recipe), "--out", str(tmp_path / "run"), *nproc, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: this process may map only 2.5 GiB of memory"), lines
    assert "raise the limit (ulimit -v unlimited)" in lines[0]
    assert not (tmp_path / "run").exists()


def test_commands_without_torch_run_under_the_limit(tmp_path):
    proc = limited(2.5, "list", "--kind", "task", cwd=tmp_path)
    assert proc.returncode == 0 and "image-classification" in proc.stdout, proc.stderr[-2000:]


def test_a_limit_torch_fits_in_trains_with_its_workers(tmp_path, recipe):
    proc = limited(6, "finetune", str(recipe), "--out", str(tmp_path / "run"), "--nproc", "2", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()
