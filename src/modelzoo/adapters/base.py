"""The interface between the generic fine-tune engine and one task."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..model import TaskModel


class TaskAdapter:
    """Everything task-specific the engine calls, in the order it calls it.

    1. ``validate_recipe(recipe)`` (classmethod) while the recipe is validated: raise
       ``RecipeError`` with one line naming the field for task-specific data fields.
    2. ``load_data()``: read and validate the data; set ``self.labels`` (class names),
       ``self.name`` (dataset name) and ``self.info`` (dict with at least ``num_train``/``num_val``,
       optionally ``hub_id``/``license``/``source``).
    3. ``build_model()``: assemble backbone + head (``modelzoo.assemble``) for ``self.labels``.
    4. ``prepare(model)``: build transforms / tokenizers that depend on the built model.
    5. Per stage: ``dataset("train"|"val", augment)`` + ``collate``; ``loss(model, batch)`` per step.
       When the backbone is frozen and ``supports_feature_cache``: ``features(model, batch)`` once
       per example, then ``head_loss`` / ``evaluate_features`` on cached tensors.
    6. ``evaluate(model, loader, final)`` each epoch and at the end (``final=True`` adds
       per-class results); it returns ``{"loss": float, self.metric: float, ...}``.
    7. ``write_artifacts(result, out)`` at the end (plots); ``summary_extras(result)`` adds to summary.json.
    """

    #: name of the main validation metric (higher is better); logged as ``val_<metric>``
    metric: str = "accuracy"
    #: whether frozen-backbone stages can train the head on cached backbone features
    supports_feature_cache: bool = True

    def __init__(self, recipe, device: torch.device, amp_dtype: torch.dtype | None) -> None:
        self.recipe = recipe
        self.device = device
        self.amp_dtype = amp_dtype
        self.labels: list[str] = []
        self.name: str = ""
        self.info: dict[str, Any] = {}

    @classmethod
    def validate_recipe(cls, recipe) -> None:
        """Raise RecipeError for task-specific recipe problems."""

    def load_data(self) -> None:
        raise NotImplementedError

    def load_eval_data(self, path: str) -> None:
        """``zoo eval RUN --data PATH``: load PATH as the validation split (labels must match the model)."""
        from ..errors import ZooError

        raise ZooError(f"zoo eval --data is not supported for {type(self).__name__}; evaluate on the run's own split")

    def build_model(self) -> TaskModel:
        raise NotImplementedError

    def assemble_model(
        self, head_options: dict[str, Any] | None = None, preprocess: dict[str, Any] | None = None
    ) -> TaskModel:
        """The recipe's backbone + head for ``self.labels`` (``head_options`` default to the recipe's)."""
        from ..model import assemble

        r = self.recipe
        return assemble(
            r.model.backbone,
            r.model.head,
            num_classes=len(self.labels),
            labels=self.labels,
            pretrained=r.model.pretrained,
            head_options=r.model.head_options if head_options is None else head_options,
            backbone_options=r.model.backbone_options,
            preprocess=preprocess,
        )

    def prepare(self, model: TaskModel) -> None:
        """Build what depends on the model (transforms from its preprocessing, tokenizer...)."""

    @property
    def in_memory(self) -> bool:
        """True when examples are already tensors in memory (no DataLoader workers needed on CPU)."""
        return False

    def dataset(self, split: str, augment: bool = False) -> Dataset:
        raise NotImplementedError

    @property
    def collate(self) -> Callable | None:
        return None

    def to_device(self, batch: Any) -> Any:
        return move_to(batch, self.device)

    def loss(self, model: TaskModel, batch: Any) -> tuple[torch.Tensor, int]:
        """Training loss of one batch and its number of examples."""
        raise NotImplementedError

    def features(self, model: TaskModel, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen-backbone features and targets of one batch (for the feature cache)."""
        raise NotImplementedError

    def head_loss(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def evaluate_features(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError

    def evaluate(self, model: TaskModel, loader, final: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def write_artifacts(self, result: dict[str, Any], out: Path) -> None:
        """Plots beyond the training curves (e.g. a confusion matrix)."""

    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        return {}


def move_to(batch: Any, device: torch.device) -> Any:
    """Move tensors (also inside dicts, lists and tuples) to ``device``; image batches go channels_last on CUDA."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if device.type == "cuda" and batch.ndim == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch
