"""What every classification task shares, whatever its input: the head emits class logits.

Cross-entropy loss; accuracy (and, at the end of a run, per-class precision/recall and the confusion
matrix); top-k predictions; how ``zoo eval`` / ``zoo predict`` print them and what a model card says;
the transfer scores of frozen features that ``zoo select`` ranks backbones by (:mod:`.transfer`).
``zoo-text`` builds its text-classification task on this class too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.sdk import CardInfo, Task, TaskModel


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
        # averaged over the classes the data has or the model predicted (as scikit-learn does): an
        # evaluation on a subset of the classes is not dragged down by the classes it never saw
        seen = (cm.sum(1) > 0) | (cm.sum(0) > 0)
        out["macro_precision"] = precision[seen].mean().item() if seen.any() else float("nan")
        out["macro_recall"] = recall[seen].mean().item() if seen.any() else float("nan")
    return out


def top_k(probs: torch.Tensor, labels: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable ``(label, probability)`` per row of ``probs``."""
    k = max(1, min(k, len(labels)))
    values, indices = probs.topk(k, dim=-1)
    return [[(labels[i], round(v, 6)) for v, i in zip(vs, ix)] for vs, ix in zip(values.tolist(), indices.tolist())]


def check_top_k(top_k: Any) -> int:
    from modelzoo.sdk import ZooError

    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ZooError(f"top_k must be a whole number >= 1, got {top_k!r}")
    return top_k


class ClassificationTask(Task):
    """A task whose model maps an input to logits over ``labels`` (the head's output)."""

    feature_cache = True
    #: training-loss options (``set_loss_options``): label smoothing and per-class weights
    label_smoothing: float = 0.0
    class_weight: torch.Tensor | None = None

    # -- training -----------------------------------------------------------------------------------
    @staticmethod
    def check_loss_options(data: Any) -> None:
        """``data.label_smoothing`` in [0, 1) and ``data.class_weights`` "balanced" or numbers > 0 (when the
        task's ``[data]`` has them)."""
        from modelzoo.sdk import RecipeError

        smoothing = getattr(data, "label_smoothing", 0.0)
        if not 0.0 <= smoothing < 1.0:
            raise RecipeError(f"data.label_smoothing: {smoothing} must be in [0, 1) (typical: 0.1)")
        weights = getattr(data, "class_weights", None)
        if isinstance(weights, str) and weights != "balanced":
            raise RecipeError(f'data.class_weights: {weights!r}: use "balanced" or one number > 0 per class')
        if isinstance(weights, list) and (not weights or any(not w > 0 for w in weights)):
            raise RecipeError('data.class_weights: give one number > 0 per class (or "balanced")')

    def set_loss_options(self, data: Any, train_targets: list[int]) -> None:
        """Label smoothing and class weights from ``data`` (``"balanced"``: ``n / (classes * count)`` from
        the training targets), once the labels are known."""
        from modelzoo.sdk import ZooError

        self.label_smoothing = float(getattr(data, "label_smoothing", 0.0))
        weights = getattr(data, "class_weights", None)
        n = len(self.labels)
        if weights == "balanced":
            counts = torch.bincount(torch.as_tensor(train_targets, dtype=torch.long), minlength=n).float()
            self.class_weight = len(train_targets) / (n * counts.clamp(min=1))
        elif isinstance(weights, list):
            if len(weights) != n:
                raise ZooError(
                    f"data.class_weights: {len(weights)} numbers for {n} classes ({', '.join(self.labels)});"
                    " give one per class in that order"
                )
            self.class_weight = torch.tensor(weights, dtype=torch.float32)

    def cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss: cross-entropy with the recipe's label smoothing and class weights (targets:
        class indices or per-class probabilities)."""
        weight = self.class_weight.to(logits.device) if self.class_weight is not None else None
        return nn.functional.cross_entropy(logits, targets, weight=weight, label_smoothing=self.label_smoothing)

    def loss(self, model: TaskModel, batch) -> tuple[torch.Tensor, int]:
        x, y = batch
        with self.autocast():
            logits = model(x)
        return self.cross_entropy(logits.float(), y), len(y)

    def logits_from_features(self, model: TaskModel, feats: torch.Tensor) -> torch.Tensor:
        """The head on cached features (pooled backbone outputs)."""
        return model.head(feats)

    def features(self, model: TaskModel, batch):
        x, y = batch
        with self.autocast():
            return model.backbone(x).float(), y

    def head_loss(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(self.logits_from_features(model, feats).float(), targets)

    @torch.no_grad()
    def evaluate_features(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
        model.head.eval()
        logits = torch.cat(
            [
                self.logits_from_features(model, feats[i : i + 1024].to(self.device)).float().cpu()
                for i in range(0, len(feats), 1024)
            ]
        )
        return summarize(logits, targets.cpu(), len(self.labels))

    # -- ranking backbones without fine-tuning (zoo select) ------------------------------------------
    def transfer_scores(self, feats: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> dict[str, float]:
        """Cross-validated linear-probe accuracy, leave-one-out kNN accuracy and LogME (see :mod:`.transfer`)."""
        from .transfer import transfer_scores

        return transfer_scores(feats, targets, seed)

    def transfer_subsample(self, targets: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
        """A class-stratified subsample (every class in proportion, at least two examples each)."""
        from .transfer import stratified_subsample

        return stratified_subsample(targets, n, seed)

    # -- evaluation ---------------------------------------------------------------------------------
    def eval_batch(self, model: TaskModel, batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        with self.autocast():
            logits = model(x)
        return logits.float().cpu(), y.cpu()

    def eval_metrics(self, outputs: list[Any], final: bool = False) -> dict[str, Any]:
        if not outputs:
            return summarize(torch.zeros(0, max(1, len(self.labels))), torch.zeros(0, dtype=torch.long), 1)
        logits = torch.cat([o[0] for o in outputs])
        targets = torch.cat([o[1] for o in outputs])
        return summarize(logits, targets, len(self.labels), with_confusion=final)

    def write_artifacts(self, result: dict[str, Any], out: Path) -> list[str]:
        from .plots import plot_confusion

        plot_confusion(result["confusion_matrix"], self.labels, out / "confusion_matrix.png")
        return ["confusion_matrix.png"]

    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        return {"per_class": result["per_class"], "confusion_matrix": result["confusion_matrix"]}

    # -- using a model ------------------------------------------------------------------------------
    def show(self, model: TaskModel, inputs: list[Any], results: list[Any], **options: Any) -> str:
        return "\n".join(
            f"{item}: " + ", ".join(f"{label} {score:.3f}" for label, score in preds)
            for item, preds in zip(inputs, results)
        )

    def to_json(self, inputs: list[Any], results: list[Any]) -> list[dict[str, Any]]:
        return [
            {"input": str(item), "predictions": [{"label": label, "score": score} for label, score in preds]}
            for item, preds in zip(inputs, results)
        ]

    def prediction_row(self, model: TaskModel, path: str, result: Any, files: Path, **options: Any) -> dict[str, Any]:
        """``label_1, score_1, ..., label_k, score_k``: the top-k classes, best first."""
        row: dict[str, Any] = {}
        for rank, (label, score) in enumerate(result, 1):
            row[f"label_{rank}"], row[f"score_{rank}"] = label, score
        return row

    def write_errors(self, model: TaskModel, loader: Any, n: int, out: Path) -> list[Path]:
        """``errors.csv`` (and ``errors.png`` where the examples are pictures): the ``n`` validation examples
        whose wrong top class had the highest probability, most confident first."""
        from .errors import write_errors

        return write_errors(self, model, loader, n, out)

    def error_example(self, dataset: Any, index: int) -> tuple[str, Any]:
        """What names validation example ``index`` in ``errors.csv`` and what the gallery draws of it
        (an HWC uint8 array, or None: nothing to draw). Default: its index, no picture."""
        return str(index), None

    def report(self, result: dict[str, Any], examples: int | None = None) -> str:
        lines = [super().report(result, examples)]
        labels = self.labels
        if "per_class" in result and labels:
            width = max(len("class"), *(len(lbl) for lbl in labels))
            lines.append(f"{'class'.ljust(width)}  precision  recall  support")
            for label, row in zip(labels, result["per_class"]):
                lines.append(
                    f"{label.ljust(width)}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['support']:7d}"
                )
        if "confusion_matrix" in result and labels:
            width = max(len("class"), *(len(lbl) for lbl in labels))
            lines.append("confusion matrix (rows: true, columns: predicted):")
            for label, row in zip(labels, result["confusion_matrix"]):
                lines.append(f"{label.ljust(width)}  " + " ".join(f"{v:4d}" for v in row))
        return "\n".join(lines)

    # -- zoo export: the model's input to class logits ----------------------------------------------
    def export_outputs(self, model: TaskModel) -> list[str]:
        return ["logits"]

    def card(self, config: dict[str, Any], summary: dict[str, Any]) -> CardInfo:
        labels = list(config.get("labels") or [])
        results: list[str] = []
        per_class = summary.get("per_class")
        if isinstance(per_class, list) and per_class and isinstance(per_class[0], dict):
            results += ["<details><summary>Per-class results</summary>", ""]
            results += ["| class | precision | recall | support |", "|---|---|---|---|"]
            for i, row in enumerate(per_class):
                name = labels[i] if i < len(labels) else str(i)
                results.append(
                    f"| {name} | {row.get('precision', '')} | {row.get('recall', '')} | {row.get('support', '')} |"
                )
            results += ["", "</details>", ""]
        return CardInfo(
            example="input",
            metric_names={
                "accuracy": "Accuracy",
                "macro_precision": "Macro precision",
                "macro_recall": "Macro recall",
            },
            results=results,
        )
