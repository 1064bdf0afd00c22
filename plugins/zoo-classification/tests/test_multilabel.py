"""Multi-label image classification: labels files and their one-line errors, mAP and threshold tuning,
learning an easy set, thresholds saved with the model and read back by modelzoo.load, predict and eval output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo_classification.multilabel_data import compose_scenes, read_labels_file, split_from_rows
from zoo_classification.multilabel_metrics import average_precision, best_threshold, summarize

from modelzoo import ZooError

COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def _png(path: Path, colors: list[str], seed: int, size: int = 24) -> None:
    """Vertical stripes of the given colours (each colour a label), with noise."""
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)
    arr = torch.zeros(size, size, 3)
    width = size // len(colors)
    for i, name in enumerate(colors):
        arr[:, i * width : size if i == len(colors) - 1 else (i + 1) * width] = torch.tensor(COLORS[name]).float()
    arr = (arr + torch.randint(-30, 30, (size, size, 3), generator=gen)).clamp(0, 255).to(torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.numpy()).save(path)


def write_set(root: Path, count: int, seed: int, name: str, fmt: str = "csv") -> Path:
    """``count`` images of 1-2 coloured stripes under root/images/ and a labels file root/<name>.<fmt>."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        picked = sorted(rng.choice(list(COLORS), size=int(rng.integers(1, 3)), replace=False).tolist())
        file = f"images/{name}_{i}.png"
        _png(root / file, picked, seed * 1000 + i)
        rows.append((file, picked))
    if fmt == "csv":
        text = "image,labels\n" + "".join(f"{f},{'|'.join(labels)}\n" for f, labels in rows)
    else:
        text = "".join(json.dumps({"image": f, "labels": labels}) + "\n" for f, labels in rows)
    (root / f"{name}.{fmt}").write_text(text)
    return root / f"{name}.{fmt}"


# -- labels files: every fault one line naming the file and the line ---------------------------------
def test_labels_files_read_csv_and_jsonl_relative_to_their_folder(tmp_path, monkeypatch):
    csv_file = write_set(tmp_path / "a", 3, seed=0, name="train")
    jsonl_file = write_set(tmp_path / "b", 3, seed=0, name="train", fmt="jsonl")
    monkeypatch.chdir(tmp_path)  # relative image paths resolve against the labels file, not here
    rows = read_labels_file(csv_file)
    assert [r.labels for r in rows] == [r.labels for r in read_labels_file(jsonl_file)]
    assert all(r.image.is_file() and r.image.parent == tmp_path / "a" / "images" for r in rows)
    split = split_from_rows(rows, ["blue", "green", "red"])
    assert split.targets.shape == (3, 3) and split.targets.sum(1).min() >= 1


@pytest.mark.parametrize(
    "content, error",
    [
        ("image,labels\nimages/x.png,red\nnothere.png,red\n", r"train\.csv:3: image nothere\.png not found"),
        ("image,labels\nimages/x.png,red\nimages/x.png,\n", r"train\.csv:3: images/x\.png has an empty label list"),
        ("image,labels\nimages/x.png,red\nbroken.png,red\n", r"train\.csv:3: .*broken\.png"),
        ("file,tags\nimages/x.png,red\n", r"train\.csv:1: the header must name an 'image'"),
    ],
    ids=["missing image", "empty labels", "unreadable image", "bad header"],
)
def test_labels_file_faults_name_file_and_line(tmp_path, content, error):
    _png(tmp_path / "images" / "x.png", ["red"], 0)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "train.csv").write_text(content)
    with pytest.raises(ZooError, match=error) as info:
        read_labels_file(tmp_path / "train.csv")
    assert "\n" not in str(info.value)


def test_jsonl_faults_and_unknown_labels(tmp_path):
    _png(tmp_path / "images" / "x.png", ["red"], 0)
    bad = tmp_path / "val.jsonl"
    bad.write_text('{"image": "images/x.png", "labels": ["red"]}\n\n{"image": "images/x.png", "labels": []}\n')
    with pytest.raises(ZooError, match=r"val\.jsonl:3: images/x\.png has an empty label list"):
        read_labels_file(bad)
    bad.write_text('{"image": "images/x.png", "labels": ["red"]}\n{not json\n')
    with pytest.raises(ZooError, match=r"val\.jsonl:2: not valid JSON"):
        read_labels_file(bad)
    bad.write_text('{"image": "images/x.png", "labels": ["red", "grene"]}\n')
    with pytest.raises(ZooError, match=r"val\.jsonl:1: unknown label 'grene'.*green"):
        split_from_rows(read_labels_file(bad), ["green", "red"])
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ZooError, match=r"val\.jsonl: not UTF-8 text"):
        read_labels_file(bad)
    with pytest.raises(ZooError, match=r"nothing\.csv: labels file not found"):
        read_labels_file(tmp_path / "nothing.csv")


def test_starter_recipes_recognise_labels_files_only(tmp_path):
    from zoo_classification.multilabel import MultiLabelClassification as Task

    write_set(tmp_path / "d", 2, seed=0, name="train")
    write_set(tmp_path / "d", 2, seed=1, name="val")
    jsonl = write_set(tmp_path / "j", 2, seed=0, name="labels", fmt="jsonl")
    assert Task.starter_data(tmp_path / "d") == {"path": str(tmp_path / "d")}
    assert Task.starter_data(jsonl) == {"path": str(jsonl), "val_split": 0.2}
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert Task.starter_data(tmp_path / "other.csv") is None
    assert Task.starter_data(tmp_path / "d" / "images") is None


# -- metrics --------------------------------------------------------------------------------------
def test_average_precision_and_thresholds():
    scores, truth = torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])
    assert average_precision(scores, truth) == pytest.approx(0.8333333)  # scikit-learn's documented example
    assert average_precision(scores, torch.zeros(4)) is None
    # keeping 0.8 and 0.35 (dropping 0.1) is F1-best; the cut falls half-way to the next lower score
    assert best_threshold(torch.tensor([0.9, 0.8, 0.3, 0.2]), torch.tensor([1, 1, 0, 0])) == pytest.approx(0.55)
    logits = torch.logit(torch.tensor([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6]]))
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    tuned = summarize(logits, targets, per_class=True)
    assert tuned["map"] == pytest.approx(1.0) and tuned["micro_f1"] == pytest.approx(1.0)
    fixed = summarize(logits, targets, thresholds=[0.95, 0.5], per_class=True)
    assert fixed["per_class"][0]["f1"] == 0.0 and fixed["thresholds"] == [0.95, 0.5]
    assert not fixed["thresholds_tuned_here"] and tuned["thresholds_tuned_here"]


def test_demo_scenes_label_the_classes_present():
    items = np.zeros((4, 28, 28), dtype=np.uint8)
    items[:, 6:22, 6:22] = 200
    scenes, targets = compose_scenes(items, np.array([0, 1, 2, 3]), 6, seed=3, num_classes=5, canvas=48)
    again, same = compose_scenes(items, np.array([0, 1, 2, 3]), 6, seed=3, num_classes=5, canvas=48)
    assert scenes.shape == (6, 48, 48, 3) and targets.shape == (6, 5)
    assert np.array_equal(scenes, again) and np.array_equal(targets, same)
    assert targets.sum(1).min() >= 1 and targets[:, 4].sum() == 0  # class 4 has no items


def test_the_demo_set_and_recipe():
    from zoo_classification.data import FASHION_MNIST_DIRS

    from modelzoo.engine.recipe import load_recipe

    recipe = load_recipe(Path(__file__).parents[3] / "zoo" / "effnet-lite0-fashion-multilabel.toml")
    assert (
        recipe.task == "multilabel-classification" and recipe.data.dataset == "classification:fashion-mnist-multilabel"
    )
    if not any(Path(d, "train-images-idx3-ubyte.gz").is_file() for d in FASHION_MNIST_DIRS):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    from zoo_classification.multilabel_data import fashion_mnist_multilabel

    train, val, labels, _ = fashion_mnist_multilabel(num_train=8, num_val=4, canvas=48)
    assert train.images.shape == (8, 48, 48, 3) and val.targets.shape == (4, 10) and labels[0] == "T-shirt/top"


def test_recipe_data_faults_are_one_line():
    from modelzoo.engine.recipe import validate
    from modelzoo.errors import RecipeError

    base = {"name": "x", "task": "multilabel", "model": {"backbone": "timm:test_convnext", "head": "linear"}}
    base["stages"] = [{"name": "head", "train": "head", "epochs": 1}]
    for data, error in [
        ({"dataset": "fashion-mnist-multilabel", "path": "a.csv"}, "give exactly one of data.dataset"),
        ({"path": "a.csv", "label_separator": ","}, "data.label_separator"),
        ({"path": "a.csv", "labels": ["a", "a"]}, "data.labels: give each label once"),
    ]:
        with pytest.raises(RecipeError, match=error):
            validate({**base, "data": data})


# -- a real run: learning, thresholds that travel, predict and eval -------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from modelzoo.engine.recipe import validate
    from modelzoo.engine.trainer import finetune

    root = tmp_path_factory.mktemp("multilabel")
    write_set(root / "data", 36, seed=1, name="train")
    write_set(root / "data", 18, seed=2, name="val")
    recipe = {
        "name": "tiny-multilabel",
        "task": "multilabel",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(root / "data"), "image_size": 32, "batch_size": 6, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.02},
        "stages": [{"name": "head", "train": "head", "epochs": 6}, {"name": "all", "train": "all", "epochs": 3}],
    }
    return finetune(validate(recipe), out=root / "run", quiet=True), root


def test_learns_an_easy_set_and_tunes_thresholds(run):
    result, _ = run
    assert result.metrics["map"] > 0.9, result.metrics
    assert result.metrics["macro_f1"] > 0.8
    summary = json.loads((result.path / "summary.json").read_text())
    saved = json.loads((result.path / "thresholds.json").read_text())
    assert saved["labels"] == ["blue", "green", "red"] and saved["tuned"]
    assert saved["thresholds"] == summary["thresholds"]
    assert "thresholds.json" in json.loads((result.path / "config.json").read_text())["files"]


def test_thresholds_reload_and_predict_prints_labels_above_them(run, capsys):
    import modelzoo
    from modelzoo.cli.main import main

    result, root = run
    model = modelzoo.load(result.path)
    saved = json.loads((result.path / "thresholds.json").read_text())["thresholds"]
    assert model.label_thresholds == saved
    image = root / "data" / "images" / "val_0.png"
    truth = read_labels_file(root / "data" / "val.csv")[0].labels
    predicted = model.predict([str(image)])[0]
    assert sorted(label for label, _ in predicted) == truth
    assert main(["predict", str(result.path), str(image)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: ") and all(name in line for name in truth)
    assert main(["predict", str(result.path), str(image), "--threshold", "1.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"input": str(image), "labels": []}]
    # a damaged thresholds file is refused with its name (its sha256 is recorded, so restore it after)
    path = result.path / "thresholds.json"
    original = path.read_bytes()
    path.write_text("{}")
    try:
        with pytest.raises(ZooError, match="thresholds.json"):
            modelzoo.load(result.path)
    finally:
        path.write_bytes(original)


def test_eval_prints_per_label_ap_and_f1_at_the_stored_thresholds(run, capsys):
    from modelzoo.cli.main import main

    result, root = run
    assert main(["eval", str(result.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("loss ") and "map " in out[0] and "micro_f1 " in out[0]
    assert "thresholds: the model's, tuned on validation" in out[1]
    assert [line.split()[0] for line in out[2:]] == ["blue", "green", "red"]
    assert main(["eval", str(result.path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["map"] == pytest.approx(result.metrics["map"], abs=1e-6)
    assert again["macro_f1"] == pytest.approx(result.metrics["macro_f1"], abs=1e-6)
    # another labels file (JSONL here) through --data, its labels matched to the model's
    other = write_set(root / "other", 6, seed=5, name="val", fmt="jsonl")
    assert main(["eval", str(result.path), "--data", str(other)]) == 0
    assert "(6 examples)" in capsys.readouterr().out


PUSH_PULL = """
import json, sys
import modelzoo
from modelzoo.cli.main import main
assert main(["push", sys.argv[1], "org/multilabel"]) == 0
model = modelzoo.load("hf-hub:org/multilabel")
print(json.dumps(model.label_thresholds))
"""


def test_thresholds_travel_through_push_and_pull(run, hub_server, tmp_path):
    import subprocess
    import sys

    from modelzoo.testing import hub_env

    result, _ = run
    env = hub_env(hub_server, tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, "-c", PUSH_PULL, str(result.path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    pulled = json.loads(proc.stdout.strip().splitlines()[-1])
    assert pulled == json.loads((result.path / "thresholds.json").read_text())["thresholds"]
