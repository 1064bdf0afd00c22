"""Image classification: ImageFolder or registered datasets, cross-entropy, accuracy + confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets import ImageDataset, build_transform, load_image_data
from ..errors import RecipeError
from ..model import TaskModel
from .base import TaskAdapter


def summarize(
    logits: torch.Tensor, targets: torch.Tensor, num_classes: int, with_confusion: bool = False
) -> dict[str, Any]:
    """Loss and accuracy of classification logits; with per-class precision/recall and the confusion matrix."""
    loss = nn.functional.cross_entropy(logits, targets).item() if len(targets) else float("nan")
    pred = logits.argmax(1)
    out: dict[str, Any] = {
        "loss": loss,
        "accuracy": (pred == targets).float().mean().item() if len(targets) else float("nan"),
    }
    if with_confusion:
        cm = torch.bincount(targets * num_classes + pred, minlength=num_classes * num_classes).reshape(
            num_classes, num_classes
        )
        tp = cm.diag().float()
        precision = tp / cm.sum(0).clamp(min=1)
        recall = tp / cm.sum(1).clamp(min=1)
        out["confusion_matrix"] = cm.tolist()
        out["per_class"] = [
            {"precision": round(p, 4), "recall": round(r, 4), "support": int(s)}
            for p, r, s in zip(precision.tolist(), recall.tolist(), cm.sum(1).tolist())
        ]
        out["macro_precision"] = precision.mean().item()
        out["macro_recall"] = recall.mean().item()
    return out


class ClassificationMixin:
    """Loss/metrics shared by every classification task (image or text): the head emits logits."""

    metric = "accuracy"

    def loss(self, model: TaskModel, batch) -> tuple[torch.Tensor, int]:
        x, y = batch
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            logits = model(x)
        return nn.functional.cross_entropy(logits.float(), y), len(y)

    def features(self, model: TaskModel, batch):
        x, y = batch
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            return model.backbone(x).float(), y

    def head_loss(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model.head(feats).float(), targets)

    @torch.no_grad()
    def evaluate_features(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
        model.head.eval()
        logits = torch.cat(
            [model.head(feats[i : i + 1024].to(self.device)).float().cpu() for i in range(0, len(feats), 1024)]
        )
        return summarize(logits, targets.cpu(), len(self.labels))

    @torch.no_grad()
    def evaluate(self, model: TaskModel, loader, final: bool = False) -> dict[str, Any]:
        model.eval()
        logits, targets = [], []
        for batch in loader:
            x, y = self.to_device(batch)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits.append(model(x).float().cpu())
            targets.append(y.cpu())
        return summarize(torch.cat(logits), torch.cat(targets), len(self.labels), with_confusion=final)

    def write_artifacts(self, result: dict[str, Any], out: Path) -> None:
        from ..plots import plot_confusion

        plot_confusion(result["confusion_matrix"], self.labels, out / "confusion_matrix.png")

    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        return {"per_class": result["per_class"], "confusion_matrix": result["confusion_matrix"]}


class ImageClassificationAdapter(ClassificationMixin, TaskAdapter):
    @classmethod
    def validate_recipe(cls, recipe) -> None:
        d = recipe.data
        if bool(d.dataset) == bool(d.path):
            raise RecipeError(
                "data: give exactly one of data.dataset (a registered dataset, see zoo list --kind dataset)"
                " or data.path (an ImageFolder directory)"
            )

    def load_data(self) -> None:
        self.data = load_image_data(self.recipe.data, self.recipe.seed)
        self.labels, self.name, self.info = self.data.labels, self.data.name, self.data.info

    def load_eval_data(self, path: str) -> None:
        from ..datasets import ImageData, Split, _scan

        root = Path(path)
        scan_root = root / self.recipe.data.val_dir if (root / self.recipe.data.val_dir).is_dir() else root
        classes, paths, targets = _scan(scan_root, self.recipe.data.on_bad_image, {})
        val = Split(targets=targets, paths=paths)
        self.data = ImageData(
            name=root.name, labels=classes, train=Split(targets=[]), val=val, info={"num_val": len(val)}
        )
        self.labels, self.name, self.info = classes, root.name, self.data.info

    def build_model(self) -> TaskModel:
        r = self.recipe
        preprocess: dict[str, Any] = {}
        if r.data.image_size:
            preprocess["input_size"] = [3, r.data.image_size, r.data.image_size]
        if r.data.mean:
            preprocess["mean"] = r.data.mean
        if r.data.std:
            preprocess["std"] = r.data.std
        model = self.assemble_model(preprocess=preprocess)
        if self.in_memory:  # small in-memory images are resized whole; predict on files must not crop either
            model.config["preprocess"]["crop_pct"] = 1.0
        return model

    @property
    def in_memory(self) -> bool:
        return self.data.val.images is not None

    def prepare(self, model: TaskModel) -> None:
        pre, from_files = model.preprocess, not self.in_memory
        self.eval_tf = build_transform(pre, train=False, augment="none", from_files=from_files)
        self.train_tf = build_transform(pre, train=True, augment=self.recipe.data.augment, from_files=from_files)

    def dataset(self, split: str, augment: bool = False):
        if split == "train":
            return ImageDataset(self.data.train, self.train_tf if augment else self.eval_tf)
        return ImageDataset(self.data.val, self.eval_tf)
