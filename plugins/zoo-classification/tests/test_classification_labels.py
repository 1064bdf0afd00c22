"""Class folders vs a model's labels: exact names, filesystem-safe names, an explicit map, did-you-mean.

The end-to-end case is the one users hit: a Fashion-MNIST model (labels like ``T-shirt/top``, which
no folder can be named) evaluated with ``zoo eval --data`` on real Fashion-MNIST images saved under
safe folder names.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image
from zoo_classification.data import FASHION_MNIST_LABELS, fashion_mnist_arrays
from zoo_classification.labels import match_folders, read_label_map, safe_name

import modelzoo
from modelzoo import ZooError
from modelzoo.cli.main import main

LABELS = ["T-shirt/top", "Trouser", "Ankle boot", "a:b"]


def test_safe_names():
    assert safe_name("T-shirt/top") == "T-shirt_top"
    assert safe_name("a:b") == "a_b"
    assert safe_name("Ankle boot") == "Ankle boot"
    assert safe_name("dots...") == "dots"
    assert safe_name("/") == "_"


def test_folders_match_exactly_safely_loosely_or_by_map():
    assert match_folders(["Trouser", "T-shirt_top", "ankle boot"], LABELS) == [1, 0, 2]
    assert match_folders(["tops"], LABELS, {"tops": "T-shirt/top"}) == [0]
    assert match_folders(["a_b"], LABELS) == [3]


@pytest.mark.attack("images")
def test_a_near_miss_names_the_closest_labels():
    with pytest.raises(ZooError) as info:
        match_folders(["Trousers"], LABELS)
    message = str(info.value)
    assert message.startswith("class folder 'Trousers' matches no label of the model; did you mean: Trouser?")
    assert "'T-shirt/top' -> 'T-shirt_top'" in message and "--set data.label_map=FILE" in message
    assert "\n" not in message
    with pytest.raises(ZooError, match="both match label 'Trouser'"):
        match_folders(["Trouser", "trouser"], LABELS)
    with pytest.raises(ZooError, match="maps folder 'x' to 'Shirt', which is not a label"):
        match_folders(["x"], LABELS, {"x": "Shirt"})


def test_the_safe_form_example_shows_a_real_change_or_nothing():
    """MNIST-style labels ('0'..'9') are their own safe forms: no useless "(e.g. '0' -> '0')" example."""
    with pytest.raises(ZooError) as info:
        match_folders(["seven"], [str(digit) for digit in range(10)])
    message = str(info.value)
    assert "e.g." not in message and "safe form" not in message
    assert message.endswith("name each folder by its label, or map folders to labels with --set data.label_map=FILE")
    with pytest.raises(ZooError) as info:  # the first label that changes, not the first label
        match_folders(["x"], ["Trouser", "Ankle boot", "a:b", "T-shirt/top"])
    assert "or the label's safe form (e.g. 'a:b' -> 'a_b')," in str(info.value)


@pytest.mark.attack("images")
def test_label_map_files(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"tops": "T-shirt/top"}))
    assert read_label_map(tmp_path / "m.json") == {"tops": "T-shirt/top"}
    (tmp_path / "m.csv").write_text("folder,label\ntops,T-shirt/top\nboots,Ankle boot\n")
    assert read_label_map(tmp_path / "m.csv") == {"tops": "T-shirt/top", "boots": "Ankle boot"}
    (tmp_path / "bad.csv").write_text("tops,T-shirt/top,extra\n")
    with pytest.raises(ZooError, match="row 1 has 3 columns"):
        read_label_map(tmp_path / "bad.csv")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ZooError, match="must be a JSON object"):
        read_label_map(tmp_path / "bad.json")
    with pytest.raises(ZooError, match="no such file"):
        read_label_map(tmp_path / "absent.json")


@pytest.fixture(scope="module")
def fashion_model(tmp_path_factory):
    """A (randomly initialised) model with Fashion-MNIST's labels, saved as a model folder (no recipe)."""
    folder = tmp_path_factory.mktemp("fm-model")
    import torch

    torch.manual_seed(0)
    model = modelzoo.assemble(
        "timm:test_convnext",
        "linear",
        labels=list(FASHION_MNIST_LABELS),
        pretrained=False,
        preprocess={"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3},
    )
    modelzoo.save_model(model, folder)
    return folder


def write_fashion_folder(root, names=None, per_class=3):
    """Real Fashion-MNIST test images, ``per_class`` of each class, in folders named ``names(label)``."""
    images, labels = fashion_mnist_arrays("test")
    names = names or safe_name
    for index, label in enumerate(FASHION_MNIST_LABELS):
        folder = root / names(label)
        folder.mkdir(parents=True)
        for k, i in enumerate([i for i, y in enumerate(labels) if y == index][:per_class]):
            Image.fromarray(images[i]).save(folder / f"{k}.png")
    return root


def zoo(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_fashion_mnist_model_evaluates_on_safe_folder_names(fashion_model, tmp_path, capsys):
    data = write_fashion_folder(tmp_path / "safe")
    assert (data / "T-shirt_top").is_dir()
    code, out, err = zoo(capsys, "eval", fashion_model, "--data", data, "--json")
    assert code == 0, err
    assert [row["support"] for row in json.loads(out)["per_class"]] == [3] * 10
    code, out, _ = zoo(capsys, "eval", fashion_model, "--data", data)
    assert code == 0 and "T-shirt/top" in out  # reported by the model's own label


@pytest.mark.attack("images")
def test_a_mapped_or_misnamed_folder(fashion_model, tmp_path, capsys):
    data = write_fashion_folder(
        tmp_path / "mapped", names=lambda label: "tops" if label == "T-shirt/top" else label.replace("/", "_")
    )
    code, _, err = zoo(capsys, "eval", fashion_model, "--data", data)
    assert code == 2 and err.startswith("error: class folder 'tops' matches no label of the model")
    mapping = tmp_path / "map.csv"
    mapping.write_text("tops,T-shirt/top\n")
    code, out, err = zoo(capsys, "eval", fashion_model, "--data", data, "--set", f"data.label_map={mapping}", "--json")
    assert code == 0, err
    assert json.loads(out)["per_class"][0]["support"] == 3
    code, _, err = zoo(capsys, "eval", fashion_model, "--data", data, "--set", "seed=3")
    assert code == 2 and "only data.* fields apply" in err
