"""The fine-tune engine: the staged transfer-learning recipe, resumable at every epoch.

recipe -> data -> assemble backbone + head -> stages (freeze -> train head on cached features ->
unfreeze groups with layer-wise LR decay) -> checkpoint every epoch -> eval -> run folder.

Determinism: each epoch reseeds torch from (seed, stage, epoch), so the shuffle order and dropout
masks of an epoch do not depend on what ran before it in this process. A run killed at any point
and resumed from its last checkpoint therefore reproduces the uninterrupted run exactly (on CPU).

Several processes (``torchrun``, ``zoo finetune --nproc``) train one model with DistributedDataParallel:
the recipe's batch size is the global batch, split across them (:mod:`modelzoo.engine.distributed`); frozen
stages compute cached features in shards and then train the small head identically everywhere; only
rank 0 writes the run folder. Checkpoints hold the plain model, so a run resumes with any world size.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from ..errors import ZooError
from ..model.assembly import assemble
from ..model.task import TaskModel, create_task, move_to, required_plugins, task_fingerprint
from ..tracking.session import Tracking
from ..util.files import atomic_write, atomic_write_text
from ..util.nest import cat_nests, nest_rows
from . import distributed, speed
from .checkpoint import BackgroundWriter, load_checkpoint, save_checkpoint
from .distributed import GlobalBatchSampler, ShareSampler, World
from .featurecache import FeatureSet, compute_features
from .progress import Progress
from .recipe import Recipe, StageCfg, load_recipe
from .resume import resumed_recipe
from .runlock import RunLock, check_new_out, remove_if_unstarted
from .stopping import StageKeeper
from .training import (
    auto_workers,
    backbone_groups,
    epoch_seed,
    lr_factor,
    make_optimizer,
    param_groups,
    process_device,
    quiet_worker_exit,
    seed_everything,
    select_groups,
    set_trainable,
    train_mode,
)

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
        world: World | None = None,
    ) -> None:
        self.world = world or distributed.world_from_env()
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
        quiet = quiet or not self.world.main  # one voice: rank 0's
        self.progress = Progress(enabled=not quiet)
        self.log = log or (lambda msg: None if quiet else print(msg, file=sys.stderr, flush=True))
        #: warnings are said even with --quiet (by rank 0)
        self.warn = lambda msg: print(f"warning: {msg}", file=sys.stderr, flush=True) if self.world.main else None
        self.device = process_device(recipe.device, self.world)
        distributed.init(self.world, self.device)
        cuda = self.device.type == "cuda"
        self.amp_dtype = (
            (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda and recipe.amp else None
        )
        self.task = create_task(recipe.task, recipe, self.device, self.amp_dtype)
        self.history: list[dict[str, Any]] = []
        #: what each finished stage ended with (best epoch, early stopping, kept weights): summary.json
        self.stage_results: list[dict[str, Any]] = []
        self.keeper: StageKeeper | None = None
        self.speed: speed.SpeedPlan | None = None
        self.checkpoint_file = CHECKPOINT
        self.tracking = Tracking(self)  # TensorBoard, MLflow...: opt-in, rank 0, never fatal (modelzoo.tracking)

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
        a.track = self.progress.track
        with self.progress.phase(f"loading {r.task} data"):
            a.load_data()
        info = a.data_info
        self.log(
            f"data {a.dataset_name}: {info.get('num_train', '?'):,} train / {info.get('num_val', '?'):,} validation"
            f" examples, {len(a.labels)} output(s)"
        )
        self.model = a.build_model(self.assemble)
        if not isinstance(self.model, TaskModel):
            raise ZooError(f"task {a.name!r}: build_model returned {type(self.model).__name__}, not a TaskModel")
        self.model.config["dataset"] = {
            "name": a.dataset_name,
            **{k: v for k, v in a.data_info.items() if k in ("hub_id", "license", "num_train", "num_val")},
        }
        self.model.config["recipe"] = r.name
        self.model.config["plugins"] = required_plugins(self.model.config)  # the model card names them
        for warning in [*getattr(r, "warnings", []), *a.advice(self.model)]:
            self.warn(warning)
        self.groups = backbone_groups(self.model)
        self.stage_groups = [select_groups(s.train, self.groups, f"stages.{i}") for i, s in enumerate(r.stages)]
        self.model.to(self.device)
        a.prepare(self.model)
        self.workers = auto_workers(r.data.num_workers, a.in_memory, self.device)
        speed.setup(self)  # threads, layout and precision: measured once per device and backbone
        self.forward = self.model
        if self.world.distributed and r.data.batch_size < self.world.size:
            raise ZooError(
                f"data.batch_size {r.data.batch_size} is the global batch; with {self.world.size} processes it must be"
                f" at least {self.world.size}"
            )

    def loader(self, dataset, shuffle: bool, seed: int | None = None, everything: bool = False) -> DataLoader:
        """Training batches (``shuffle``: this process's share of each global batch, their loss weights in
        ``loader.batch_sampler.weights``), or every example in order for evaluation and features, split
        among the processes unless ``everything`` (cached features: each process trains on all)."""
        tensors = isinstance(dataset, (TensorDataset, FeatureSet))
        world = World() if everything else self.world
        common = {
            "num_workers": 0 if tensors else self.workers,
            "collate_fn": dataset.collate
            if isinstance(dataset, FeatureSet)
            else None
            if tensors
            else self.task.collate,
            "pin_memory": self.device.type == "cuda",
            # a generator of its own: the loader draws its workers' seed from it, not from torch's global RNG
            "generator": torch.Generator().manual_seed(seed if seed is not None else 0),
            "worker_init_fn": quiet_worker_exit,
        }
        if shuffle:
            sampler = GlobalBatchSampler(len(dataset), self.recipe.data.batch_size, world, seed)
            return DataLoader(dataset, batch_sampler=sampler, **common)
        return DataLoader(
            dataset, batch_size=self.recipe.data.batch_size, sampler=ShareSampler(len(dataset), world), **common
        )

    def gather(self, outputs: list[Any]) -> list[Any]:
        """Every process's evaluation outputs (each example was evaluated by exactly one process)."""
        return distributed.gather(outputs, self.world)

    def evaluate(self, loader, final: bool = False) -> dict[str, Any]:
        loader = self.progress.track(loader, "final evaluation" if final else "evaluating")
        return self.task.evaluate(
            self.model, loader, final=final, gather=self.gather if self.world.distributed else None
        )

    def wrap(self, trainable: bool) -> None:
        """The module the training step calls: DistributedDataParallel over the model when several
        processes train it (rebuilt per stage: the trainable parameters differ), compiled if asked."""
        forward = self.model
        if trainable and self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            forward = DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=self.task.ddp_find_unused_parameters
            )
        self.forward = torch.compile(forward) if self.recipe.compile else forward

    # checkpointing
    def save_checkpoint(self, stage: int, epoch: int, opt, sched) -> None:
        """Snapshot the state now; write it (then metrics.jsonl) while the next epoch trains (rank 0)."""
        save_checkpoint(self, stage, epoch, opt, sched)

    def load_checkpoint(self) -> dict[str, Any] | None:
        return load_checkpoint(self)

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        atomic_write_text(self.out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    # stages
    def run(self) -> Run:
        state = self.load_checkpoint()
        start_stage, start_epoch = (state["progress"]["stage"], state["progress"]["epoch"]) if state else (0, 0)
        self.tracking.start()
        if state:
            self.log(f"resuming {self.out}: stage {start_stage} after epoch {start_epoch}")
        t0 = time.perf_counter()
        for si, stage in enumerate(self.recipe.stages):
            if si < start_stage or (si == start_stage and start_epoch >= stage.epochs):
                continue
            resuming = si == start_stage
            try:
                self.run_stage(si, stage, state if resuming else None, start_epoch if resuming else 0)
            except RuntimeError as exc:  # torch's own errors: shapes that do not fit, memory, a lost peer
                if distributed.is_lost_peer(exc, self.world):
                    raise distributed.lost_peer(exc, self.world, self.out) from None
                detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                raise ZooError(
                    f"stage {si} {stage.name!r} failed: {type(exc).__name__}: {detail}; check the recipe's data and"
                    f" model settings (input size, batch size, head options) for {self.recipe.model.backbone}"
                ) from None
            finally:
                self.checkpoints.wait()  # the stage's last checkpoint lands before anything else happens
                self.tracking.close_on_error()  # a run stopping here: its tracker runs end KILLED or FAILED
        return self.finish(time.perf_counter() - t0)

    def run_stage(self, si: int, stage: StageCfg, state, start_epoch: int) -> None:
        r, a = self.recipe, self.task
        self.stage_label = f"{si} {stage.name!r}"
        trainable = self.stage_groups[si]
        n_train = set_trainable(self.model, self.groups, trainable)
        frozen = not trainable
        augmenting = stage.augment and a.augmenting
        use_cache = frozen and self.feature_cache and a.feature_cache and not augmenting
        lr = stage.lr or r.optimizer.lr
        decay = stage.layer_decay if stage.layer_decay is not None else r.optimizer.layer_decay
        opt = make_optimizer(r, param_groups(self.model, self.groups, lr, r.optimizer.weight_decay, decay))
        cached = None if use_cache or frozen or augmenting else self.frozen_prefix(trainable, stage)
        prefix = cached[0] if cached else None
        if use_cache:
            train_feats, train_y, val_feats, val_y = self.cached_features(si)
            train_set = FeatureSet(train_feats, train_y)
        elif cached:
            _, train_set, val_set = cached
            val_loader = self.loader(val_set, shuffle=False)
        else:
            train_set = a.dataset("train", augment=stage.augment)
            val_loader = self.loader(a.dataset("val"), shuffle=False)
        self.wrap(trainable=not use_cache)
        steps = math.ceil(len(train_set) / r.data.batch_size)
        total, warmup = steps * stage.epochs, round(stage.warmup_epochs * steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup, stage.schedule))
        if state is not None and start_epoch > 0:
            try:
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ZooError(
                    f"checkpoint {self.out / CHECKPOINT} does not fit stage {si} ({type(exc).__name__}: {exc});"
                    " delete it to restart the run"
                ) from None
        what = "head" if frozen else f"head + {', '.join(trainable)}"
        cache_note = " on cached features" if use_cache else f" on cached {prefix.group} inputs" if prefix else ""
        self.log(
            f"stage {si} {stage.name!r}: train {what}{cache_note} ({n_train:,} params), {stage.epochs} epoch(s), lr {lr:g}"
        )
        self.keeper = StageKeeper.for_stage(self, si, stage, state if start_epoch > 0 else None)
        if use_cache:
            validate = lambda: a.evaluate_features(self.model, val_feats, val_y)  # noqa: E731
        else:
            validate = lambda: self.evaluate(val_loader)  # noqa: E731
        with prefix.skipping() if prefix else contextlib.nullcontext():  # the frozen layers below run no more
            self.epochs(si, stage, start_epoch, train_set, validate, opt, sched, use_cache)

    def epochs(self, si: int, stage: StageCfg, start: int, train_set, validate, opt, sched, use_cache: bool) -> None:
        """Train stage ``si`` from epoch ``start`` on; ``validate()`` gives each epoch's metrics."""
        seed, metric = self.recipe.seed, self.task.metric
        for epoch in range(start, stage.epochs):
            t0 = time.perf_counter()
            torch.manual_seed(epoch_seed(seed, si, epoch))
            loader = self.loader(train_set, shuffle=True, seed=epoch_seed(seed, si, epoch), everything=use_cache)
            train_loss = self.train_epoch(
                loader, opt, sched, use_cache, not self.stage_groups[si], f"  epoch {epoch + 1}/{stage.epochs}",
                stage.freeze_bn_stats,
            )  # fmt: skip
            with self.keeper.evaluated():  # the moving average's weights, when the stage keeps one
                val = validate()
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
            self.tracking.epoch(row, opt)
            stop = self.keeper.end_epoch(epoch, val)  # early stopping
            last = stop or epoch + 1 == stage.epochs
            note = self.keeper.finish(si, stage.name, epoch + 1, stop, self.stage_results) if last else ""
            if last or time.monotonic() - self.last_checkpoint >= self.checkpoint_every:
                self.save_checkpoint(si, stage.epochs if last else epoch + 1, opt, sched)
                self.last_checkpoint = time.monotonic()
            self.log(
                f"  epoch {epoch + 1}/{stage.epochs}: train_loss {train_loss:.4f}  val_loss {val['loss']:.4f}"
                f"  val_{metric} {val[metric]:.4f}  ({row['seconds']}s)"
            )
            if note:
                self.log(note)
            if stop:
                break

    def frozen_prefix(self, trainable: list[str], stage: StageCfg):
        """``(prefix, train set, val set)`` of the frozen-prefix cache for this stage, or None (it says
        why when it could apply): see :mod:`.prefixcache`."""
        from . import prefixcache

        a = self.task
        if a.batch_input is None or not self.feature_cache or self.recipe.compile or self.world.distributed:
            return None  # the task does not allow it; compiled and multi-process stages run the full model
        probe = next(iter(self.loader(a.dataset("train"), shuffle=False)), None)
        if probe is None:
            return None
        prefix, why = prefixcache.plan(self, trainable, stage.freeze_bn_stats, a.to_device(probe))
        train = prefixcache.cached_split(self, prefix, "train") if prefix else None
        val = prefixcache.cached_split(self, prefix, "val") if train is not None else None  # not after a refusal
        if prefix is None or train is None or val is None:
            self.log(f"  the frozen layers run every epoch: {why or 'their outputs would not fit the memory limit'}")
            return None
        return prefix, train, val

    def feature_key(self) -> str:
        """What makes cached features valid: the backbone's weights right now, its preprocessing,
        the recipe's data and the seed that drew it, and what the task loaded. A cache under any other key is ignored."""
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
            "seed": self.recipe.seed_for_data,  # what drew the data; the weights are hashed above
            "data_info": info,
            "labels": self.task.labels,
            "task_code": task_fingerprint(self.task),  # the plugin that computes them, edited or upgraded
        }
        digest.update(json.dumps(facts, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:24]

    def cached_features(self, si: int):
        """Backbone features of train and val, computed once per frozen backbone and kept on disk,
        keyed by everything that makes them valid (a stale or foreign file is recomputed, never used).
        They are also published by key to the user cache (:mod:`.featurecache`), where another run
        with the same key finds them (``zoo select``'s candidates and the fine-tune of its pick)."""
        from .featurecache import eviction_note, limit_bytes, publish, shared_path, touch

        limit = limit_bytes()  # a bad MODELZOO_FEATURE_CACHE_GB stops here, not after the feature pass
        key = self.feature_key()
        path = self.out / "cache" / f"features-{key}.pt"
        found = self.read_cached_features(key, [path, shared_path(key)]) if self.world.main else None
        if found is not None:
            touch(shared_path(key))
        if self.world.distributed:
            found = distributed.broadcast(found, self.world)
        if found is not None:
            return found["train"], found["train_y"], found["val"], found["val_y"]
        a = self.task
        d = {"key": key}
        for split in ("train", "val"):  # each process its share, then everyone has all, in order
            loader = self.loader(a.dataset(split), False)
            feats, ys = compute_features(self.model, loader, a, self.progress, f"feature pass ({split})")
            parts = self.gather([(feats, ys)])
            d[split], d[f"{split}_y"] = cat_nests([f for f, _ in parts]), cat_nests([y for _, y in parts])
        if self.world.main:
            atomic_write(path, lambda p: torch.save(d, p))
            evicted = publish(path, key, limit)
            if evicted:
                self.log(eviction_note(evicted, limit))
        return d["train"], d["train_y"], d["val"], d["val_y"]

    def read_cached_features(self, key: str, paths: list[Path]) -> dict[str, Any] | None:
        for found in paths:
            if not found.is_file():
                continue
            try:
                d = torch.load(found, map_location="cpu", weights_only=True)
                if isinstance(d, dict) and d.get("key") == key:
                    return d
            except FileNotFoundError:  # evicted from the shared cache by another run meanwhile
                continue
            except Exception as exc:
                self.log(f"warning: ignoring unreadable feature cache {found} ({type(exc).__name__}); recomputing")
        return None

    def train_epoch(
        self, loader, opt, sched, cached: bool, frozen: bool, desc: str, freeze_bn_stats: bool = False
    ) -> float:
        train_mode(self.model, frozen, freeze_bn_stats)
        a = self.task
        weights = loader.batch_sampler.weights
        total, count = 0.0, 0.0
        for step, (weight, batch) in enumerate(zip(weights, self.progress.track(loader, desc))):
            if cached:
                feats, y = batch
                loss, n = a.head_loss(self.model, move_to(feats, self.device), move_to(y, self.device)), nest_rows(y)
            else:
                loss, n = a.loss(self.forward, a.to_device(batch))
            if not torch.isfinite(loss.detach()).all():
                raise ZooError(
                    f"{desc.strip()} of stage {self.stage_label}, step {step + 1}: the loss is {loss.item()} (not finite);"
                    " the last good checkpoint is kept. Lower the lr (stages.N.lr or optimizer.lr) or check the data"
                    " for broken values, then start again or --resume"
                )
            opt.zero_grad(set_to_none=True)
            (loss * weight if weight != 1 else loss).backward()
            opt.step()
            sched.step()
            if self.keeper is not None:
                self.keeper.after_step()  # the moving average
            if weight:  # a process with an empty share ran one example with weight 0
                total += loss.item() * n
                count += n
        if self.world.distributed and not cached:
            total, count = distributed.sum_all([total, count], self.world)
        return total / max(1.0, count)

    def finish(self, seconds: float) -> Run:
        from ..model.folder import RUN_EXTRAS, save_model
        from ..util.plots import plot_curves

        a = self.task
        self.model.eval()
        final = self.evaluate(self.loader(a.dataset("val"), shuffle=False), final=True)
        metrics = {k: v for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        run = Run(
            path=self.out, recipe=self.recipe, metrics=metrics, history=self.history, model=self.model, metric=a.metric
        )
        if not self.world.main:  # rank 0 writes the run folder
            return run
        summary = {
            "task": self.model.task,
            "recipe": self.recipe.name,
            "metrics": metrics,
            **a.summary_extras(final),
            "dataset": {"name": a.dataset_name, **a.data_info},
            "device": str(self.device),
            "processes": self.world.size,
            "seconds": round(seconds, 1),
            "stages": self.stage_results,  # per stage: epochs run, best epoch, the weights kept
            **({"speed": self.speed.to_dict()} if self.speed else {}),
        }
        atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        save_model(self.model, self.out, extras=[*RUN_EXTRAS, "summary.json"])  # config.json records their digests
        try:
            plot_curves(self.history, self.out / "training_curves.png", a.metric)
            a.write_artifacts(final, self.out)
        except Exception as exc:
            self.log(f"warning: plots not written ({type(exc).__name__}: {exc})")
        return self.tracking.finish(run)  # the trackers get the final metrics, pictures and files


# -- public entry points ----------------------------------------------------------------------
def resolve_out(recipe: Recipe, out: str | Path | None) -> Path:
    """The run folder: ``out``, else ``runs/<recipe name>-<time>``."""
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
    force: bool = False,
) -> Run:
    """Fine-tune a recipe into a run folder; ``resume`` continues a killed run exactly.

    With ``resume`` alone, the run's own ``recipe.toml`` is used; with both, they must agree. A
    ``recipe.toml`` that differs from the one the last checkpoint was written with is refused, naming
    what changed, unless ``force``. Under ``torchrun`` every process calls this; rank 0 alone writes the run folder.
    """
    world = distributed.world_from_env()
    changed = None
    if resume is not None:
        recipe, changed = resumed_recipe(Path(resume), recipe, out, overrides, CHECKPOINT, force)
        out = Path(resume)
    elif recipe is None:
        raise ZooError("give a recipe (a zoo/*.toml file or a registered recipe name), or --resume RUN_DIR")
    else:
        recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    trainer = Trainer(recipe, Path("."), quiet=quiet, feature_cache=feature_cache, world=world)
    if changed:
        trainer.warn(changed)
    created = False
    if resume is None:  # every process must use rank 0's folder (a default name holds the time)
        out = Path(distributed.broadcast(str(resolve_out(recipe, out)), world))
        if world.main:
            created = check_new_out(out)
    trainer.out = Path(out)
    if not world.main:
        try:
            trainer.setup()
            return trainer.run()
        finally:
            distributed.close()
    try:
        trainer.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot create the run folder {trainer.out} ({exc.strerror or exc})") from None
    try:
        with RunLock(trainer.out):
            if resume is None:
                check_new_out(trainer.out)  # again, now that it is ours: nothing slipped in meanwhile
            trainer.setup()
            atomic_write_text(trainer.out / "recipe.toml", recipe.to_toml())
            return trainer.run()
    except KeyboardInterrupt as exc:
        # the finished frames of the interrupted loop hold its data-loader iterator; clearing them shuts
        # its worker processes down now, so none of them can print after the one line below
        traceback.clear_frames(exc.__traceback__)
        trainer.checkpoints.wait_quietly()
        raise Interrupted(
            f"interrupted; {trainer.out} keeps its last checkpoint: continue with zoo finetune --resume {trainer.out}"
            if (trainer.out / CHECKPOINT).exists()
            else "interrupted before the first checkpoint; nothing to resume"
        ) from None
    finally:
        if created and not (trainer.out / CHECKPOINT).exists() and not (trainer.out / "model.safetensors").exists():
            remove_if_unstarted(trainer.out)
        distributed.close()


class Interrupted(ZooError):
    """Ctrl-C or SIGTERM: a clean stop that says how to resume."""

    exit_code = 130
