"""Augmentation presets change the images, mixup / cutmix mix the labels in the images' proportions,
label smoothing and class weights change the training loss as they say, and bad values are one line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from zoo_classification.augment import PRESETS, mix_batch
from zoo_classification.classify import ClassificationTask
from zoo_classification.data import build_transform
from zoo_classification.task import ImageClassification, ImageData

from modelzoo.sdk import RecipeError

PRE = {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic"}


def image() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, 40, 40), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_changes_the_images_and_none_does_not(preset):
    plain = build_transform(PRE, train=False, augment="none", from_files=True)(image())
    tf = build_transform(PRE, train=True, augment=preset, from_files=True)
    torch.manual_seed(1)
    outs = [tf(image()) for _ in range(4)]
    assert all(o.shape == (3, 32, 32) and o.dtype == torch.float32 for o in outs)
    if preset == "none":
        assert all(torch.equal(o, plain) for o in outs)
    else:
        assert any(not torch.equal(o, plain) for o in outs)
        assert any(not torch.equal(outs[0], o) for o in outs[1:])  # random: each draw differs


def test_policies_apply_to_grey_images_too():
    grey = image()[:1]
    out = build_transform(PRE, train=True, augment="autoaugment", from_files=False)(grey)
    assert out.shape == (3, 32, 32)


def test_random_erasing_zeroes_a_rectangle():
    tf = build_transform(PRE, train=True, augment="none", from_files=True, random_erasing=1.0)
    plain = build_transform(PRE, train=False, augment="none", from_files=True)(image())
    torch.manual_seed(0)
    out = tf(image())
    erased = (out == 0).all(0) & (plain != 0).any(0)
    assert erased.sum() > 0 and torch.equal(out[:, ~erased], plain[:, ~erased])


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_mixes_labels_in_the_images_proportions(kind):
    data = SimpleNamespace(mixup=1.0 if kind == "mixup" else 0.0, cutmix=1.0 if kind == "cutmix" else 0.0)
    data.mixup_alpha = data.cutmix_alpha = 1.0
    x = torch.stack([torch.full((3, 8, 8), 1.0), torch.full((3, 8, 8), 0.0)])
    y = torch.tensor([0, 1])
    torch.manual_seed(3)
    mixed, soft = mix_batch(x, y, 3, data)
    assert soft.shape == (2, 3) and torch.allclose(soft.sum(1), torch.ones(2))
    assert 0 < soft[0, 0] < 1 and soft[0, 2] == 0  # a mix of classes 0 and 1, nothing of class 2
    share = mixed[0].mean()  # image 0 (ones) mixed with image 1 (zeros): its mean is class 0's share
    assert share.item() == pytest.approx(soft[0, 0].item(), abs=1e-5)
    none = SimpleNamespace(mixup=0.0, cutmix=0.0, mixup_alpha=1.0, cutmix_alpha=1.0)
    same, onehot = mix_batch(x, y, 3, none)
    assert same is x and torch.equal(onehot, torch.eye(3)[[0, 1]])


def test_label_smoothing_and_balanced_class_weights_change_the_loss():
    task = ClassificationTask.__new__(ClassificationTask)
    task.labels = ["a", "b"]
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]), torch.tensor([0, 1, 0])
    task.set_loss_options(SimpleNamespace(label_smoothing=0.0, class_weights=None), [0, 0, 0, 1])
    plain = task.cross_entropy(logits, y)
    assert plain == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())
    task.set_loss_options(SimpleNamespace(label_smoothing=0.2, class_weights=None), [0, 0, 0, 1])
    assert task.cross_entropy(logits, y) > plain  # smoothing penalises confident right answers
    task.set_loss_options(SimpleNamespace(label_smoothing=0.0, class_weights="balanced"), [0, 0, 0, 1])
    assert task.class_weight.tolist() == pytest.approx([4 / 6, 4 / 2])  # n / (classes * count)
    task.set_loss_options(SimpleNamespace(label_smoothing=0.0, class_weights=[1.0, 3.0]), [0, 1])
    assert task.class_weight.tolist() == [1.0, 3.0]
    with pytest.raises(Exception, match="data.class_weights: 3 numbers for 2 classes"):
        task.set_loss_options(SimpleNamespace(label_smoothing=0.0, class_weights=[1.0, 1.0, 1.0]), [0, 1])


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"augment": "randaugment", "mixup": 0.7, "cutmix": 0.5}, "data.mixup \\+ data.cutmix = 1.2"),
        ({"random_erasing": 2.0}, "data.random_erasing: 2.0 must be a probability"),
        ({"mixup_alpha": 0.0}, "data.mixup_alpha: must be > 0"),
        ({"label_smoothing": 1.0}, "data.label_smoothing: 1.0 must be in"),
        ({"class_weights": "inverse"}, "data.class_weights: 'inverse'"),
        ({"class_weights": [1.0, -1.0]}, "data.class_weights: give one number > 0 per class"),
    ],
)
def test_bad_augmentation_and_loss_fields_are_one_line(fields, message):
    data = ImageData(path="x", **fields)
    with pytest.raises(RecipeError, match=message) as err:
        ImageClassification.validate_data(data, None)
    assert "\n" not in str(err.value)
