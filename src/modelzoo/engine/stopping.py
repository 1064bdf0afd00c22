"""What a stage ends with: early stopping, the best epoch's weights, the moving average, and never worse
weights than the stage started with.

* ``stages.N.early_stopping = {patience = 3, min_delta = 0.0, metric = "<the task's metric>",
  restore_best = true}``: the stage stops once its validation metric has not improved by more than
  ``min_delta`` for ``patience`` epochs, and ends with the best epoch's weights;
* ``stages.N.keep_better = true`` (the default): a stage that starts from a trained head (every stage
  after the first) never ends with weights whose validation metric is worse than the weights it
  started with: it keeps the better ones and says so in one line (a fine-tune stage whose learning
  rate is too high can ruin a good head: 0.858 -> 0.425 must not be saved silently);
* ``stages.N.ema_decay`` (:mod:`.ema`): epochs are evaluated with, and the stage ends with, the average.

The weights compared are the ones evaluated (the average when there is one). The keeper's state (best
value and epoch, the copies it holds) travels in the checkpoint, so a resumed run decides exactly as
the uninterrupted one; every process of a distributed run sees the same gathered metrics and decides
the same.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import torch
from torch import nn

from ..errors import RecipeError
from ..util.typecheck import show
from .ema import WeightEMA, copy_of, load_into, tracked

EARLY_STOPPING_KEYS = ("patience", "min_delta", "metric", "restore_best")


def check_early_stopping(cfg: Any, where: str, metric: str) -> None:
    """``stages.N.early_stopping``: a table with ``patience`` (>= 1) and optional ``min_delta`` (>= 0),
    ``metric`` (the task's ``metric`` or ``loss``) and ``restore_best`` (true/false)."""
    if cfg is None:
        return
    example = f"{where} = {{ patience = 3, min_delta = 0.001 }}"
    unknown = [k for k in cfg if k not in EARLY_STOPPING_KEYS]
    if unknown:
        raise RecipeError(f"{where}.{unknown[0]}: unknown key; use {', '.join(EARLY_STOPPING_KEYS)} ({example})")
    patience = cfg.get("patience")
    if isinstance(patience, bool) or not isinstance(patience, int) or not 1 <= patience <= 100_000:
        raise RecipeError(f"{where}.patience: give a whole number of epochs >= 1, got {show(patience)} ({example})")
    delta = cfg.get("min_delta", 0.0)
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta < float("inf"):
        raise RecipeError(f"{where}.min_delta: give a number >= 0, got {show(delta)}")
    if cfg.get("metric", metric) not in (metric, "loss"):
        raise RecipeError(f"{where}.metric: {show(cfg['metric'])} is not {metric!r} (the task's metric) or 'loss'")
    if not isinstance(cfg.get("restore_best", True), bool):
        raise RecipeError(f"{where}.restore_best: give true or false")


def check_ema_decay(decay: float | None, where: str) -> None:
    if decay is not None and not 0.0 < decay < 1.0:
        raise RecipeError(f"{where}.ema_decay: {decay} must be between 0 and 1 (typical: 0.99 to 0.9999)")


class StageKeeper:
    """One stage's moving average, early stopping and keep-the-better-weights guard.

    ``start``: the validation metrics of the weights the stage starts with (the previous stage's
    record), when the stage must not end worse than them (``keep_better``); None for the first stage."""

    def __init__(
        self, model: nn.Module, stage: Any, metric: str, higher_is_better: bool, start: dict[str, float] | None
    ) -> None:
        es = stage.early_stopping or {}
        self.model, self.task_metric = model, metric
        self.patience: int | None = es.get("patience")
        self.min_delta = float(es.get("min_delta", 0.0))
        self.restore_best = bool(es.get("restore_best", True))
        self.metric = es.get("metric", metric)
        self.higher = higher_is_better if self.metric == metric else False
        self.ema = WeightEMA(model, stage.ema_decay) if stage.ema_decay else None
        self.start_val = start if stage.keep_better and start and self.metric in start else None
        self.start = copy_of(tracked(model)) if self.start_val is not None else None
        self.best_val: dict[str, float] | None = self.start_val
        self.best_epoch = 0  # 0: the starting weights
        self.best: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.last_val: dict[str, float] | None = None

    @classmethod
    def for_stage(cls, trainer: Any, si: int, stage: Any, state: dict[str, Any] | None) -> StageKeeper:
        """The keeper of ``trainer``'s stage ``si``; ``state``: a checkpoint taken during this stage."""
        task = trainer.task
        before = trainer.stage_results[-1].get("val") if si > 0 and trainer.stage_results else None
        keeper = cls(trainer.model, stage, task.metric, task.higher_is_better, before)
        if state is not None:
            try:
                keeper.load_state_dict(state["stage_state"])
            except (KeyError, TypeError, ValueError) as exc:
                from ..errors import ZooError

                raise ZooError(
                    f"checkpoint {trainer.out / trainer.checkpoint_file} does not fit stage {si}'s options"
                    f" ({type(exc).__name__}: {exc}); delete it to restart the run"
                ) from None
        return keeper

    # -- during the stage -----------------------------------------------------------------------------
    def after_step(self) -> None:
        if self.ema is not None:
            self.ema.update(self.model)

    def evaluated(self) -> contextlib.AbstractContextManager:
        """The block in which the epoch is evaluated: with the averaged weights, when there are some."""
        return self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext()

    def value(self, val: dict[str, float] | None) -> float | None:
        return None if val is None else float(val[self.metric])

    def better(self, a: dict[str, float] | None, b: dict[str, float] | None, delta: float = 0.0) -> bool:
        """``a`` scores better than ``b`` by more than ``delta`` (anything beats nothing or NaN)."""
        x, y = self.value(a), self.value(b)
        if x is None or x != x:
            return False
        if y is None or y != y:
            return True
        return x > y + delta if self.higher else x < y - delta

    def end_epoch(self, epoch: int, val: dict[str, Any]) -> bool:
        """Record epoch ``epoch`` (0-based) and its metrics; True when early stopping ends the stage."""
        self.last_val = {k: float(val[k]) for k in {"loss", self.task_metric, self.metric}}
        if self.patience is None:
            return False
        if self.better(self.last_val, self.best_val, self.min_delta):
            self.best_val, self.best_epoch, self.bad_epochs = self.last_val, epoch + 1, 0
            if self.restore_best:
                self.best = copy_of(self.ema.shadow if self.ema is not None else tracked(self.model))
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def finish(self, si: int, name: str, epochs_run: int, stopped: bool, results: list[dict[str, Any]]) -> str:
        """Put the weights the stage ends with into the model, append the stage's record to ``results``;
        the line to say (or "")."""
        kept, val, epoch = "last", self.last_val, epochs_run
        if self.patience is not None and self.restore_best and self.best_epoch != epochs_run:
            if self.best_epoch == 0 and self.start is not None:
                kept, val, epoch = "start", self.start_val, 0
            elif self.best is not None:
                kept, val, epoch = "best", self.best_val, self.best_epoch
        elif self.start is not None and self.better(self.start_val, self.last_val):
            kept, val, epoch = "start", self.start_val, 0
        key, last, note = f"val_{self.metric}", self.value(self.last_val), ""
        if kept == "start":
            load_into(self.model, self.start)
            note = (
                f"  kept the weights stage {si} {name!r} started with: {key} {self.value(self.start_val):.4f} there,"
                f" {last:.4f} after {epochs_run} epoch(s) (keep_better; try a lower lr or fewer layers for this stage)"
            )
        elif kept == "best":
            load_into(self.model, self.best)
            note = f"  restored the best epoch's weights: epoch {epoch}, {key} {self.value(val):.4f} (last {last:.4f})"
        elif self.ema is not None:
            self.ema.commit(self.model)
            kept = "ema"
        if stopped:
            stop = f"  early stopping after epoch {epochs_run}: {key} gained no more than {self.min_delta:g}"
            note = f"{stop} in {self.patience} epoch(s)" + (f"\n{note}" if note else "")
        results.append(
            {
                "stage": si,
                "name": name,
                "epochs_run": epochs_run,
                "stopped_early": stopped,
                "best_epoch": epoch,
                "kept": kept,
                "val": val,
            }
        )
        return note

    # -- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "values": json.dumps({"best": self.best_val, "last": self.last_val, "start": self.start_val}),
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        for key in ("start", "best"):
            if getattr(self, key) is not None:
                state[key] = getattr(self, key)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        values = json.loads(state["values"])
        self.best_val, self.last_val, self.start_val = values["best"], values["last"], values["start"]
        self.best_epoch, self.bad_epochs = int(state["best_epoch"]), int(state["bad_epochs"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.start = state.get("start")  # the weights before the stage's first epoch, not the resumed ones
        self.best = state.get("best")
