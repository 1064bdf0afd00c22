"""Object detection: plugin heads on timm and torchvision pyramids, training, COCO mAP, data
validation (COCO and VOC), box-moving augmentation, and a finetune -> load -> eval -> predict round
trip through the engine on a tiny synthetic set. Offline, CPU, random init, tiny images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from modelzoo.adapters.object_detection import (
    DetectionDataset,
    Record,
    build_augment,
    coco_map,
    collate_detection,
    load_coco,
    load_voc,
)
from modelzoo.errors import RecipeError, ZooError
from modelzoo.model import assemble, from_config

HEADS = ["fasterrcnn", "retinanet", "fcos", "ssdlite"]
BACKBONES = ["timm:mobilenetv3_small_050", "torchvision:mobilenet_v2"]
LR = {"fasterrcnn": 1e-3, "retinanet": 1e-3, "fcos": 1e-3, "ssdlite": 5e-3}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run faster on one thread


def tiny_options(head: str) -> dict:
    if head == "ssdlite":
        return {"size": 64}
    return {"min_size": 64, "max_size": 64, "out_channels": 32}


def tiny_batch():
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 64, 64, generator=gen), torch.rand(3, 56, 72, generator=gen)]
    targets = [
        {"boxes": torch.tensor([[8.0, 10.0, 40.0, 50.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[4.0, 4.0, 30.0, 28.0], [36.0, 20.0, 70.0, 54.0]]), "labels": torch.tensor([2, 1])},
    ]
    return images, targets


# -- heads on two kinds of pyramid backbone -----------------------------------------------------
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("head", HEADS)
def test_every_head_assembles_on_timm_and_torchvision_pyramids(real_catalog, head, backbone):
    from zoo_detection.heads import describe

    model = assemble(backbone, head, 2, labels=["a", "b"], pretrained=False, head_options=tiny_options(head))
    levels = model.backbone.info.levels
    neck = model.head.neck
    # the glue comes from the backbone: chosen levels' channels/strides, extra levels double the stride
    assert [levels[i].stride for i in neck.use] == neck.strides[: len(neck.use)]
    assert all(b == 2 * a for a, b in zip(neck.strides, neck.strides[1:]))
    assert describe(model.head).startswith(head)
    # the backbone's parameters are registered once, under backbone.
    keys = list(model.state_dict())
    assert not any(k.startswith("head.") and ".backbone." in k for k in keys)
    images, targets = tiny_batch()
    model.train()
    losses, _ = model.head.detect(model.backbone, images, targets)
    assert losses and all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        val_losses, dets = model.head.detect(model.backbone, images, targets)
    assert set(val_losses) == set(losses)
    assert len(dets) == 2 and dets[1]["boxes"].shape[-1] == 4
    if len(dets[1]["boxes"]):
        assert dets[1]["boxes"][:, 2].max() <= 72.01 and dets[1]["boxes"][:, 3].max() <= 56.01  # original pixels
    # config.json rebuilds the same architecture: strict state-dict round trip
    rebuilt = from_config(json.loads(json.dumps(model.config)))
    rebuilt.load_state_dict(model.state_dict(), strict=True)


def test_taskmodel_forward_on_a_normalised_batch(real_catalog):
    model = assemble(BACKBONES[0], "retinanet", 2, pretrained=False, head_options=tiny_options("retinanet"))
    model.eval()
    with torch.no_grad():
        dets = model(torch.randn(2, 3, 64, 64))
    assert len(dets) == 2 and set(dets[0]) == {"boxes", "scores", "labels"}
    model.train()
    with pytest.raises(ZooError, match="needs targets"):
        model(torch.randn(1, 3, 64, 64))


def test_incompatible_pairing_is_refused_with_both_sides(real_catalog):
    with pytest.raises(ZooError) as err:
        assemble("torchvision:vit_b_16", "fasterrcnn", 2, pretrained=False)
    msg = str(err.value)
    assert "\n" not in msg
    assert "fasterrcnn" in msg and "consumes pyramid" in msg and "vit_b_16" in msg and "emits pooled" in msg
    # the builder itself refuses a non-pyramid backbone too (e.g. a third-party spec that lies)
    from zoo_detection.heads import build_fcos

    import modelzoo

    pooled = modelzoo.create_backbone("timm:mobilenetv3_small_050", pretrained=False, output="pooled")
    with pytest.raises(ZooError, match="consumes a pyramid.*emits pooled"):
        build_fcos(pooled, 2)


def test_unknown_head_option_names_the_valid_ones(real_catalog):
    with pytest.raises(ZooError, match="unknown option.*'box_batch_size'.*box_batch_size_per_image"):
        assemble(BACKBONES[0], "fasterrcnn", 2, pretrained=False, head_options={"box_batch_size": 8})
    with pytest.raises(ZooError, match="levels \\[3\\] are not strides"):
        assemble(BACKBONES[0], "fasterrcnn", 2, pretrained=False, head_options={"levels": [3]})


@pytest.mark.parametrize("head", HEADS)
def test_train_steps_lower_the_loss(real_catalog, head):
    torch.manual_seed(0)
    model = assemble(BACKBONES[0], head, 2, pretrained=False, head_options=tiny_options(head))
    model.train()
    model.backbone.eval()  # the head stage: frozen backbone, BatchNorm statistics fixed
    model.backbone.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR[head])
    images, targets = tiny_batch()
    history = []
    for _ in range(10):
        torch.manual_seed(1)  # the same proposal sampling every step: compare like with like
        losses, _ = model.head.detect(model.backbone, images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert min(history[5:]) < 0.85 * history[0], history  # (focal losses wobble on one tiny batch)


# -- the metric ---------------------------------------------------------------------------------
def _records():
    return [
        Record("a.png", 100, 80, [[10, 10, 50, 40], [60, 20, 90, 70]], [0, 1], [False, False]),
        Record("b.png", 100, 80, [[5, 5, 45, 45]], [0], [False]),
    ]


def _dets(records, shift=0.0, labels=None):
    out = {}
    for i, r in enumerate(records):
        boxes = torch.tensor(r.boxes, dtype=torch.float32)
        w = boxes[:, 2] - boxes[:, 0]
        boxes[:, [0, 2]] += (shift * w)[:, None]
        out[i] = {
            "boxes": boxes,
            "scores": torch.ones(len(boxes)),
            "labels": torch.tensor(labels if labels is not None else r.labels),
        }
    return out


def test_map_is_one_for_perfect_predictions_and_lower_for_shifted_boxes():
    records, labels = _records(), ["cat", "dog", "bird"]
    perfect = coco_map(records, _dets(records), labels, per_class=True)
    assert perfect["map"] == pytest.approx(1.0) and perfect["map_50"] == pytest.approx(1.0)
    rows = {r["label"]: r for r in perfect["per_class_ap"]}
    assert rows["cat"]["ap"] == pytest.approx(1.0) and rows["cat"]["num_objects"] == 2
    assert rows["bird"]["ap"] is None and rows["bird"]["num_objects"] == 0  # no objects: no AP, not 0
    shifted = coco_map(records, _dets(records, shift=0.2), labels)
    assert 0.0 < shifted["map"] < 0.9 and shifted["map_50"] == pytest.approx(1.0)  # IoU 0.67: counts at .5 only
    far = coco_map(records, _dets(records, shift=0.6), labels)
    assert far["map"] == 0.0 and far["map_50"] == 0.0
    wrong = coco_map(records[1:], {0: _dets(records[1:])[0] | {"labels": torch.tensor([1])}}, labels)
    assert wrong["map"] == 0.0
    assert coco_map(records, {}, labels, per_class=True)["per_class_ap"][0]["ap"] == 0.0  # nothing found


def test_crowd_regions_are_ignored_by_the_metric():
    records = [Record("a.png", 100, 80, [[10, 10, 50, 40], [60, 20, 90, 70]], [0, 0], [False, True])]
    dets = {
        0: {
            "boxes": torch.tensor([[10.0, 10, 50, 40], [60, 20, 90, 70]]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([0, 0]),
        }
    }
    assert coco_map(records, dets, ["cat"])["map"] == pytest.approx(1.0)


# -- data: COCO, VOC, validation, augmentation ------------------------------------------------
def _write_image(path: Path, size=(40, 30), box=None) -> None:
    from PIL import Image

    arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    if box is not None:
        x0, y0, x1, y1 = box
        arr[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _coco(tmp_path: Path, annotations: list[dict], images: list[dict] | None = None) -> Path:
    imgs = tmp_path / "images"
    for name in ("a.png", "b.png"):
        _write_image(imgs / name)
    data = {
        "images": images
        or [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "annotations": annotations,
        "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


GOOD = [
    {"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 3, 10, 12]},
    {"id": 2, "image_id": 2, "category_id": 7, "bbox": [20, 5, 19, 20], "iscrowd": 1},
]


def test_coco_loading(tmp_path):
    path = _coco(tmp_path, GOOD)
    records, labels, counts = load_coco(path, tmp_path / "images")
    assert labels == ["cat", "dog"]  # categories ordered by id, ids mapped to indices
    assert records[0].boxes == [[2.0, 3.0, 12.0, 15.0]] and records[0].labels == [0]
    assert records[1].labels == [1] and records[1].crowd == [True]
    assert counts == {"skipped_images": 0, "skipped_annotations": 0}


@pytest.mark.parametrize(
    "bad, expected",
    [
        (
            {"id": 9, "image_id": 1, "category_id": 3, "bbox": [30, 20, 20, 5]},
            r"annotation id 9 \(image a.png\): box .* outside the 40x30 image",
        ),
        (
            {"id": 9, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 4]},
            r"annotation id 9 \(image a.png\): box .* zero or negative width/height",
        ),
        (
            {"id": 9, "image_id": 1, "category_id": 5, "bbox": [5, 5, 4, 4]},
            r"annotation id 9 .*category_id 5 is not among the categories \[3, 7\]",
        ),
        (
            {"id": 9, "image_id": 42, "category_id": 3, "bbox": [5, 5, 4, 4]},
            r"annotation id 9: image_id 42 is not in 'images'",
        ),
        (
            {"id": 9, "image_id": 1, "category_id": 3, "bbox": [5, 5]},
            r"annotation id 9 .*bbox \[5, 5\] is not \[x, y, width, height\]",
        ),
    ],
)
def test_coco_validation_errors_are_one_line_each(tmp_path, bad, expected):
    path = _coco(tmp_path, [*GOOD, bad])
    with pytest.raises(ZooError, match=expected) as err:
        load_coco(path, tmp_path / "images")
    assert "\n" not in str(err.value) and "ann.json" in str(err.value) and 'on_bad_image = "skip"' in str(err.value)
    records, _, counts = load_coco(path, tmp_path / "images", on_bad="skip")
    assert counts["skipped_annotations"] == 1 and sum(len(r.boxes) for r in records) == 2


def test_coco_missing_and_mismatched_images(tmp_path):
    images = [
        {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
        {"id": 2, "file_name": "gone.png", "width": 40, "height": 30},
        {"id": 3, "file_name": "b.png", "width": 64, "height": 30},
    ]
    path = _coco(tmp_path, GOOD[:1], images)
    with pytest.raises(ZooError) as err:
        load_coco(path, tmp_path / "images")
    msg = str(err.value)
    assert "\n" not in msg and "image id 2 (gone.png): file not found in" in msg and "(and 1 more problem(s)" in msg
    (tmp_path / "images" / "gone.png").write_bytes(b"not a png")
    with pytest.raises(ZooError, match="gone.png.*unreadable image"):
        load_coco(path, tmp_path / "images")
    records, _, counts = load_coco(path, tmp_path / "images", on_bad="skip")
    assert [Path(r.path).name for r in records] == ["a.png"] and counts["skipped_images"] == 2
    with pytest.raises(ZooError, match="not valid JSON"):
        (tmp_path / "broken.json").write_text("{oops")
        load_coco(tmp_path / "broken.json", tmp_path)


def _voc(root: Path, objects: dict[str, list[tuple]]) -> None:
    (root / "Annotations").mkdir(parents=True)
    for image_id, objs in objects.items():
        _write_image(root / "JPEGImages" / f"{image_id}.png")
        xml = [f"<annotation><filename>{image_id}.png</filename><size><width>40</width><height>30</height></size>"]
        for name, (x0, y0, x1, y1), difficult in objs:
            xml.append(
                f"<object><name>{name}</name><difficult>{int(difficult)}</difficult>"
                f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            )
        (root / "Annotations" / f"{image_id}.xml").write_text("".join(xml) + "</annotation>")


def test_voc_loading_and_errors(tmp_path):
    root = tmp_path / "voc"
    _voc(root, {"0001": [("dog", (3, 4, 12, 15), False)], "0002": [("cat", (21, 6, 39, 25), True)]})
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("0001\n0002\n")
    records, labels, _ = load_voc(root, ["0001", "0002"])
    assert labels == ["cat", "dog"]
    assert records[0].boxes == [[2.0, 3.0, 12.0, 15.0]] and records[0].labels == [1]  # 1-based corners -> 0-based
    assert records[1].crowd == [True]  # difficult objects are ignored regions, as in VOC's evaluation
    with pytest.raises(ZooError, match=r"0002.xml: object 1 \(cat\): class 'cat' is not among the labels \['dog'\]"):
        load_voc(root, None, labels=["dog"])
    bad = tmp_path / "bad"
    _voc(bad, {"0001": [("dog", (3, 4, 60, 15), False)]})
    with pytest.raises(ZooError, match=r"Annotations/0001.xml: object 1 \(dog\): box .* outside the 40x30 image"):
        load_voc(bad, None)
    with pytest.raises(ZooError, match="0003.xml: not found"):
        load_voc(root, ["0001", "0003"])


def test_light_augmentation_moves_boxes_with_the_image():
    from modelzoo.adapters.object_detection import _read_rgb  # noqa: F401  (the dataset's reader)

    img = torch.zeros(3, 40, 60, dtype=torch.uint8)
    img[:, 5:20, 8:30] = 255
    memory = {"x.png": img}
    rec = Record("x.png", 60, 40, [[8.0, 5.0, 30.0, 20.0]], [0], [False])
    ds = DetectionDataset([rec], build_augment("light"), memory)
    moved = 0
    for seed in range(12):
        torch.manual_seed(seed)
        out, target = ds[0]
        (x0, y0, x1, y1) = target["boxes"][0].round().int().tolist()
        inside = out[0, y0:y1, x0:x1].mean().item()
        outside = (out[0].sum().item() - out[0, y0:y1, x0:x1].sum().item()) / (out[0].numel() - (x1 - x0) * (y1 - y0))
        assert inside > 0.6 and outside < 0.05, (seed, target["boxes"])  # the bright patch is inside its box
        moved += (x0, y0) != (8, 5)
    assert moved >= 3
    images, targets = collate_detection([ds[0], ds[0]])
    assert isinstance(images, list) and len(targets) == 2 and targets[0]["labels"].tolist() == [1]


# -- the demo set -------------------------------------------------------------------------------
def test_demo_scenes_are_deterministic_with_exact_boxes():
    from zoo_detection.demo import compose

    rng = np.random.default_rng(0)
    items = (rng.random((20, 28, 28)) * 255 * (rng.random((20, 28, 28)) > 0.5)).astype(np.uint8)
    items[:, :4] = 0  # a dark margin, like Fashion-MNIST items
    labels = np.arange(20) % 3
    a = compose(items, labels, 4, seed=1, canvas=96)
    b = compose(items, labels, 4, seed=1, canvas=96)
    assert all((x[0] == y[0]).all() and x[1] == y[1] for x, y in zip(a, b))
    assert compose(items, labels, 1, seed=2, canvas=96)[0][1] != a[0][1]
    for img, objects in a:
        assert img.shape == (96, 96, 3) and 1 <= len(objects) <= 4
        for (x0, y0, x1, y1), label in objects:
            assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 96 and label in (0, 1, 2)


def test_demo_dataset_spec_and_recipe_are_registered(real_catalog):
    spec = real_catalog.get("fashion-mnist-scenes", kind="dataset")
    assert "object-detection" in spec.tasks and "REAL Fashion-MNIST" in spec.description
    heads = {s.name for s in real_catalog.specs if s.kind == "head" and "object-detection" in s.tasks}
    assert set(HEADS) <= heads
    assert all(real_catalog.get(h, kind="head").consumes == ["pyramid"] for h in HEADS)


def test_recipe_validation_for_detection_data():
    from modelzoo.recipe import validate

    base = {"task": "object-detection", "model": {"backbone": "x", "head": "fasterrcnn"}, "stages": [{"train": "head"}]}
    with pytest.raises(RecipeError, match="data.format: 'csv' is not one of coco, voc"):
        validate({**base, "data": {"format": "csv"}})
    with pytest.raises(RecipeError, match="data.train_file: a COCO recipe needs"):
        validate({**base, "data": {"format": "coco"}})
    with pytest.raises(RecipeError, match="data.path: a VOC recipe needs"):
        validate({**base, "data": {"format": "voc"}})


# -- end to end through the engine --------------------------------------------------------------
def _tiny_scene_set(root: Path) -> None:
    """Bright rectangles (class 'box') and crosses (class 'cross') on dark canvases, as COCO."""
    from zoo_detection.demo import write_coco

    rect = np.zeros((28, 28), np.uint8)
    rect[4:24, 6:22] = 230
    cross = np.zeros((28, 28), np.uint8)
    cross[12:16, 2:26] = 230
    cross[2:26, 12:16] = 230
    items, labels = np.stack([rect, cross]), np.array([0, 1])
    from zoo_detection.demo import compose

    (root / "images").mkdir(parents=True)
    for split, count, seed in (("train", 8, 0), ("val", 4, 1)):
        scenes = compose(items, labels, count, seed, canvas=64, max_objects=2, min_scale=0.8, max_scale=1.2)
        write_coco(scenes, ["box", "cross"], root / "images", root / f"{split}.json", split)


def tiny_recipe(data: Path) -> dict:
    """Two short stages of a tiny Faster R-CNN on the tiny scene set."""
    return {
        "name": "tiny-det",
        "task": "object-detection",
        "seed": 0,
        "device": "cpu",
        "model": {
            "backbone": BACKBONES[0],
            "pretrained": False,
            "head": "fasterrcnn",
            "head_options": {"levels": [16], "fpn": False, "out_channels": 32, "representation_size": 64},
        },
        "data": {
            "format": "coco",
            "path": str(data),
            "train_file": "train.json",
            "val_file": "val.json",
            "images_dir": "images",
            "image_size": 64,
            "batch_size": 4,
            "augment": "light",
        },
        "stages": [
            {"name": "head", "train": "head", "epochs": 1, "lr": 1e-3, "augment": True},
            {"name": "finetune", "train": "last:1", "epochs": 1, "lr": 1e-4, "freeze_bn_stats": True},
        ],
    }


def test_finetune_load_eval_predict_round_trip(real_catalog, tmp_path, capsys):
    import modelzoo
    from modelzoo.cli import main
    from modelzoo.engine import finetune
    from modelzoo.predict_detection import draw_detections, save_annotated

    data = tmp_path / "scenes"
    _tiny_scene_set(data)
    recipe = tiny_recipe(data)
    from modelzoo.recipe import validate

    run = finetune(validate(recipe), out=tmp_path / "run", quiet=True)
    assert {"loss", "map", "map_50", "map_75"} <= set(run.metrics)
    assert all(math.isfinite(v) for v in run.metrics.values())
    assert run.model.config["head"]["options"]["min_size"] == 64  # data.image_size became the head's size
    history = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [h["stage"] for h in history] == [0, 1] and "val_map" in history[0]
    summary = json.loads((run.path / "summary.json").read_text())
    assert [r["label"] for r in summary["per_class_ap"]] == ["box", "cross"]
    for name in ("val_detections.png", "per_class_ap.png", "training_curves.png"):
        assert (run.path / name).is_file(), name

    model = modelzoo.load(run.path)  # config.json + model.safetensors, strict
    assert model.task == "object-detection" and model.labels == ["box", "cross"]
    image = data / "images" / "val_00000.png"
    results = model.predict([str(image)], score_threshold=0.0)
    assert isinstance(results[0], list)
    for det in results[0]:
        assert det["label"] in ("box", "cross") and 0 <= det["score"] <= 1 and len(det["box"]) == 4
    drawn = draw_detections(str(image), results[0][:3], labels=model.labels)
    assert drawn.size == (64, 64)
    written = save_annotated([str(image)], results, tmp_path / "annotated.png", model.labels)
    assert written[0].is_file()

    capsys.readouterr()
    assert main(["eval", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "map " in out and "map_50 " in out and "(4 examples)" in out

    # zoo predict: boxes as text and JSON, drawn into --out
    capsys.readouterr()
    assert main(["predict", str(run.path), str(image), "--score-threshold", "0", "--out", str(tmp_path / "a.png")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{image}: ") and "detection" in captured.out
    assert f"wrote {tmp_path / 'a.png'}" in captured.err and (tmp_path / "a.png").is_file()
    assert main(["predict", str(run.path), str(image), "--score-threshold", "0", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["input"] == str(image) and listed[0]["detections"] == json.loads(json.dumps(results[0]))

    # a detector round-trips through the Hub like a classifier: push, pull at the sha, same boxes, card
    from hubserver import HubServer
    from huggingface_hub import ModelCard
    from test_hub import hub_env, ok, zoo

    with HubServer() as server:
        env = hub_env(server, tmp_path / "home")
        _, sha = ok(zoo("push", run.path, "org/tiny-det", env=env))
        pulled = tmp_path / "pulled"
        assert ok(zoo("pull", f"org/tiny-det@{sha}", "--to", pulled, env=env))[0] == sha
    again = modelzoo.load(pulled).predict([str(image)], score_threshold=0.0)
    assert again == results
    card = ModelCard.load(pulled / "README.md")
    assert card.data.pipeline_tag == "object-detection"
    assert {r.metric_type for r in card.data.eval_results} >= {"map", "map_50"}


def test_detection_run_resumes_after_kill_9(real_catalog, tmp_path):
    """The engine's resume works for detectors too: kill -9 after the first stage, resume, same result."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import tomli_w

    from modelzoo.engine import finetune

    data = tmp_path / "scenes"
    _tiny_scene_set(data)
    recipe = tiny_recipe(data)
    recipe["stages"][1]["epochs"] = 3
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(recipe))
    reference = finetune(str(path), out=tmp_path / "ref", quiet=True)

    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(path), "--out", str(run_dir), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics, deadline = run_dir / "metrics.jsonl", time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make the recipe longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    resumed = finetune(resume=run_dir, quiet=True)
    assert resumed.metrics == reference.metrics
    assert [h["val_map"] for h in resumed.history] == [h["val_map"] for h in reference.history]
