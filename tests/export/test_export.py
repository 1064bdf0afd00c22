"""``zoo export``: a tiny image-classification run (timm ``test_convnext`` at 32 px on coloured squares)
to ONNX, TorchScript and an ExportedProgram, each with a dynamic batch axis and a sidecar JSON, the
parity check against the format's own runtime, and bad input (an unknown format, an unwritable
``--out``, a damaged run folder) answered with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import modelzoo
from modelzoo.cli.main import main
from modelzoo.engine.recipe import validate
from modelzoo.errors import ZooError
from modelzoo.export import export
from modelzoo.export.formats import FORMATS
from modelzoo.hub.manifest import PUSH_EXPORTS
from modelzoo.testing import write_color_images

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_recipe(data: Path) -> dict:
    return {
        "name": "tiny-export",
        "task": "image-classification",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(data), "image_size": 32, "batch_size": 4, "mean": [0.5] * 3, "std": [0.5] * 3},
        "stages": [{"name": "all", "train": "all", "epochs": 1, "lr": 0.01}],
    }


@pytest.fixture(scope="module")
def module_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-run")
    write_color_images(root / "data" / "train", 4, seed=0, size=32)
    write_color_images(root / "data" / "val", 3, seed=1, size=32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELZOO_CACHE", str(root / "cache"))
        torch.set_num_threads(1)
        modelzoo.finetune(validate(tiny_recipe(root / "data")), out=root / "run", quiet=True)
    return root / "run"


@pytest.fixture
def run(module_run, tmp_path) -> Path:
    """A private copy of the module's run folder (tests may damage it)."""
    copy = tmp_path / "run"
    shutil.copytree(module_run, copy, ignore=shutil.ignore_patterns("checkpoint", "cache"))
    return copy


def run_exported(fmt: str, path: Path, x: torch.Tensor) -> torch.Tensor:
    """The exported file run by its own runtime, as a deployment would (no modelzoo)."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    if fmt == "torchscript":
        return torch.jit.load(str(path))(x)
    return torch.export.load(str(path)).module()(x)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_run_exports_with_a_sidecar_a_dynamic_batch_and_parity(run, tmp_path, capsys, fmt):
    out = tmp_path / "deploy"
    assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    file = out / FORMATS[fmt].file
    assert captured.out.splitlines() == [str(file), f"{file}.json"]
    parity = captured.err.strip().splitlines()
    assert len(parity) == 1 and "8 validation examples" in parity[0] and "top-1 agreement 1.0000" in parity[0]
    assert "max abs diff" in parity[0]
    sidecar = json.loads((out / f"{FORMATS[fmt].file}.json").read_text())
    assert sidecar["format"] == fmt and sidecar["labels"] == ["blue", "green", "red"]
    assert sidecar["inputs"] == [{"name": "input", "dtype": "float32", "shape": ["batch", 3, 32, 32]}]
    assert sidecar["outputs"] == [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}]
    pre = sidecar["preprocess"]
    assert pre["input_size"] == [3, 32, 32] and pre["mean"] == [0.5] * 3 and pre["std"] == [0.5] * 3
    assert {"interpolation", "crop_pct"} <= set(pre)
    assert sidecar["parity"]["top1_agreement"] == 1.0 and sidecar["parity"]["examples"] == 8
    assert sorted(p.name for p in out.iterdir()) == sorted([file.name, f"{file.name}.json"])  # no temp files left
    # any batch size, compared with modelzoo's own model
    model = modelzoo.load(run)
    for n in (1, 5):
        x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            expected = model(x)
        assert torch.allclose(run_exported(fmt, file, x), expected, atol=1e-4)


def test_the_default_out_is_the_run_export_folder_and_json_output(run, capsys):
    assert main(["export", str(run), "--format", "exported-program", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["path"] == str(run / "export" / "model.pt2") and result["top1_agreement"] == 1.0
    # an export beside the run does not change what the run folder publishes
    assert "model.pt2" not in modelzoo.model.model_files(run)


def one_error_line(argv: list[str], capsys) -> str:
    code = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_input_is_one_line(run, tmp_path, capsys):
    line = one_error_line(["export", str(run), "--format", "onxx"], capsys)
    assert "unknown export format 'onxx'" in line and "onnx" in line
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = one_error_line(["export", str(run), "--format", "onnx", "--out", str(blocker / "sub")], capsys)
    assert f"cannot write to --out {blocker / 'sub'}" in line
    assert "no such directory" in one_error_line(["export", str(tmp_path / "nope"), "--format", "onnx"], capsys)
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert "the file is damaged" in one_error_line(["export", str(run), "--format", "torchscript"], capsys)
    (run / "config.json").write_text("{not json")
    assert "cannot read model config" in one_error_line(["export", str(run), "--format", "onnx"], capsys)
    assert not (run / "export").exists() or not any((run / "export").iterdir())


def test_a_run_without_its_recipe_cannot_check_parity(run, capsys):
    (run / "recipe.toml").unlink()
    assert "has no recipe.toml" in one_error_line(["export", str(run), "--format", "onnx"], capsys)


def test_a_mismatch_beyond_tolerance_is_an_error_and_keeps_no_file(run, tmp_path, monkeypatch):
    """A real fault of tracing: Python control flow on the batch size is frozen for the example batch
    (4 images), so a batch of one gives other outputs; the parity check catches it."""
    from zoo_classification.task import ImageClassification

    class BatchDependent(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x) * (2.0 if x.shape[0] > 3 else 1.0)

    monkeypatch.setattr(ImageClassification, "export_module", lambda self, model: BatchDependent(model))
    with pytest.raises(ZooError, match="does not match PyTorch: max abs diff .* the file was not kept"):
        export(run, "torchscript", out=tmp_path / "deploy")
    assert list((tmp_path / "deploy").iterdir()) == []


def test_detection_models_say_why_they_do_not_export():
    from modelzoo.model.task import create_task

    with pytest.raises(ZooError, match="object-detection models do not export yet: torchvision's detection heads"):
        create_task("object-detection").export_module(None)


def test_the_push_allowlist_names_the_exporters_files():
    for fmt, names in PUSH_EXPORTS.items():
        assert names == (FORMATS[fmt].file, FORMATS[fmt].file + ".json")
