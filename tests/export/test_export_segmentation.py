"""``zoo export`` of a semantic-segmentation run (zoo-segmentation, timm ``test_convnext`` + an FPN head
at 32 px): the task's defaults (the batch's images in, the head's per-pixel logits out) are enough, and
the parity check compares every pixel's logits and its top-1 class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import modelzoo
from modelzoo.engine.recipe import validate
from modelzoo.export import export

pytestmark = pytest.mark.usefixtures("one_thread")


def write_scenes(root: Path, size: int = 32) -> Path:
    """Rectangles ('box') on noise, in the plugin's folder layout (split/images, split/masks, labels.txt)."""
    gen = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 5)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(count):
            image = gen.integers(0, 60, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            top, left = gen.integers(2, size // 2, 2)
            mask[top : top + size // 3, left : left + size // 3] = 1
            image[mask == 1] = 220
            Image.fromarray(image).save(root / split / "images" / f"{i}.png")
            Image.fromarray(mask, mode="L").save(root / split / "masks" / f"{i}.png")
    (root / "labels.txt").write_text("background\nbox\n")
    return root


def test_a_segmentation_run_exports_per_pixel_logits(tmp_path):
    data = write_scenes(tmp_path / "data")
    recipe = {
        "name": "tiny-seg",
        "task": "semantic-segmentation",
        "seed": 0,
        "device": "cpu",
        "model": {
            "backbone": "timm:test_convnext",
            "pretrained": False,
            "head": "fpn",
            "head_options": {"channels": 8},
        },
        "data": {"path": str(data), "image_size": 32, "batch_size": 4},
        "stages": [{"name": "all", "train": "all", "epochs": 1, "lr": 1e-2}],
    }
    run = modelzoo.finetune(validate(recipe), out=tmp_path / "run", quiet=True).path
    result = export(run, "onnx", out=tmp_path / "export")
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["inputs"][0]["shape"] == ["batch", 3, 32, 32]
    # the head's logits at its stride (4: 8 x 8 for 32 px), as the model computes them (predict upsamples)
    assert sidecar["outputs"][0]["shape"] == ["batch", 2, 8, 8] and sidecar["labels"] == ["background", "box"]
    assert result.top1_agreement is not None and result.top1_agreement > 0.999 and result.examples == 5
    import onnxruntime

    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = modelzoo.load(run)(x)
    assert torch.allclose(torch.from_numpy(session.run(None, {"input": x.numpy()})[0]), expected, atol=1e-4)
