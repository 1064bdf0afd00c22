"""``zoo push --export onnx`` and the timm form of a pushed timm backbone + linear head, against the
local Hub (the real huggingface_hub client and plain timm, in subprocesses: they read HF_ENDPOINT /
HF_HOME when imported): the pushed repo carries ``model.onnx`` + its sidecar (in the manifest,
pulled and verified), the card says how to run it without modelzoo, and
``timm.create_model("hf-hub:ORG/NAME", pretrained=True)`` gives exactly ``modelzoo.load``'s logits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import modelzoo
from modelzoo.engine.recipe import validate
from modelzoo.hub.manifest import MANIFEST, parse_manifest
from modelzoo.testing import hub_env, write_color_images, zoo_subprocess

pytestmark = pytest.mark.usefixtures("one_thread")

#: in a fresh interpreter: the pushed repo through plain timm, modelzoo and onnxruntime, on one input
CHECK = """
import json, sys
import numpy as np, onnxruntime, timm, torch
from huggingface_hub import hf_hub_download
import modelzoo

repo = sys.argv[1]
x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    timm_model = timm.create_model("hf-hub:" + repo, pretrained=True).eval()
    zoo_model = modelzoo.load("hf-hub:" + repo)
    timm_logits, zoo_logits = timm_model(x), zoo_model(x)
session = onnxruntime.InferenceSession(hf_hub_download(repo, "model.onnx"), providers=["CPUExecutionProvider"])
onnx_logits = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
print(json.dumps({
    "timm_vs_zoo": float((timm_logits - zoo_logits).abs().max()),
    "onnx_vs_zoo": float((onnx_logits - zoo_logits).abs().max()),
    "labels": timm_model.pretrained_cfg.get("label_names"),
    "input_size": list(timm_model.pretrained_cfg["input_size"]),
    "num_classes": timm_model.num_classes,
}))
"""


def write_run(root: Path, head: str = "linear") -> Path:
    write_color_images(root / "data" / "train", 4, seed=0, size=32)
    write_color_images(root / "data" / "val", 2, seed=1, size=32)
    recipe = {
        "name": "colours",
        "task": "image-classification",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": head},
        "data": {"path": str(root / "data"), "image_size": 32, "batch_size": 4, "mean": [0.5] * 3, "std": [0.5] * 3},
        "stages": [{"name": "all", "train": "all", "epochs": 1, "lr": 0.01}],
    }
    modelzoo.finetune(validate(recipe), out=root / "run", quiet=True)
    shutil.rmtree(root / "run" / "checkpoint", ignore_errors=True)
    return root / "run"


def test_pushed_onnx_and_timm_form_run_without_modelzoo(hub_server, tmp_path):
    run = write_run(tmp_path)
    env = hub_env(hub_server, tmp_path / "hf")
    push = zoo_subprocess("push", str(run), "org/colours", "--export", "onnx", env=env)
    assert push.returncode == 0, push.stderr
    assert "parity (torch.onnx" in push.stderr and "top-1 agreement 1.0000" in push.stderr
    pulled = tmp_path / "pulled"
    pull = zoo_subprocess("pull", "org/colours", "--to", str(pulled), env=env)
    assert pull.returncode == 0, pull.stderr
    manifest = parse_manifest((pulled / MANIFEST).read_text())
    assert {"model.onnx", "model.onnx.json", "timm_model.safetensors", "config.json"} <= set(manifest)
    assert {"model.onnx", "model.onnx.json", "timm_model.safetensors"} <= {p.name for p in pulled.iterdir()}
    config = json.loads((pulled / "config.json").read_text())
    assert config["architecture"] == "test_convnext" and config["num_classes"] == 3
    assert config["pretrained_cfg"]["hf_hub_filename"] == "timm_model.safetensors"
    assert sorted(config["interop_keys"]) == config["interop_keys"] and "pretrained_cfg" in config["interop_keys"]
    card = (pulled / "README.md").read_text()
    assert "## Without modelzoo" in card and "onnxruntime as ort" in card
    assert 'timm.create_model("hf-hub:org/colours@main", pretrained=True)' in card
    # modelzoo's own weights and loading are unchanged; the pulled folder loads like the run
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(modelzoo.load(pulled)(x), modelzoo.load(run)(x))
    check = subprocess.run(
        [sys.executable, "-c", CHECK, "org/colours"], env=env, capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stderr
    result = json.loads(check.stdout.strip().splitlines()[-1])
    assert result["timm_vs_zoo"] < 1e-5 and result["onnx_vs_zoo"] < 1e-4
    assert result["labels"] == ["blue", "green", "red"] and result["num_classes"] == 3
    assert result["input_size"] == [3, 32, 32]
    # an unchanged run pushed again makes no commit (the ONNX file and the timm form are reproducible)
    again = zoo_subprocess("push", str(run), "org/colours", "--export", "onnx", env=env)
    assert again.returncode == 0 and "no changes" in again.stderr, again.stderr


def test_an_mlp_head_gets_no_timm_form_and_push_refuses_pickled_formats(tmp_path):
    from modelzoo.export.interop import interop_files

    run = write_run(tmp_path, head="mlp")
    assert interop_files(run, tmp_path / "work") == ({}, [])  # the push is modelzoo's files only
    refused = zoo_subprocess(
        "push", str(run), "org/mlp", "--export", "torchscript", env=hub_env("http://127.0.0.1:9", tmp_path)
    )
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1 and "only onnx is published" in lines[0], refused.stderr
