"""Multi-label image classification: any number of labels per image, sigmoid outputs, BCE-with-logits.

The recipe's ``[data]`` table is :class:`MultiLabelData`: a labels file (CSV ``image,labels`` or JSONL
``{"image", "labels"}``, see :mod:`.multilabel_data`) or a registered dataset. The main metric is mAP
(macro average precision over the labels); micro and macro F1 are computed at per-label thresholds.

Thresholds: the final evaluation at the end of training tunes one cut per label on the validation
split (F1-maximising, :mod:`.multilabel_metrics`) and keeps it on the model; it is saved as
``thresholds.json`` beside the weights (declared through ``save_files``, so push and pull carry it)
and read back by ``load_files`` whenever the model is loaded. ``zoo eval`` then reports F1 at those
stored cuts, and ``zoo predict`` prints every label whose score reaches its cut.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.sdk import CardInfo, DataConfig, RecipeError, Task, TaskModel, ZooError, atomic_write_text

from .multilabel_metrics import DEFAULT_THRESHOLD, is_threshold_list, summarize

THRESHOLDS_FILE = "thresholds.json"
#: the attribute of a TaskModel holding its per-label thresholds (absent until tuned or loaded)
THRESHOLDS_ATTR = "label_thresholds"
AUGMENTS = ("none", "light")


@dataclass
class MultiLabelData(DataConfig):
    """``[data]`` of a multi-label recipe: ``dataset`` (registered) or ``path`` (a labels file or its folder)."""

    #: a CSV (image,labels) or JSONL (image + labels) file, or a folder holding train.csv (+ val.csv) or labels.csv;
    #: relative image paths resolve against the labels file's folder
    path: str | None = None
    #: the validation labels file (default: val.csv / val.jsonl beside train.csv, else data.val_split)
    val_path: str | None = None
    #: every label, in output order (default: the sorted labels of the training file; others are errors)
    labels: list[str] | None = None
    #: what separates the labels in a CSV ``labels`` cell
    label_separator: str = "|"
    #: square input size; default: the backbone's pretrained size
    image_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    #: "none" or "light" (random resized crop + flip) for stages with ``augment = true``
    augment: str = "none"


def thresholds_of(model: TaskModel) -> list[float] | None:
    """The model's per-label thresholds (tuned at the end of training or loaded with it), or None."""
    return getattr(model, THRESHOLDS_ATTR, None)


class MultiLabelClassification(Task):
    Data = MultiLabelData
    feature_cache = True
    augment_presets = AUGMENTS
    batch_input = 0  # batches are (images, multi-hot targets): a partial fine-tune trains on the frozen layers' outputs

    @classmethod
    def starter_data(cls, path: Path) -> dict[str, Any] | None:
        """``zoo recipe new --data PATH``: a labels file (CSV with image + labels columns, or JSONL with
        image + labels) or a folder holding train.csv / labels.csv; anything else is not recognised."""
        from .multilabel_data import labels_files, looks_like_labels_file

        try:
            train, val = labels_files(path)
        except ZooError:
            return None
        if not looks_like_labels_file(train):
            return None
        return {"path": str(path)} if val is not None else {"path": str(path), "val_split": 0.2}

    @classmethod
    def validate_data(cls, data: MultiLabelData, recipe: Any) -> None:
        if bool(data.dataset) == bool(data.path):
            raise RecipeError(
                "data: give exactly one of data.dataset (a registered dataset, see zoo list --kind dataset)"
                " or data.path (a labels file: CSV image,labels or JSONL, or a folder holding train.csv)"
            )
        if data.val_path and not data.path:
            raise RecipeError("data.val_path goes with data.path (a registered dataset brings its own split)")
        if data.image_size is not None and not 1 <= data.image_size <= 4096:
            raise RecipeError(f"data.image_size: {data.image_size} must be between 1 and 4096 pixels")
        for key in ("mean", "std"):
            value = getattr(data, key)
            if value is not None and len(value) != 3:
                raise RecipeError(f"data.{key}: give 3 numbers (R, G, B)")
        if data.std is not None and any(v <= 0 for v in data.std):
            raise RecipeError(f"data.std: {data.std} must be 3 numbers > 0 (they divide the pixels)")
        if data.augment not in AUGMENTS:
            raise RecipeError(f"data.augment: {data.augment!r} is not one of {', '.join(AUGMENTS)}")
        if not data.label_separator or data.label_separator in (",", "\n", '"'):
            raise RecipeError('data.label_separator: use a character other than the CSV\'s own, such as "|" or ";"')
        if data.labels is not None:
            if len(data.labels) < 1 or len(set(data.labels)) != len(data.labels) or not all(data.labels):
                raise RecipeError("data.labels: give each label once, as non-empty names")

    # -- data ---------------------------------------------------------------------------------------
    def load_data(self) -> None:
        from .multilabel_data import load_multilabel_data

        self.loaded = load_multilabel_data(self.data, self.recipe.seed_for_data, self.registered_dataset)
        self.labels, self.dataset_name = list(self.loaded.labels), self.loaded.name
        counts = self.loaded.train.targets.sum(0).int().tolist()
        self.data_info = {**self.loaded.info, "train_label_counts": dict(zip(self.labels, counts))}

    def load_eval_data(self, path: str, model: TaskModel) -> None:
        """A labels file (or a folder with val.csv / labels.csv) whose labels are the model's (a subset is fine)."""
        from .multilabel_data import MultiLabelData as Loaded
        from .multilabel_data import MultiSplit, labels_files, read_labels_file, split_from_rows

        train_file, val_file = labels_files(path)
        source = val_file or train_file
        split = split_from_rows(read_labels_file(source, self.data.label_separator), model.labels)
        empty = MultiSplit(targets=torch.zeros(0, len(model.labels)))
        self.loaded = Loaded(name=Path(path).stem, labels=model.labels, train=empty, val=split)
        self.labels, self.dataset_name = list(model.labels), Path(path).stem
        self.data_info = {"source": str(source), "num_val": len(split)}

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, assemble) -> TaskModel:
        d = self.data
        preprocess: dict[str, Any] = {}
        if d.image_size:
            preprocess["input_size"] = [3, d.image_size, d.image_size]
        if d.mean:
            preprocess["mean"] = d.mean
        if d.std:
            preprocess["std"] = d.std
        model = assemble(labels=self.labels, preprocess=preprocess)
        if self.in_memory:  # small in-memory scenes are resized whole; predict on files must not crop either
            model.config["preprocess"]["crop_pct"] = 1.0
        return model

    @property
    def in_memory(self) -> bool:
        return self.loaded.val.images is not None

    @property
    def augmenting(self) -> bool:
        return self.data.augment != "none"

    def prepare(self, model: TaskModel) -> None:
        from .data import build_transform

        pre, from_files = model.preprocess, not self.in_memory
        self.eval_tf = build_transform(pre, train=False, augment="none", from_files=from_files)
        self.train_tf = build_transform(pre, train=True, augment=self.data.augment, from_files=from_files)

    def dataset(self, split: str, augment: bool = False):
        from .multilabel_data import MultiLabelDataset

        if split == "train":
            return MultiLabelDataset(self.loaded.train, self.train_tf if augment else self.eval_tf)
        return MultiLabelDataset(self.loaded.val, self.eval_tf)

    # -- training -----------------------------------------------------------------------------------
    def loss(self, model: TaskModel, batch) -> tuple[torch.Tensor, int]:
        x, y = batch
        with self.autocast():
            logits = model(x)
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), y.float()), len(y)

    def features(self, model: TaskModel, batch):
        x, y = batch
        with self.autocast():
            return model.backbone(x).float(), y

    def head_loss(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(model.head(feats).float(), targets.float())

    @torch.no_grad()
    def evaluate_features(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
        model.head.eval()
        logits = torch.cat(
            [model.head(feats[i : i + 1024].to(self.device)).float().cpu() for i in range(0, len(feats), 1024)]
        )
        return summarize(logits, targets.cpu(), thresholds_of(model))

    # -- evaluation ---------------------------------------------------------------------------------
    def eval_batch(self, model: TaskModel, batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        with self.autocast():
            logits = model(x)
        return logits.float().cpu(), y.float().cpu()

    def eval_metrics(self, outputs: list[Any], final: bool = False) -> dict[str, Any]:
        if not outputs:
            return summarize(torch.zeros(0, len(self.labels)), torch.zeros(0, len(self.labels)))
        logits = torch.cat([o[0] for o in outputs])
        targets = torch.cat([o[1] for o in outputs])
        return summarize(logits, targets, getattr(self, "_thresholds", None), per_class=final)

    @torch.no_grad()
    def evaluate(self, model: TaskModel, loader, final: bool = False, gather=None) -> dict[str, Any]:
        """As every task evaluates; F1 is at the model's thresholds. A model without thresholds (the end
        of training) has them tuned on this split by the final evaluation, and keeps them."""
        self._thresholds = thresholds_of(model)
        result = super().evaluate(model, loader, final=final, gather=gather)
        if final and self._thresholds is None and "thresholds" in result:
            setattr(model, THRESHOLDS_ATTR, list(result["thresholds"]))
        return result

    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        return {"per_class": result.get("per_class", []), "thresholds": result.get("thresholds", [])}

    # -- files that travel with the model -----------------------------------------------------------
    def save_files(self, model: TaskModel, folder: Path) -> list[str]:
        cuts = thresholds_of(model)
        data = {
            "labels": model.labels,
            "thresholds": list(cuts) if cuts is not None else [DEFAULT_THRESHOLD] * len(model.labels),
            "tuned": cuts is not None,
            "rule": "a label is predicted when sigmoid(logit) >= its threshold (tuned for F1 on the validation split)",
        }
        atomic_write_text(Path(folder) / THRESHOLDS_FILE, json.dumps(data, indent=2) + "\n")
        return [THRESHOLDS_FILE]

    def load_files(self, model: TaskModel, folder: Path) -> None:
        from modelzoo.sdk import read_json_object

        path = Path(folder) / THRESHOLDS_FILE
        if not path.is_file():
            raise ZooError(f"{folder} lacks {THRESHOLDS_FILE}, the per-label thresholds; copy or pull the whole folder")
        data = read_json_object(path, "thresholds file")
        cuts = data.get("thresholds")
        if data.get("labels") != model.labels or not is_threshold_list(cuts, len(model.labels)):
            raise ZooError(
                f"{path}: must hold the model's {len(model.labels)} labels and one threshold in (0, 1] for each;"
                " re-save the model"
            )
        setattr(model, THRESHOLDS_ATTR, [float(c) for c in cuts])

    # -- using a model ------------------------------------------------------------------------------
    def predict(
        self, model: TaskModel, inputs: Any, threshold: float | None = None, batch_size: int = 32, **_: Any
    ) -> list:
        """Per image (path, PIL image or CHW tensor): every ``(label, probability)`` at or above its
        threshold (the model's per-label cuts, or one ``threshold`` for all), highest first."""
        from .multilabel_predict import predict_labels

        if threshold is not None and (isinstance(threshold, bool) or not 0 < float(threshold) <= 1):
            raise ZooError(f"threshold must be a number in (0, 1], got {threshold!r}")
        cuts = [float(threshold)] * len(model.labels) if threshold is not None else thresholds_of(model)
        return predict_labels(model, inputs, cuts or [DEFAULT_THRESHOLD] * len(model.labels), batch_size)

    def show(self, model: TaskModel, inputs: list[Any], results: list[Any], **options: Any) -> str:
        lines = []
        for item, preds in zip(inputs, results):
            shown = ", ".join(f"{label} {score:.3f}" for label, score in preds)
            lines.append(f"{item}: {shown or '(no label reaches its threshold)'}")
        return "\n".join(lines)

    def to_json(self, inputs: list[Any], results: list[Any], *, model: TaskModel | None = None) -> list[dict[str, Any]]:
        return [
            {"input": str(item), "labels": [{"label": label, "score": score} for label, score in preds]}
            for item, preds in zip(inputs, results)
        ]

    def report(self, result: dict[str, Any], examples: int | None = None) -> str:
        lines = [super().report(result, examples)]
        rows = result.get("per_class")
        if rows and self.labels:
            where = "tuned on this data" if result.get("thresholds_tuned_here") else "the model's, tuned on validation"
            width = max(len("label"), *(len(lbl) for lbl in self.labels))
            lines.append(f"label{' ' * (width - 5)}      AP      F1  threshold  support   (thresholds: {where})")
            for label, row in zip(self.labels, rows):
                ap = "     -" if row["ap"] is None else f"{row['ap']:6.4f}"
                lines.append(
                    f"{label.ljust(width)}  {ap}  {row['f1']:6.4f}  {row['threshold']:9.4f}  {row['support']:7d}"
                )
        return "\n".join(lines)

    def card(self, config: dict[str, Any], summary: dict[str, Any]) -> CardInfo:
        labels = list(config.get("labels") or [])
        results: list[str] = []
        per_class = summary.get("per_class")
        if isinstance(per_class, list) and per_class and isinstance(per_class[0], dict):
            results += ["<details><summary>Per-label results</summary>", ""]
            results += ["| label | AP | F1 | threshold | support |", "|---|---|---|---|---|"]
            for i, row in enumerate(per_class):
                name = labels[i] if i < len(labels) else str(i)
                cells = [row.get(k, "") for k in ("ap", "f1", "threshold", "support")]
                results.append(f"| {name} | " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
            results += ["", "</details>", ""]
        pre = config.get("preprocess") or {}
        return CardInfo(
            example="image.jpg",
            input=(
                f"{'x'.join(map(str, pre.get('input_size', [])))} RGB image, mean {pre.get('mean')}, std {pre.get('std')};"
                f" outputs one sigmoid score per label, cut at the per-label thresholds in {THRESHOLDS_FILE}"
            )
            if pre
            else None,
            metric_names={"map": "mAP", "micro_f1": "Micro F1", "macro_f1": "Macro F1"},
            results=results,
        )
