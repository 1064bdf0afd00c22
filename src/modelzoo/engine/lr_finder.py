"""The learning-rate range test (Leslie Smith, "Cyclical Learning Rates", 2017; fastai's ``lr_find``).

Train one stage of a recipe for a few dozen steps while the learning rate grows exponentially from
``start_lr`` to ``end_lr``; record the loss of every step (smoothed with a debiased moving average);
stop when it diverges (``diverge`` x the best smoothed loss, or not finite). The lr to use lies where
the loss falls fastest and longest: like fastai's default ``valley`` suggestion, the middle of the
longest stretch over which the loss keeps falling, well below where it blows up.

It knows no task: it builds the recipe's model through the engine's :class:`~modelzoo.engine.Trainer`,
trains the stages before the tested one exactly as ``zoo finetune`` would (so the test starts from the
state that stage starts from), and drives the task's own ``loss`` (or ``head_loss`` on cached features,
when the stage trains a frozen backbone's head) with the stage's optimizer, parameter groups and
layer-wise LR decay. The lr it reports is the stage's ``lr`` (the head's; backbone groups get it times
their decay factor, as in training). It writes ``lr_finder.png`` and ``lr_finder.json`` in the output
folder and leaves no checkpoint or model behind, so the folder can still receive the real run (whose
first stage then reuses the feature cache).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ZooError
from ..model.task import move_to
from ..util.files import atomic_write_text
from .featurecache import FeatureSet
from .recipe import Recipe, load_recipe
from .trainer import Trainer
from .training import epoch_seed, make_optimizer, param_groups, set_trainable, train_mode

#: fastai's defaults: 100 steps from 1e-7 to 10, stop at 4x the best smoothed loss
START_LR, END_LR, STEPS, DIVERGE = 1e-7, 10.0, 100, 4.0
#: the moving average's weight on the past (fastai: 0.98)
BETA = 0.98
#: a valley whose loss falls by less than this fraction is no valley: the curve is flat, then rises
FLAT = 0.1


@dataclass
class LRFinderResult:
    """What a range test found: the lrs tried, their losses, and the lr to use."""

    stage: int
    stage_name: str
    lrs: list[float]
    #: debiased moving average of the step losses (what the suggestion and the plot use)
    losses: list[float]
    raw_losses: list[float]
    #: the suggested lr, and the lr of the steepest descent for reference
    suggestion: float
    steepest: float
    #: how the suggestion was found: "valley" (the loss falls: the middle of its longest fall) or
    #: "flat" (it barely falls, e.g. a stage that continues from a trained head: where it starts rising)
    method: str
    #: the lr at which the test stopped because the loss diverged (None: it reached ``end_lr``)
    diverged_at: float | None
    start_lr: float
    end_lr: float
    path: Path
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def check_arguments(start_lr: float, end_lr: float, steps: int, diverge: float) -> None:
    """One line per bad argument, before anything is built."""
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr), ("diverge", diverge)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ZooError(f"lr finder: {name} must be a finite number, got {value!r}")
    if not 0 < start_lr < end_lr:
        raise ZooError(f"lr finder: need 0 < start_lr < end_lr, got start_lr {start_lr:g} and end_lr {end_lr:g}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 10:
        raise ZooError(f"lr finder: steps must be a whole number >= 10 (fastai uses 100), got {steps!r}")
    if diverge <= 1:
        raise ZooError(
            f"lr finder: diverge must be > 1 (the loss stops the test at diverge x its best), got {diverge:g}"
        )


def resolve_stage(recipe: Recipe, stage: int | str | None) -> int:
    """A stage index: None or ``"last"`` -> the last stage; an int (or digits) -> that stage, checked."""
    n = len(recipe.stages)
    names = ", ".join(f"{i} {s.name!r}" for i, s in enumerate(recipe.stages))
    if stage is None or stage == "last":
        return n - 1
    if isinstance(stage, str):
        if not stage.lstrip("-").isdigit():
            raise ZooError(f"--find-lr {stage}: not a stage index; the recipe's stages are {names}")
        stage = int(stage)
    if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < n:
        raise ZooError(f"--find-lr {stage}: no such stage; the recipe's stages are {names} (give 0 to {n - 1})")
    return stage


class _RangeTestTrainer(Trainer):
    """A trainer that writes no checkpoint: the range test leaves no run behind to resume."""

    def save_checkpoint(self, stage: int, epoch: int, opt, sched) -> None:
        return None


def find_lr(
    recipe: Recipe | str | Path,
    out: str | Path | None = None,
    overrides: list[str] | None = None,
    stage: int | str | None = None,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    steps: int = STEPS,
    diverge: float = DIVERGE,
    quiet: bool = False,
    feature_cache: bool = True,
) -> LRFinderResult:
    """Run the range test for ``stage`` of ``recipe`` (default: its last stage) into ``out``."""
    check_arguments(start_lr, end_lr, steps, diverge)
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    si = resolve_stage(recipe, stage)
    out = Path(out) if out is not None else Path("runs") / f"{recipe.name}-lr-find-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    trainer = _RangeTestTrainer(recipe, out, quiet=quiet, feature_cache=feature_cache)
    if trainer.world.distributed:
        raise ZooError("the lr finder runs in one process; start it without torchrun / --nproc")
    trainer.setup()
    for i in range(si):  # the state the tested stage starts from
        trainer.run_stage(i, recipe.stages[i], None, 0)
    lrs, raw = range_test(trainer, si, start_lr, end_lr, steps, diverge)
    losses = smooth(raw)
    stopped = len(lrs) < steps
    suggestion, steepest, method = suggest(lrs, losses)
    result = LRFinderResult(
        stage=si,
        stage_name=recipe.stages[si].name,
        lrs=lrs,
        losses=losses,
        raw_losses=raw,
        suggestion=suggestion,
        steepest=steepest,
        method=method,
        diverged_at=lrs[-1] if stopped else None,
        start_lr=start_lr,
        end_lr=end_lr,
        path=out,
    )
    atomic_write_text(out / "lr_finder.json", json.dumps(result.to_dict(), indent=2) + "\n")
    result.files.append("lr_finder.json")
    plot_range_test(result, out / "lr_finder.png")
    result.files.append("lr_finder.png")
    return result


def range_test(
    trainer: Trainer, si: int, start_lr: float, end_lr: float, steps: int, diverge: float
) -> tuple[list[float], list[float]]:
    """Train stage ``si`` for up to ``steps`` steps at exponentially growing lrs; return the lrs
    and raw losses up to (and including) the step at which the smoothed loss diverged."""
    r, a, model = trainer.recipe, trainer.task, trainer.model
    stage = r.stages[si]
    trainable = trainer.stage_groups[si]
    n_train = set_trainable(model, trainer.groups, trainable)
    frozen = not trainable
    augmenting = stage.augment and a.augmenting
    use_cache = frozen and trainer.feature_cache and a.feature_cache and not augmenting
    decay = stage.layer_decay if stage.layer_decay is not None else r.optimizer.layer_decay
    opt = make_optimizer(r, param_groups(model, trainer.groups, start_lr, r.optimizer.weight_decay, decay))
    if use_cache:
        train_feats, train_y, _, _ = trainer.cached_features(si)
        train_set = FeatureSet(train_feats, train_y)
    else:
        train_set = a.dataset("train", augment=stage.augment)
    trainer.wrap(trainable=not use_cache)
    what = "head" if frozen else f"head + {', '.join(trainable)}"
    trainer.log(
        f"lr finder: stage {si} {stage.name!r}: train {what}{' on cached features' if use_cache else ''}"
        f" ({n_train:,} params), up to {steps} steps, lr {start_lr:g} -> {end_lr:g}"
    )
    ratio = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    raw: list[float] = []
    average, best, epoch = 0.0, math.inf, 0
    train_mode(model, frozen, stage.freeze_bn_stats)
    bar = trainer.progress.track(range(steps), "lr finder", unit="steps")
    batches = iter(())
    for step in bar:
        batch = next(batches, None)
        while batch is None:  # cycle through the training data, each pass reshuffled from the seed
            seed = epoch_seed(r.seed, si, 10_000 + epoch)
            torch.manual_seed(seed)
            loader = trainer.loader(train_set, shuffle=True, seed=seed, everything=use_cache)
            batches, epoch = iter(loader), epoch + 1
            batch = next(batches, None)
        lr = start_lr * ratio**step
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        if use_cache:
            feats, y = batch
            loss = a.head_loss(model, move_to(feats, trainer.device), move_to(y, trainer.device))
        else:
            loss, _ = a.loss(trainer.forward, a.to_device(batch))
        value = float(loss.item())
        lrs.append(lr)
        raw.append(value)
        if not math.isfinite(value):
            break
        average = BETA * average + (1 - BETA) * value
        smoothed = average / (1 - BETA ** (step + 1))
        if smoothed > diverge * best:
            break
        best = min(best, smoothed)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return lrs, raw


def smooth(raw: list[float]) -> list[float]:
    """The debiased exponential moving average of the losses (a non-finite loss stays non-finite)."""
    out, average = [], 0.0
    for i, value in enumerate(raw):
        if not math.isfinite(value):
            out.append(math.inf)
            continue
        average = BETA * average + (1 - BETA) * value
        out.append(average / (1 - BETA ** (i + 1)))
    return out


def suggest(lrs: list[float], losses: list[float]) -> tuple[float, float, str]:
    """``(suggestion, steepest, method)``, all without the first 10% of the steps (the average is
    still warming up) and the last five (the blow-up).

    ``valley``: fastai's rule, the middle of the longest run of falling loss. When that run falls by
    less than ``FLAT`` of its starting loss, there is no valley to speak of (typical when the stage
    continues from a trained head: nothing gets much better, only worse past some lr) and the valley
    would be noise; the suggestion is then the ``flat`` curve's edge: the largest lr at which the loss
    is still within ``FLAT`` of its minimum, where it starts to rise. ``steepest``: the lr of the
    steepest fall of the loss against log(lr), for reference."""
    n = len(lrs)
    skip_start, skip_end = len(lrs) // 10 if n >= 20 else 0, min(5, max(0, n - 5))
    idx = [i for i in range(skip_start, n - skip_end) if math.isfinite(losses[i])]
    if len(idx) < 5:
        raise ZooError(
            f"lr finder: the loss diverged after {n} steps, too soon to suggest an lr; lower start_lr"
            f" (now {lrs[0]:g}) or check the data"
        )
    xs, ys = [lrs[i] for i in idx], [losses[i] for i in idx]
    # valley: the longest chain of points whose loss falls (a longest decreasing subsequence)
    longest = [1] * len(ys)
    end = 0
    for i in range(1, len(ys)):
        for j in range(i):
            if ys[i] < ys[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[i] > longest[end]:
            end = i
    start = end - longest[end] + 1
    third = (end - start) / 3
    valley = xs[start + int(third) + int(third / 2)]
    fall = (ys[start] - min(ys[start : end + 1])) / max(abs(ys[start]), 1e-12)
    method = "valley"
    if fall < FLAT:
        band = min(ys) + FLAT * abs(min(ys))
        valley, method = xs[max(i for i, y in enumerate(ys) if y <= band)], "flat"
    # steepest: the most negative slope of loss against log(lr)
    slopes = [(ys[i + 1] - ys[i]) / (math.log(xs[i + 1]) - math.log(xs[i])) for i in range(len(ys) - 1)]
    steepest = xs[min(range(len(slopes)), key=slopes.__getitem__)]
    return valley, steepest, method


def plot_range_test(result: LRFinderResult, path: Path) -> None:
    """Loss (smoothed, and raw in the background) against lr on a log axis, the suggestion marked."""
    from ..util.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    finite = [(x, y) for x, y in zip(result.lrs, result.raw_losses) if math.isfinite(y)]
    if finite:
        ax.plot(*zip(*finite), color="lightgrey", linewidth=0.8, label="step loss")
    smoothed = [(x, y) for x, y in zip(result.lrs, result.losses) if math.isfinite(y)]
    ax.plot(*zip(*smoothed), color="tab:blue", label="smoothed loss")
    ax.axvline(result.suggestion, color="tab:red", linestyle="--", label=f"suggested lr {result.suggestion:.2g}")
    if result.diverged_at is not None:
        ax.axvline(result.diverged_at, color="black", linestyle=":", label=f"diverged at {result.diverged_at:.2g}")
    best = min(y for _, y in smoothed)
    top = max(y for _, y in smoothed[: max(1, len(smoothed) // 10)])
    ax.set_ylim(best - 0.1 * abs(best), max(top, best) * 1.5 + 1e-9)
    ax.set_xscale("log")
    ax.set(
        xlabel="learning rate (the stage's lr; backbone groups get it x their layer decay)",
        ylabel="training loss",
        title=f"lr range test, stage {result.stage} '{result.stage_name}'",
    )
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def summary_line(result: LRFinderResult) -> str:
    """What ``zoo finetune --find-lr`` prints."""
    stop = (
        f"the loss diverged at lr {result.diverged_at:.2g}"
        if result.diverged_at is not None
        else f"the loss did not diverge up to {result.end_lr:g}"
    )
    how = (
        f"the middle of the loss's longest fall; steepest at {result.steepest:.2g}"
        if result.method == "valley"
        else "the loss barely falls: the lr where it starts to rise"
    )
    return (
        f"lr finder, stage {result.stage} {result.stage_name!r}: {len(result.lrs)} steps, {stop};"
        f" suggested lr {result.suggestion:.2g} ({how})."
        f" Use it: --set stages.{result.stage}.lr={result.suggestion:.2g}. Plot: {result.path / 'lr_finder.png'}"
    )
