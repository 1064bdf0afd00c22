"""Semantic segmentation: heads on timm and torchvision pyramids, data checks (folder + PNG masks,
COCO polygons / RLE), metrics, the demo scenes, and finetune -> eval -> predict -> resume through the
engine and the CLI on a tiny synthetic set. Offline, CPU, random init, 32 px images."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tomli_w
import torch
from PIL import Image
from zoo_segmentation.data import load_coco_split, load_folder_split
from zoo_segmentation.demo import compose
from zoo_segmentation.metrics import confusion, scores

import modelzoo
from modelzoo.sdk import ZooError, assemble
from modelzoo.testing import zoo_subprocess

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = "timm:test_convnext"
LABELS = ["background", "box", "cross"]


# -- backbones serve the task through its heads -----------------------------------------------------
def test_pyramid_backbones_serve_segmentation_with_no_entry_of_their_own(real_catalog):
    backbones = set(modelzoo.list_models(kind="backbone", task="segmentation"))
    assert {"tf_efficientnet_lite0", "mobilenet_v2", "resnet18", "test_convnext"} <= backbones
    assert "vit_b_16" not in set(modelzoo.list_models(kind="backbone", task="segmentation", plugin="torchvision"))
    assert "semantic-segmentation" not in real_catalog.get("timm:tf_efficientnet_lite0").tasks  # not declared...
    assert "semantic-segmentation" in real_catalog.tasks_for(real_catalog.get("timm:tf_efficientnet_lite0"))
    assert set(modelzoo.list_models(kind="head", task="segmentation")) == {"fpn", "lraspp", "deeplabv3"}


def test_the_demo_recipe_validates_with_a_backbone_that_names_other_tasks(real_catalog):
    from modelzoo.engine.recipe import load_recipe

    recipe = load_recipe(Path(__file__).parents[3] / "zoo" / "effnet-lite0-fpn-fashion-segments.toml")
    assert recipe.task == "semantic-segmentation" and recipe.model.backbone.endswith("tf_efficientnet_lite0")


@pytest.mark.parametrize(
    "backbone, head, stride",
    [(TINY, "fpn", 4), (TINY, "lraspp", 8), (TINY, "deeplabv3", 32), ("torchvision:mobilenet_v2", "lraspp", 8)],
)
def test_heads_make_logits_at_their_stride_on_timm_and_torchvision(real_catalog, backbone, head, stride):
    model = assemble(backbone, head, labels=LABELS, pretrained=False, task="segmentation")
    assert model.head.out_stride == stride
    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 3, 64 // stride, 64 // stride)


def test_train_steps_lower_the_loss(real_catalog):
    from zoo_segmentation.task import _ce

    torch.manual_seed(0)
    model = assemble(TINY, "fpn", labels=LABELS, pretrained=False)
    grid = torch.rand(4, 3, 4, 4)  # 8x8 px blocks of colour; a block's class follows its colour
    images = grid.repeat_interleave(8, -1).repeat_interleave(8, -2)
    masks = (images[:, 0] > 0.5).long() + (images[:, 1] > 0.7).long()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = _ce(model(images), masks)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# -- metrics ------------------------------------------------------------------------------------------
def test_miou_pixel_accuracy_and_ignored_pixels():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    assert scores(confusion(target.clamp(max=2), target, 3), LABELS)["miou"] == 1.0
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 0, 0]])  # one background pixel called "box"; 255s never count
    got = scores(confusion(pred, target, 3), LABELS, per_class=True)
    assert got["pixel_accuracy"] == pytest.approx(5 / 6)
    assert [r["iou"] for r in got["per_class_iou"]] == pytest.approx([0.5, 2 / 3, 1.0])
    assert got["miou"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    absent = scores(confusion(torch.zeros(2, 2), torch.zeros(2, 2), 3), LABELS, per_class=True)
    assert absent["per_class_iou"][1]["iou"] is None and absent["miou"] == 1.0  # absent classes are not 0


# -- data ---------------------------------------------------------------------------------------------
def _items() -> tuple[np.ndarray, np.ndarray]:
    rect = np.zeros((28, 28), np.uint8)
    rect[4:24, 6:22] = 230
    cross = np.zeros((28, 28), np.uint8)
    cross[12:16, 2:26] = 230
    cross[2:26, 12:16] = 230
    return np.stack([rect, cross]), np.array([0, 1])


def write_folder(root: Path, train: int = 12, val: int = 4, size: int = 32) -> Path:
    """A tiny set in the plugin's folder layout: rectangles ('box') and crosses ('cross')."""
    items, labels = _items()
    for split, count, seed in (("train", train, 0), ("val", val, 1)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        scenes = compose(items, labels, [0, 1], count, seed, canvas=size, max_objects=2, min_scale=0.6, max_scale=1.0)
        for i, (img, mask) in enumerate(scenes):
            Image.fromarray(img).save(root / split / "images" / f"{i}.png")
            Image.fromarray(mask, mode="L").save(root / split / "masks" / f"{i}.png")
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return root


def test_demo_scenes_are_deterministic_with_exact_masks():
    items, labels = _items()
    a = compose(items, labels, [0, 1], 3, seed=5, canvas=48, max_objects=1, min_scale=1.0, max_scale=1.0)
    b = compose(items, labels, [0, 1], 3, seed=5, canvas=48, max_objects=1, min_scale=1.0, max_scale=1.0)
    for (img, mask), (img2, mask2) in zip(a, b):
        assert np.array_equal(img, img2) and np.array_equal(mask, mask2)
        assert set(np.unique(mask)) <= {0, 1, 2} and mask.any()
        # one item at scale 1: its silhouette is the item's bright pixels, exactly
        k = int(mask.max())
        assert (mask == k).sum() == (items[k - 1] > 24).sum()


def test_folder_layout_loads_resized_masks(tmp_path):
    root = write_folder(tmp_path / "d", train=3, val=1)
    split = load_folder_split(root / "train" / "images", root / "train" / "masks", 3, size=16)
    assert split.images.shape == (3, 3, 16, 16) and split.masks.shape == (3, 16, 16)
    assert split.masks.dtype == torch.uint8 and set(split.masks.unique().tolist()) <= {0, 1, 2}


def _bad(root: Path, case: str) -> Path:
    masks = root / "train" / "masks"
    if case == "bad mask":
        (masks / "0.png").write_bytes(b"not a png")
    elif case == "wrong class index":
        Image.fromarray(np.full((32, 32), 7, np.uint8), mode="L").save(masks / "0.png")
    elif case == "image without mask":
        (masks / "0.png").unlink()
    elif case == "mask of another size":
        Image.fromarray(np.zeros((20, 32), np.uint8), mode="L").save(masks / "0.png")
    elif case == "colour mask":
        Image.new("RGB", (32, 32), (1, 0, 0)).save(masks / "0.png")
    return masks / "0.png"


@pytest.mark.attack("images")
@pytest.mark.parametrize(
    "case, expected",
    [
        ("bad mask", "unreadable mask"),
        ("wrong class index", "holds class index 7, but there are 3 classes"),
        ("image without mask", "no mask (expected"),
        ("mask of another size", "is 32x20 px but its image is 32x32"),
        ("colour mask", "is a RGB image; a mask is a single-channel PNG"),
    ],
)
def test_data_errors_are_one_line_naming_the_file(tmp_path, case, expected):
    root = write_folder(tmp_path / "d", train=2, val=1)
    bad = _bad(root, case)
    with pytest.raises(ZooError) as err:
        load_folder_split(root / "train" / "images", root / "train" / "masks", 3, size=32)
    message = str(err.value)
    assert "\n" not in message and expected in message
    assert str(bad if case != "image without mask" else root / "train" / "images" / "0.png") in message


def test_coco_polygons_rle_and_crowd(tmp_path):
    from pycocotools import mask as mask_utils

    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    rle_mask = np.zeros((10, 20), np.uint8, order="F")
    rle_mask[6:9, 15:19] = 1
    rle = mask_utils.encode(rle_mask)
    rle["counts"] = rle["counts"].decode()
    crowd = mask_utils.encode(np.asfortranarray((np.arange(20)[None, :] < 2).repeat(10, 0).astype(np.uint8)))
    crowd["counts"] = crowd["counts"].decode()
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
        "categories": [{"id": 3, "name": "cat"}, {"id": 9, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "segmentation": [[4, 1, 10, 1, 10, 5, 4, 5]], "area": 24},
            {"id": 2, "image_id": 1, "category_id": 9, "segmentation": rle, "area": 12},
            {"id": 3, "image_id": 1, "category_id": 3, "segmentation": crowd, "area": 20, "iscrowd": 1},
        ],
    }
    (tmp_path / "a.json").write_text(json.dumps(coco))
    split, labels = load_coco_split(tmp_path / "a.json", None, size=20)
    assert labels == ["background", "cat", "dog"]
    mask = torch.nn.functional.interpolate(split.masks[None].float(), size=(10, 20), mode="nearest")[0, 0]
    assert mask[3, 7] == 1 and mask[7, 16] == 2 and mask[5, 0] == 255 and mask[8, 8] == 0

    coco["annotations"][0]["segmentation"] = {"counts": "xx", "size": [99, 99]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    with pytest.raises(ZooError, match=r"a\.json: annotation 1 \(a\.png\): bad segmentation"):
        load_coco_split(tmp_path / "a.json", None, size=20)


# -- end to end ---------------------------------------------------------------------------------------
def tiny_recipe(data: Path, head: str = "fpn") -> dict:
    return {
        "name": "tiny-seg",
        "task": "semantic-segmentation",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": TINY, "pretrained": False, "head": head, "head_options": {"channels": 16}},
        "data": {"path": str(data), "image_size": 32, "batch_size": 4},
        "stages": [
            {"name": "head", "train": "head", "epochs": 3, "lr": 1e-2},
            {"name": "finetune", "train": "all", "epochs": 3, "lr": 3e-3},
        ],
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, warm_cli_env):
    """One tiny run, trained once by ``zoo finetune`` (the CLI, as a user runs it)."""
    root = tmp_path_factory.mktemp("tiny-seg")
    data = write_folder(root / "data")
    recipe = root / "tiny-seg.toml"
    recipe.write_text(tomli_w.dumps(tiny_recipe(data)))
    proc = zoo_subprocess("finetune", str(recipe), "--out", str(root / "run"), "--quiet", env=warm_cli_env)
    assert proc.returncode == 0, proc.stderr
    image = data / "val" / "images" / "0.png"
    return SimpleNamespace(path=root / "run", data=data, image=image, stdout=proc.stdout, recipe=recipe)


def test_a_finetune_learns_and_writes_its_run(real_catalog, tiny_run):
    run = tiny_run.path
    assert tiny_run.stdout.startswith(f"run {run}: miou ") and "on 4 validation examples" in tiny_run.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert {"loss", "miou", "pixel_accuracy"} <= set(summary["metrics"])
    assert all(math.isfinite(v) for v in summary["metrics"].values())
    assert [r["label"] for r in summary["per_class_iou"]] == LABELS
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["stage"] for h in history] == [0, 0, 0, 1, 1, 1]
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]  # it learns
    assert (run / "val_segmentation.png").is_file()
    model = modelzoo.load(run)
    assert model.task == "semantic-segmentation" and model.labels == LABELS
    assert model.preprocess["input_size"] == [3, 32, 32]


def test_zoo_eval_prints_per_class_iou_and_draws_predictions(real_catalog, tiny_run, tmp_path, capsys):
    from modelzoo.cli.main import main

    summary = json.loads((tiny_run.path / "summary.json").read_text())
    capsys.readouterr()
    # the run's batch size: other batch shapes may round a near-tie pixel of this tiny model the other way
    assert main(["eval", str(tiny_run.path), "--batch-size", "4", "--out", str(tmp_path / "pics")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("loss ") and " miou " in lines[0] and lines[0].endswith("(4 examples)")
    assert float(lines[0].split(" miou ")[1].split()[0]) == pytest.approx(summary["metrics"]["miou"], abs=2e-3)
    assert lines[1].split() == ["class", "IoU", "pixels"]
    assert [line.split()[0] for line in lines[2:]] == LABELS
    assert (tmp_path / "pics" / "val_segmentation.png").is_file() and "val_segmentation.png" in captured.err

    # --data: another folder in the same layout
    assert main(["eval", str(tiny_run.path), "--data", str(tiny_run.data / "val"), "--batch-size", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["miou"] == pytest.approx(summary["metrics"]["miou"], abs=2e-3)


def test_zoo_predict_writes_colour_masks_and_overlays(real_catalog, tiny_run, tmp_path, capsys):
    from modelzoo.cli.main import main

    image = tiny_run.image
    big = tmp_path / "big.png"
    Image.open(image).resize((48, 40)).save(big)  # any size: the mask comes back at the image's size
    assert main(["predict", str(tiny_run.path), str(image), str(big), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"{image}: 32x32 px; ") and lines[1].startswith(f"{big}: 48x40 px; ")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["0_mask.png", "0_overlay.png", "big_mask.png", "big_overlay.png"]
    mask = Image.open(tmp_path / "out" / "big_mask.png")
    assert mask.mode == "P" and mask.size == (48, 40)  # a palette PNG: values are class indices
    predicted = modelzoo.load(tiny_run.path).predict([str(big)])[0]["mask"]
    assert np.array_equal(np.asarray(mask), predicted)
    assert Image.open(tmp_path / "out" / "big_overlay.png").mode == "RGB"

    assert main(["predict", str(tiny_run.path), str(image), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["size"] == [32, 32] and sum(listed[0]["classes"].values()) == pytest.approx(1.0)


def test_a_run_resumes_to_the_same_result(real_catalog, tiny_run, tmp_path):
    """Kill -9 mid-run, resume: the same metrics as an uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time

    recipe = tiny_recipe(tiny_run.data)
    recipe["stages"][1]["epochs"] = 6  # so that the kill lands mid-run however fast the machine is
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(recipe))
    reference = modelzoo.finetune(str(path), out=tmp_path / "ref", quiet=True)
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(path), "--out", str(run_dir), "--quiet"]
    env = {**os.environ, "MODELZOO_CHECKPOINT_SECONDS": "0"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    metrics, deadline = run_dir / "metrics.jsonl", time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make the recipe longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = modelzoo.finetune(resume=run_dir, quiet=True)
    assert resumed.metrics == reference.metrics
    assert [h["val_miou"] for h in resumed.history] == [h["val_miou"] for h in reference.history]


def test_cached_features_serve_every_head_on_the_same_backbone(real_catalog, tmp_path):
    """The feature cache is keyed by the backbone, not the head: a second run whose head reads other
    levels trains on the first run's cached pyramid."""
    data = write_folder(tmp_path / "data", train=4, val=2)
    runs = []
    for i, (head, options) in enumerate((("fpn", {"min_stride": 8}), ("fpn", {"min_stride": 4}))):
        recipe = tiny_recipe(data, head)
        recipe["model"]["head_options"] = options
        recipe["stages"] = recipe["stages"][:1]
        recipe["stages"][0]["epochs"] = 1
        path = tmp_path / f"r{i}.toml"
        path.write_text(tomli_w.dumps(recipe))
        runs.append(modelzoo.finetune(str(path), out=tmp_path / f"run{i}", quiet=True))
    assert all(math.isfinite(r.metrics["miou"]) for r in runs)


def test_zoo_predict_on_a_folder_writes_one_mask_per_image(real_catalog, tiny_run, tmp_path):
    import csv

    from modelzoo.cli.main import main

    folder = tmp_path / "shots"
    (folder / "day1").mkdir(parents=True)
    Image.open(tiny_run.image).save(folder / "a.png")
    Image.open(tiny_run.image).resize((40, 36)).save(folder / "day1" / "b.png")
    out = tmp_path / "preds.csv"
    assert main(["predict", str(tiny_run.path), str(folder), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == ["a.png", "day1/b.png"]
    masks = [Path(r["mask"]) for r in rows]
    assert [m.name for m in masks] == ["a_mask.png", "b_mask.png"] and masks[1].parent.name == "day1"
    assert Image.open(masks[1]).size == (40, 36) and json.loads(rows[1]["size"]) == [40, 36]
