"""Frozen features per candidate, computed by the engine's own :class:`~modelzoo.engine.trainer.Trainer` into the
shared feature cache (so the fine-tune of the pick starts from them), and the entry features beside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..engine.recipe import Recipe
from ..errors import ZooError
from ..util.nest import nest_rows
from .candidates import _slug
from .entry_features import Entry, capture, entry_point, forward_until, stack
from .results import Candidate, Scored, Skipped, _dur

#: what ``--prior`` ranks by unless told otherwise: a key of ``PretrainedTag.metrics``


# -- features ---------------------------------------------------------------------------------------
def extract(
    recipe: Recipe, cand: Candidate, budget_left: float | None, workdir: Path, log: Callable[[str], None]
) -> Scored:
    """Set the candidate up exactly as ``zoo finetune`` would, then take its train features from the
    shared cache or compute them (all of train and val, as the head stage needs), unless the measured
    estimate exceeds ``budget_left`` seconds."""
    from torch.utils.data import Subset

    from ..engine.featurecache import shared_path
    from ..engine.trainer import Trainer, compute_features
    from .compare import count_flops

    trainer = Trainer(recipe, workdir, quiet=True)
    try:
        trainer.setup()
    except ZooError as exc:
        raise Skipped(f"cannot set it up ({exc})") from None
    task, model = trainer.task, trainer.model
    if not task.feature_cache:
        raise Skipped(f"task {task.name} caches no features for it with head {recipe.model.head!r}; try another --head")
    key = trainer.feature_key()
    cached = shared_path(key).is_file()
    train = task.dataset("train")
    total = len(train) + len(task.dataset("val"))
    model.backbone.eval()
    macs = None
    try:
        batch = next(iter(trainer.loader(Subset(train, [0, 1] if len(train) > 1 else [0]), shuffle=False)))
        macs = count_flops(task.features, model, task.to_device(batch)) // 2 // min(2, len(train))
    except Exception as exc:  # the plot then lacks this point; the ranking does not need it
        log(f"  note: MACs of {cand.label} not counted ({type(exc).__name__}: {str(exc)[:100]})")
    estimate = None
    if not cached:
        bs = recipe.data.batch_size
        compute_features(model, trainer.loader(Subset(train, range(min(len(train), 8))), False), task)  # warm-up
        probe = list(range(min(len(train), 2 * bs)))
        start = time.perf_counter()
        compute_features(model, trainer.loader(Subset(train, probe), False), task)
        estimate = (time.perf_counter() - start) / len(probe) * total
        if budget_left is not None and estimate > budget_left:
            raise Skipped(
                f"its features ({total} examples) need ~{_dur(estimate)}, {_dur(max(0.0, budget_left))} of the"
                " budget is left; raise --budget or lower data.train_limit",
                need=estimate,
            )
        log(f"  {cand.label}: features of {total} examples, ~{_dur(estimate)}")
    start = time.perf_counter()
    entry = _entry_point(model, recipe, cand.label, log) if "entry" in task.select_views else None
    if entry is None:
        feats, targets, _, _ = trainer.cached_features(0)
        entry_feats = None
    else:
        with capture(entry) as seen:  # the entry features come with the feature pass, when there is one
            feats, targets, _, _ = trainer.cached_features(0)
        entry_feats = cached_entry_features(trainer, key, entry, seen, nest_rows(targets), total, log)
    seconds = 0.0 if cached else time.perf_counter() - start
    return Scored(
        candidate=cand,
        feature_key=key,
        params=sum(p.numel() for p in model.backbone.parameters()),
        macs=macs,
        estimate_seconds=estimate,
        feature_seconds=seconds,
        from_cache=cached,
        num_train=nest_rows(targets),
        dataset=task.dataset_name,
        feats=feats,
        targets=targets,
        entry_feats=entry_feats,
        entry_group=entry.group if entry_feats is not None else None,
        model=model,
    )


def _entry_point(model, recipe: Recipe, label: str, log: Callable[[str], None]) -> Entry | None:
    """The entry point, or None: the entry scores are an extra view, so a backbone whose layer groups
    cannot say where training starts loses them (with a note), never the selection."""
    try:
        return entry_point(model, recipe)
    except ZooError:  # the recipe's stages do not fit this backbone's groups: the fine-tune says so itself
        return None
    except Exception as exc:  # a plugin's layer_groups() that fails here fails the fine-tune too, with its own error
        log(f"  note: no entry features for {label} ({type(exc).__name__}: {str(exc)[:100]})")
        return None


def entry_feature_key(key: str, group: str) -> str:
    """The cache key of the entry features (and their scores) of the features cached under ``key``."""
    return f"{key}-entry-{_slug(group)}"


def cached_entry_features(
    trainer, key: str, entry: Entry, seen: list, rows: int, total: int, log: Callable[[str], None]
) -> torch.Tensor | None:
    """The entry features of the train split: from the user cache, from what the feature pass just
    captured, or from a pass over the train split that stops at the entry module; then cached beside
    the final features (which the publishing never evicts)."""
    from ..engine.featurecache import eviction_note, limit_bytes, publish, shared_path, touch
    from ..util.files import atomic_write

    entry_key = entry_feature_key(key, entry.group)
    found = trainer.read_cached_features(entry_key, [shared_path(entry_key)])
    if found is not None and isinstance(found.get("train"), torch.Tensor) and len(found["train"]) == rows:
        touch(shared_path(entry_key))
        return found["train"]
    feats = stack(seen, rows, total)
    if feats is None and not seen:  # the final features came from the cache: a short pass for these
        try:
            feats = _entry_pass(trainer, entry, rows)
        except Exception as exc:  # an extra view: losing it must not lose the selection
            log(f"  note: no entry features ({type(exc).__name__}: {str(exc)[:100]})")
            return None
    if feats is None:
        return None
    path = trainer.out / "cache" / f"features-{entry_key}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: torch.save({"key": entry_key, "train": feats}, p))
    limit = limit_bytes()
    evicted = publish(path, entry_key, limit, also_keep=(shared_path(key),))
    if evicted:
        log(f"  {eviction_note(evicted, limit)}")
    return feats


def _entry_pass(trainer, entry: Entry, rows: int) -> torch.Tensor | None:
    """The train split through the backbone up to the entry module, and no further."""
    task, model = trainer.task, trainer.model
    model.backbone.eval()
    with torch.no_grad(), capture(entry, stop=True) as seen:
        for batch in trainer.loader(task.dataset("train"), False):
            forward_until(lambda: task.features(model, task.to_device(batch)))  # noqa: B023 (called at once)
            if not seen or seen[-1] is None:
                return None  # the module was not called, or gave no map or vector: nothing to score
    return stack(seen, rows, rows)
