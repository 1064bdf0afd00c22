"""Run folders and checkpoints carry digests of everything they hold, checked on load, resume and push.

Real faults in real files written by a tiny real fine-tune: one flipped bit (an exponent or a mantissa
bit of a weight, a letter of a label, a digit of the mean, a digit in the recipe, the metrics, the
summary, a tensor of the checkpoint) is one line naming the file and what to do, never used and never
re-saved with a fresh digest; a ``recipe.toml`` edited after a kill is refused naming what changed,
unless ``--force``; folders written before digests keep loading.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

import modelzoo
from modelzoo.cli.main import main
from modelzoo.engine.recipe import validate
from modelzoo.engine.resume import recipe_changes
from modelzoo.engine.runlock import RunLock
from modelzoo.engine.trainer import CHECKPOINT, finetune
from modelzoo.errors import ZooError
from modelzoo.testing import write_color_images

pytestmark = pytest.mark.usefixtures("one_thread")


def recipe_dict(data: Path) -> dict:
    return {
        "name": "digests",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {
            "path": str(data),
            "image_size": 32,  # test_convnext's smallest input
            "batch_size": 8,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
        },
        "optimizer": {"lr": 0.01},
        "stages": [
            {"name": "head", "train": "head", "epochs": 1},
            {"name": "tune", "train": "all", "epochs": 1, "lr": 0.003},
        ],
    }


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digests")
    write_color_images(root / "data" / "train", 4, seed=0, size=24)
    write_color_images(root / "data" / "val", 2, seed=1, size=24)
    return finetune(validate(recipe_dict(root / "data")), out=root / "run", quiet=True).path


@pytest.fixture
def run(pristine, tmp_path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "run"))


def one_line(exc: BaseException, *fragments: str) -> str:
    message = str(exc)
    assert message and "\n" not in message, repr(message)
    for fragment in fragments:
        assert fragment in message, message
    return message


def flip(path: Path, offset: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def weight_offset(path: Path, index: int = 1000) -> int:
    """The byte offset of the ``index``-th float32 of the safetensors data (after its JSON header)."""
    (header,) = struct.unpack("<Q", path.read_bytes()[:8])
    return 8 + header + 4 * index


def text_offset(path: Path, needle: str, within: int) -> int:
    return path.read_bytes().index(needle.encode()) + within


def state(run: Path) -> dict:
    model = modelzoo.load(run)
    return {k: v.clone() for k, v in model.state_dict().items()}


# byte offset and bit of one flipped bit in each file of the run folder
FLIPS = {
    "weights exponent": ("model.safetensors", lambda p: weight_offset(p) + 3, 6),
    "weights mantissa": ("model.safetensors", lambda p: weight_offset(p), 0),
    "label red -> rdd": ("config.json", lambda p: text_offset(p, '"red"', 2), 0),
    "mean 0.485 -> 0.405": ("config.json", lambda p: text_offset(p, "0.485", 3), 3),
    "key labels -> la`els": ("config.json", lambda p: text_offset(p, '"labels"', 3), 1),
    "config not JSON": ("config.json", lambda p: text_offset(p, '"labels":', 8), 0),
    "recipe seed": ("recipe.toml", lambda p: text_offset(p, "seed = 0", 7), 0),
    "metrics": ("metrics.jsonl", lambda p: text_offset(p, '"val_loss": 0.', 14), 0),
    "summary": ("summary.json", lambda p: text_offset(p, '"accuracy": ', 12), 1),
}


@pytest.mark.attack("files")
@pytest.mark.parametrize("case", list(FLIPS))
def test_one_flipped_bit_in_any_run_file_is_one_line(pristine, run, case, capsys):
    name, where, bit = FLIPS[case]
    path = run / name
    before = path.read_bytes()
    flip(path, where(path), bit)
    if name == "config.json" and case != "config not JSON":
        assert json.loads(path.read_text())  # still valid JSON: only the digest can tell
    with pytest.raises(ZooError) as info:
        modelzoo.load(run)
    one_line(info.value, str(path), f"zoo finetune --resume {run}")
    image = pristine.parent / "data" / "val" / "red" / "0.png"
    assert main(["predict", str(run), str(image)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and name in err
    assert path.read_bytes() != before  # nothing re-saved it


@pytest.mark.attack("files")
def test_a_damaged_file_is_rebuilt_from_the_checkpoint(run, pristine):
    weights = run / "model.safetensors"
    flip(weights, weight_offset(weights) + 3, 6)  # an exponent bit: one weight becomes ~1e36
    resumed = finetune(resume=run, quiet=True)  # a finished run: the last checkpoint rewrites the folder
    assert resumed.metrics == json.loads((pristine / "summary.json").read_text())["metrics"]
    good, rebuilt = state(pristine), state(run)
    assert good.keys() == rebuilt.keys() and all(torch.equal(good[k], rebuilt[k]) for k in good)


def checkpoint_tensor_offset(path: Path, which: int = 3) -> int:
    """The byte offset of a tensor's data inside a torch checkpoint (a zip of stored records)."""
    with zipfile.ZipFile(path) as archive:
        record = [r for r in archive.infolist() if "/data/" in r.filename][which]
    with open(path, "rb") as fh:
        fh.seek(record.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
    return record.header_offset + 30 + name_len + extra_len


@pytest.mark.attack("files")
@pytest.mark.parametrize("bit", [30, 0], ids=["exponent", "mantissa"])
def test_a_bit_flipped_checkpoint_is_never_resumed_nor_resaved(run, bit):
    ckpt = run / CHECKPOINT
    flip(ckpt, checkpoint_tensor_offset(ckpt) + 8 + bit // 8, bit % 8)
    damaged = ckpt.read_bytes()
    folder = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(ZooError) as info:
        finetune(resume=run, quiet=True)
    one_line(info.value, str(ckpt), "is damaged", "never resumed from")
    assert ckpt.read_bytes() == damaged  # not re-saved with a fresh, valid digest
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".zoo-lock"} == {
        k: v for k, v in folder.items() if k != ".zoo-lock"
    }


@pytest.mark.attack("run folder")
def test_a_recipe_edited_after_a_kill_is_refused_unless_forced(run, capsys):
    recipe = run / "recipe.toml"
    text = recipe.read_text()
    assert "seed = 0" in text and "lr = 0.003" in text
    recipe.write_text(text.replace("seed = 0", "seed = 1").replace("lr = 0.003", "lr = 0.01"))
    with pytest.raises(ZooError) as info:
        finetune(resume=run, quiet=True)
    one_line(info.value, "seed 0 -> 1, stages.1.lr 0.003 -> 0.01", f"zoo finetune --resume {run} --force")
    assert main(["finetune", "--resume", str(run), "--quiet", "--force"]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "seed 0 -> 1, stages.1.lr 0.003 -> 0.01" in err and "--force: continuing" in err
    modelzoo.load(run)  # finished again, with the digest of the new recipe
    with pytest.raises(ZooError, match="seed 0 -> 1"):  # the checkpoint still holds the recipe it was written with
        finetune(resume=run, quiet=True)


@pytest.mark.attack("run folder")
def test_a_run_being_pushed_is_not_resumed_meanwhile(run):
    with RunLock(run, for_push=True), pytest.raises(ZooError) as info:
        finetune(resume=run, quiet=True)
    one_line(info.value, f"{run} is in use by another zoo push (pid {os.getpid()})")
    finetune(resume=run, quiet=True)  # the push is over: the run goes ahead


def test_recipe_changes_name_every_field():
    old = {"seed": 0, "data": {"train_limit": 64}, "stages": [{"lr": 0.002}, {"lr": 0.002, "epochs": 2}]}
    new = {"seed": 1, "data": {}, "stages": [{"lr": 0.002}, {"lr": 0.01, "epochs": 2}], "device": "cpu"}
    assert recipe_changes(old, new) == [
        "seed 0 -> 1",
        "data.train_limit 64 -> (unset)",
        "stages.1.lr 0.002 -> 0.01",
        "device (unset) -> cpu",
    ]


@pytest.mark.attack("files")
def test_folders_and_checkpoints_from_before_digests_still_load_and_resume(run):
    config = json.loads((run / "config.json").read_text())
    assert set(config["sha256"]) == {"model.safetensors", "recipe.toml", "metrics.jsonl", "summary.json"}
    old = {k: v for k, v in config.items() if k not in ("sha256", "config_sha256")}
    (run / "config.json").write_text(json.dumps(old, indent=2))
    modelzoo.load(run)
    ckpt = torch.load(run / CHECKPOINT, weights_only=True)
    torch.save({k: v for k, v in ckpt.items() if k not in ("sha256", "recipe")}, run / CHECKPOINT)
    finetune(resume=run, quiet=True)
    assert "config_sha256" in json.loads((run / "config.json").read_text())  # re-saved with digests
