"""``read_mask``: a PNG of class indices as a LongTensor (255 = ignore), and one line naming the file
for every way a mask can be wrong; the SDK exports what a task plugin needs to use a model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from modelzoo.sdk import BadImage, read_mask


def save(path, array, mode=None):
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)
    return path


def test_a_mask_reads_as_class_indices_with_255_kept_for_ignore(tmp_path):
    values = [[0, 1, 2], [255, 1, 0]]
    mask = read_mask(save(tmp_path / "m.png", values), num_classes=3, size=(3, 2))
    assert mask.dtype == torch.long and mask.tolist() == values
    palette = Image.fromarray(np.asarray(values, dtype=np.uint8), mode="L").convert("P")
    palette.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png", num_classes=3).tolist() == values  # palette indices, not colours


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: save(d / "rgb.png", np.zeros((2, 2, 3))), r"^mask .*rgb\.png is a RGB image; a mask is a single-channel"),
        (lambda d: save(d / "big.png", [[0, 7]]), r"^mask .*big\.png holds class index 7, but there are 3 classes \(0-2; 255 = ignore\)$"),
        (lambda d: save(d / "size.png", [[0, 1]]), r"^mask .*size\.png is 2x1 px but its image is 3x2"),
        (lambda d: d / "missing.png", r"^no such mask: .*missing\.png$"),
        (lambda d: (d / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n") and d / "cut.png", r"^unreadable mask .*cut\.png \("),
    ],
)  # fmt: skip
def test_every_bad_mask_is_one_line_naming_the_file(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(BadImage, match=expected) as caught:
        read_mask(path, num_classes=3, size=(3, 2) if path.name == "size.png" else None)
    assert "\n" not in str(caught.value)


def test_the_sdk_exports_task_creation_and_prediction_writing():
    import modelzoo
    from modelzoo import sdk

    for name in ("create_task", "write_predictions", "read_mask", "check_image"):
        assert name in sdk.__all__ and getattr(modelzoo, name) is getattr(sdk, name)
    task = sdk.create_task("image-classification")
    assert isinstance(task, sdk.Task) and task.select_views == ("final", "entry")


def test_predictions_are_written_from_python_as_zoo_predict_writes_them(tmp_path, monkeypatch):
    from zoo_classification.classify import ClassificationTask

    import modelzoo

    def save_predictions(self, model, inputs, results, out=None, **options):
        path = tmp_path / out / "preds.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(str(r[0][0]) for r in results))
        return [path]

    monkeypatch.setattr(ClassificationTask, "save_predictions", save_predictions)
    model = modelzoo.assemble(
        "timm:test_efficientnet", "linear", labels=["a", "b"], pretrained=False, task="image-classification"
    ).eval()
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    (written,) = modelzoo.write_predictions(model, [image], out="preds", top_k=1)
    assert written.read_text() in ("a", "b")  # the predicted top label, written by the task
    assert model.write_predictions([image], out="again", top_k=1)[0].name == "preds.txt"
    assert model.task_object.name == "image-classification"
