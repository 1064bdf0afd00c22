"""The fine-tune engine: the staged transfer-learning recipe, resumable at every epoch.

recipe -> data -> assemble backbone + head -> stages (freeze -> train head on cached features ->
unfreeze groups with layer-wise LR decay) -> checkpoint every epoch -> eval -> run folder.

Determinism: each epoch reseeds torch from (seed, stage, epoch), so the shuffle order and dropout
masks of an epoch do not depend on what ran before it in this process. A run killed at any point
and resumed from its last checkpoint therefore reproduces the uninterrupted run exactly (on CPU).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .checkpointing import BackgroundWriter, snapshot
from .errors import RecipeError, ZooError
from .fsutil import atomic_write, atomic_write_text
from .model import TaskModel, assemble
from .recipe import Recipe, StageCfg, load_recipe
from .task import Task
from .tasks import create_task

CHECKPOINT = "checkpoint/last.pt"
#: within a stage, at most one checkpoint per this many seconds (MODELZOO_CHECKPOINT_SECONDS overrides)
CHECKPOINT_SECONDS = 10.0


@dataclass
class Run:
    """A finished (or resumed-and-finished) fine-tune run and where it lives."""

    path: Path
    recipe: Recipe
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    model: TaskModel | None = None
    #: the task's main metric (a key of ``metrics``)
    metric: str = "loss"


# -- device -----------------------------------------------------------------------------------
def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA, then MPS, then CPU; an explicit device that is missing is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ZooError(f'device {name!r} requested but CUDA is not available; use device = "auto" or "cpu"')
    return torch.device(name)


def auto_workers(requested: int | str, in_memory: bool, device: torch.device) -> int:
    if requested != "auto":
        return int(requested)
    if in_memory and device.type == "cpu":
        return 0  # tensor decoding is cheap; workers would only compete for the cores
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def epoch_seed(seed: int, stage: int, epoch: int) -> int:
    return (seed * 1_000_003 + stage * 10_007 + epoch) % (2**31)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:
        pass


# -- freezing and parameter groups ------------------------------------------------------------
def backbone_groups(model: TaskModel) -> list[tuple[str, list[str]]]:
    """The backbone's layer groups with names as in ``model.named_parameters()``; ungrouped params join the first."""
    groups = [(name, [f"backbone.{p}" for p in params]) for name, params in model.backbone.layer_groups()]
    grouped = {p for _, params in groups for p in params}
    rest = [n for n, _ in model.backbone.named_parameters(prefix="backbone") if n not in grouped]
    if rest:
        if groups:
            groups[0] = (groups[0][0], rest + groups[0][1])
        else:
            groups = [("backbone", rest)]
    return groups


def select_groups(train: str | list[str], groups: list[tuple[str, list[str]]], where: str) -> list[str]:
    names = [g for g, _ in groups]
    if train == "head":
        return []
    if train == "all":
        return names
    if isinstance(train, str) and train.startswith("last:"):
        n = int(train[5:])
        if n > len(names):
            raise RecipeError(
                f'{where}.train: last:{n} but the backbone has {len(names)} groups ({", ".join(names)}); use "all"'
            )
        return names[len(names) - n :] if n else []
    unknown = [g for g in train if g not in names]
    if unknown:
        raise RecipeError(f"{where}.train: unknown group(s) {unknown}; the backbone's groups are: {', '.join(names)}")
    return list(train)


def set_trainable(model: TaskModel, groups: list[tuple[str, list[str]]], trainable: list[str]) -> int:
    """Freeze everything except the head and the named backbone groups; return #trainable params."""
    allowed = {p for g, params in groups if g in trainable for p in params}
    count = 0
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("head.") or name in allowed)
        count += param.numel() if param.requires_grad else 0
    return count


def train_mode(model: TaskModel, backbone_frozen: bool, freeze_bn_stats: bool = False) -> None:
    """Train mode, but frozen parts keep running BatchNorm statistics fixed (and dropout off).

    ``freeze_bn_stats`` keeps every backbone BatchNorm in eval mode, trainable or not.
    """
    model.train()
    if backbone_frozen:
        model.backbone.eval()
        return
    for module in model.backbone.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if freeze_bn_stats or (params and not any(p.requires_grad for p in params)):
                module.eval()


def param_groups(
    model: TaskModel,
    groups: list[tuple[str, list[str]]],
    lr: float,
    weight_decay: float,
    layer_decay: float,
) -> list[dict[str, Any]]:
    """Discriminative LRs: backbone group i of n gets ``lr * layer_decay ** (n - i)``; the head gets ``lr``.

    Biases and norm weights (1-D tensors) get no weight decay, as in timm.
    """
    named = dict(model.named_parameters())
    out: list[dict[str, Any]] = []
    n = len(groups)
    scaled = [(f"backbone:{g}", params, layer_decay ** (n - i)) for i, (g, params) in enumerate(groups)]
    scaled.append(("head", [k for k in named if k.startswith("head.")], 1.0))
    for gname, params, scale in scaled:
        live = [(p, named[p]) for p in params if p in named and named[p].requires_grad]
        decay = [t for p, t in live if t.ndim > 1]
        no_decay = [t for p, t in live if t.ndim <= 1]
        for tensors, wd, tag in ((decay, weight_decay, ""), (no_decay, 0.0, "/no_decay")):
            if tensors:
                out.append(
                    {"params": tensors, "lr": lr * scale, "weight_decay": wd, "name": gname + tag, "lr_scale": scale}
                )
    return out


def make_optimizer(recipe: Recipe, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    o = recipe.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=o.lr)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Warmup (linear from ~0) then constant, cosine to 0, or one-cycle (warmup 30%, cosine down)."""
    if schedule == "onecycle" and warmup == 0:
        warmup = max(1, int(0.3 * total))
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# -- feature cache ----------------------------------------------------------------------------
@torch.no_grad()
def compute_features(model: TaskModel, loader: DataLoader, task: Task, progress: bool = False, desc: str = "features"):
    """Backbone features and targets of every example, with the backbone in eval mode."""
    model.backbone.eval()
    feats, targets = [], []
    for batch in _progress(loader, progress, desc):
        f, y = task.features(model, task.to_device(batch))
        feats.append(f.float().cpu())
        targets.append(torch.as_tensor(y).cpu())
    return torch.cat(feats), torch.cat(targets)


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)


# -- the engine -------------------------------------------------------------------------------
class Trainer:
    """Runs a recipe's stages on one model through its task, writing the run folder as it goes."""

    def __init__(
        self,
        recipe: Recipe,
        out: Path,
        quiet: bool = False,
        feature_cache: bool = True,
        log=None,
        checkpoint_every: float | None = None,
    ) -> None:
        self.recipe = recipe
        self.out = out
        self.quiet = quiet
        self.feature_cache = feature_cache
        self.checkpoints = BackgroundWriter()
        #: seconds between checkpoints within a stage (every stage's last epoch is always checkpointed):
        #: an epoch of cached-feature head training takes milliseconds, a checkpoint of the whole model
        #: much longer, so fast epochs are grouped; a resume replays the few epochs since deterministically
        self.checkpoint_every = (
            float(os.environ.get("MODELZOO_CHECKPOINT_SECONDS", CHECKPOINT_SECONDS))
            if checkpoint_every is None
            else checkpoint_every
        )
        self.last_checkpoint = time.monotonic()
        self.progress = not quiet and sys.stderr.isatty()
        self.log = log or (lambda msg: None if quiet else print(msg, file=sys.stderr, flush=True))
        self.device = pick_device(recipe.device)
        cuda = self.device.type == "cuda"
        self.amp_dtype = (
            (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda and recipe.amp else None
        )
        self.task = create_task(recipe.task, recipe, self.device, self.amp_dtype)
        self.history: list[dict[str, Any]] = []

    def assemble(
        self,
        labels: list[str],
        head_options: dict[str, Any] | None = None,
        preprocess: dict[str, Any] | None = None,
    ) -> TaskModel:
        """The recipe's backbone + head for ``labels`` (what ``Task.build_model`` is handed)."""
        m = self.recipe.model
        return assemble(
            m.backbone,
            m.head,
            labels=labels,
            pretrained=m.pretrained,
            head_options=m.head_options if head_options is None else head_options,
            backbone_options=m.backbone_options,
            preprocess=preprocess,
            task=self.recipe.task,
        )

    def setup(self) -> None:
        r, a = self.recipe, self.task
        seed_everything(r.seed)
        a.load_data()
        self.model = a.build_model(self.assemble)
        if not isinstance(self.model, TaskModel):
            raise ZooError(f"task {a.name!r}: build_model returned {type(self.model).__name__}, not a TaskModel")
        self.model.config["dataset"] = {
            "name": a.dataset_name,
            **{k: v for k, v in a.data_info.items() if k in ("hub_id", "license", "num_train", "num_val")},
        }
        self.model.config["recipe"] = r.name
        self.groups = backbone_groups(self.model)
        self.stage_groups = [select_groups(s.train, self.groups, f"stages.{i}") for i, s in enumerate(r.stages)]
        self.model.to(self.device)
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        a.prepare(self.model)
        self.workers = auto_workers(r.data.num_workers, a.in_memory, self.device)
        self.forward = torch.compile(self.model) if r.compile else self.model

    def loader(self, dataset, shuffle: bool, seed: int | None = None) -> DataLoader:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        tensors = isinstance(dataset, TensorDataset)
        return DataLoader(
            dataset,
            batch_size=self.recipe.data.batch_size,
            shuffle=shuffle,
            generator=gen,
            num_workers=0 if tensors else self.workers,
            collate_fn=None if tensors else self.task.collate,
            pin_memory=self.device.type == "cuda",
        )

    # checkpointing
    def save_checkpoint(self, stage: int, epoch: int, opt, sched) -> None:
        """Snapshot the state now; write it (then metrics.jsonl) while the next epoch trains."""
        state = snapshot(
            {
                "model": self.model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "progress": {"stage": stage, "epoch": epoch},
                "history": json.dumps(self.history),
                "rng": {"torch": torch.get_rng_state()},
            }
        )
        history = list(self.history)

        def write() -> None:
            atomic_write(self.out / CHECKPOINT, lambda p: torch.save(state, p))
            self.write_metrics(history)

        self.checkpoints.submit(write)

    def load_checkpoint(self) -> dict[str, Any] | None:
        path = self.out / CHECKPOINT
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ZooError(
                f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to restart the run"
            ) from None
        self.model.load_state_dict(state["model"])
        self.history = json.loads(state["history"])
        torch.set_rng_state(state["rng"]["torch"])
        return state

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        atomic_write_text(self.out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    # stages
    def run(self) -> Run:
        state = self.load_checkpoint()
        start_stage, start_epoch = (state["progress"]["stage"], state["progress"]["epoch"]) if state else (0, 0)
        if state:
            self.log(f"resuming {self.out} at stage {start_stage} epoch {start_epoch}")
        t0 = time.perf_counter()
        for si, stage in enumerate(self.recipe.stages):
            if si < start_stage or (si == start_stage and start_epoch >= stage.epochs):
                continue
            resuming = si == start_stage
            try:
                self.run_stage(si, stage, state if resuming else None, start_epoch if resuming else 0)
            finally:
                self.checkpoints.wait()  # the stage's last checkpoint lands before anything else happens
        return self.finish(time.perf_counter() - t0)

    def run_stage(self, si: int, stage: StageCfg, state, start_epoch: int) -> None:
        r, a = self.recipe, self.task
        trainable = self.stage_groups[si]
        n_train = set_trainable(self.model, self.groups, trainable)
        frozen = not trainable
        augmenting = stage.augment and a.augmenting
        use_cache = frozen and self.feature_cache and a.feature_cache and not augmenting
        lr = stage.lr or r.optimizer.lr
        decay = stage.layer_decay if stage.layer_decay is not None else r.optimizer.layer_decay
        opt = make_optimizer(r, param_groups(self.model, self.groups, lr, r.optimizer.weight_decay, decay))
        if use_cache:
            train_feats, train_y, val_feats, val_y = self.cached_features(si)
            train_set = TensorDataset(train_feats, train_y)
        else:
            train_set = a.dataset("train", augment=stage.augment)
            val_loader = self.loader(a.dataset("val"), shuffle=False)
        steps = math.ceil(len(train_set) / r.data.batch_size)
        total, warmup = steps * stage.epochs, round(stage.warmup_epochs * steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup, stage.schedule))
        if state is not None and start_epoch > 0:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        what = "head" if frozen else f"head + {', '.join(trainable)}"
        cache_note = " on cached features" if use_cache else ""
        self.log(
            f"stage {si} {stage.name!r}: train {what}{cache_note} ({n_train:,} params), {stage.epochs} epoch(s), lr {lr:g}"
        )
        metric = a.metric
        for epoch in range(start_epoch, stage.epochs):
            t0 = time.perf_counter()
            torch.manual_seed(epoch_seed(r.seed, si, epoch))
            loader = self.loader(train_set, shuffle=True, seed=epoch_seed(r.seed, si, epoch))
            train_loss = self.train_epoch(
                loader, opt, sched, use_cache, frozen, f"s{si} e{epoch}", stage.freeze_bn_stats
            )
            if use_cache:
                val = a.evaluate_features(self.model, val_feats, val_y)
            else:
                val = a.evaluate(self.model, val_loader)
            row = {
                "stage": si,
                "stage_name": stage.name,
                "epoch": epoch,
                "train_loss": round(train_loss, 6),
                "val_loss": round(val["loss"], 6),
                f"val_{metric}": round(val[metric], 6),
                "lr": opt.param_groups[-1]["lr"],
                "seconds": round(time.perf_counter() - t0, 2),
            }
            self.history.append(row)
            last = epoch + 1 == stage.epochs
            if last or time.monotonic() - self.last_checkpoint >= self.checkpoint_every:
                self.save_checkpoint(si, epoch + 1, opt, sched)
                self.last_checkpoint = time.monotonic()
            self.log(
                f"  epoch {epoch + 1}/{stage.epochs}: train_loss {train_loss:.4f}  val_loss {val['loss']:.4f}"
                f"  val_{metric} {val[metric]:.4f}  ({row['seconds']}s)"
            )

    def feature_key(self) -> str:
        """What makes cached features valid: the backbone's weights right now, its preprocessing,
        the recipe's data and seed, and what the task loaded. A cache under any other key is ignored."""
        import hashlib

        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.backbone.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        info = {k: v for k, v in self.task.data_info.items() if isinstance(v, (str, int, float, bool))}
        facts = {
            "task": self.recipe.task,
            "backbone": self.model.config["backbone"],
            "preprocess": self.model.config.get("preprocess"),
            "data": self.recipe.to_dict()["data"],
            "seed": self.recipe.seed,
            "data_info": info,
            "labels": self.task.labels,
        }
        digest.update(json.dumps(facts, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:24]

    def cached_features(self, si: int):
        """Backbone features of train and val, computed once per frozen backbone and kept on disk,
        keyed by everything that makes them valid (a stale or foreign file is recomputed, never used)."""
        key = self.feature_key()
        path = self.out / "cache" / f"features-{key}.pt"
        if path.is_file():
            try:
                d = torch.load(path, map_location="cpu", weights_only=True)
                if isinstance(d, dict) and d.get("key") == key:
                    return d["train"], d["train_y"], d["val"], d["val_y"]
            except Exception as exc:
                self.log(f"warning: ignoring unreadable feature cache {path} ({type(exc).__name__}); recomputing")
        a = self.task
        tr = compute_features(self.model, self.loader(a.dataset("train"), False), a, self.progress, "features train")
        va = compute_features(self.model, self.loader(a.dataset("val"), False), a, self.progress, "features val")
        d = {"key": key, "train": tr[0], "train_y": tr[1], "val": va[0], "val_y": va[1]}
        atomic_write(path, lambda p: torch.save(d, p))
        return d["train"], d["train_y"], d["val"], d["val_y"]

    def train_epoch(
        self, loader, opt, sched, cached: bool, frozen: bool, desc: str, freeze_bn_stats: bool = False
    ) -> float:
        train_mode(self.model, frozen, freeze_bn_stats)
        a = self.task
        total, count = 0.0, 0
        for batch in _progress(loader, self.progress, desc):
            if cached:
                feats, y = batch
                loss, n = a.head_loss(self.model, feats.to(self.device), y.to(self.device)), len(y)
            else:
                loss, n = a.loss(self.forward, a.to_device(batch))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * n
            count += n
        return total / max(1, count)

    def finish(self, seconds: float) -> Run:
        from .plots import plot_curves
        from .runfolder import save_model

        a = self.task
        self.model.eval()
        final = a.evaluate(self.model, self.loader(a.dataset("val"), shuffle=False), final=True)
        save_model(self.model, self.out)
        metrics = {k: v for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        summary = {
            "task": self.model.task,
            "recipe": self.recipe.name,
            "metrics": metrics,
            **a.summary_extras(final),
            "dataset": {"name": a.dataset_name, **a.data_info},
            "device": str(self.device),
            "seconds": round(seconds, 1),
        }
        atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        try:
            plot_curves(self.history, self.out / "training_curves.png", a.metric)
            a.write_artifacts(final, self.out)
        except Exception as exc:
            self.log(f"warning: plots not written ({type(exc).__name__}: {exc})")
        return Run(
            path=self.out, recipe=self.recipe, metrics=metrics, history=self.history, model=self.model, metric=a.metric
        )


# -- public entry points ----------------------------------------------------------------------
def _resolve_out(recipe: Recipe, out: str | Path | None) -> Path:
    if out is not None:
        return Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{recipe.name}-{stamp}"


def finetune(
    recipe: Recipe | str | Path | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: list[str] | None = None,
    quiet: bool = False,
    feature_cache: bool = True,
) -> Run:
    """Fine-tune a recipe into a run folder; ``resume`` continues a killed run exactly.

    With ``resume`` alone, the run's own ``recipe.toml`` is used; with both, they must agree.
    """
    if resume is not None:
        run_dir = Path(resume)
        saved = run_dir / "recipe.toml"
        if not saved.is_file():
            raise ZooError(
                f"{run_dir} is not a run folder (no recipe.toml); start it with zoo finetune RECIPE --out {run_dir}"
            )
        saved_recipe = load_recipe(saved)
        if recipe is not None:
            given = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
            if given.to_dict() != saved_recipe.to_dict():
                raise ZooError(
                    f"the recipe differs from the one {run_dir} was started with; drop --resume or use a new --out"
                )
        elif overrides:
            raise ZooError("--set cannot change a run being resumed; start a new run with --out")
        recipe, out = saved_recipe, run_dir
    else:
        if recipe is None:
            raise ZooError("give a recipe (a zoo/*.toml file or a registered recipe name), or --resume RUN_DIR")
        recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
        out = _resolve_out(recipe, out)
        if (out / CHECKPOINT).exists() or (out / "model.safetensors").exists():
            raise ZooError(f"{out} already holds a run; continue it with --resume {out} or pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(recipe, out, quiet=quiet, feature_cache=feature_cache)
    trainer.setup()
    atomic_write_text(out / "recipe.toml", recipe.to_toml())
    return trainer.run()
