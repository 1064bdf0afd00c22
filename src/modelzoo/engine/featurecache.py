"""The shared feature cache: frozen-backbone features kept in the user cache, found by their key.

The engine's head stage computes a frozen backbone's features once and keeps them in its run folder.
The same file is also published under ``cache_dir()/features/``, named by ``Trainer.feature_key()``
(the backbone's weights, its preprocessing, the recipe's data and seed, what the task loaded), so any
later run whose key is the same reuses it: ``zoo select`` extracts each candidate's features once,
and the fine-tune of the candidate it picks starts from them. A key that differs in anything names a
different file, so nothing stale is ever read. Files are hard links where the file system allows
(no second copy on disk); deleting the folder only costs the time to recompute.

The folder is capped (``MODELZOO_FEATURE_CACHE_GB``, default 10 GB): each publish removes the least
recently used files beyond the cap (a hit counts as a use), and temporary files a killed copy left.
A run folder keeps its own link to its features, so eviction never takes them from a run that is
resuming (and the disk space they take is freed when that run folder is deleted).

What is cached per example is a *nest* (:mod:`modelzoo.util.nest`): a tensor, or a tuple / list /
dict of nests (a pyramid of maps, say), every tensor with one row per example;
:func:`compute_features` checks what ``Task.features`` returns, and :class:`FeatureSet` batches
cached features and targets by index (one gather per batch, no per-example copies).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import ZooError
from ..util.files import atomic_write
from ..util.nest import cat_nests, check_nest, index_nest, leaves, map_nest, nest_rows
from ..util.paths import cache_dir

LIMIT_ENV = "MODELZOO_FEATURE_CACHE_GB"
DEFAULT_LIMIT_GB = 10.0
STALE_TMP_SECONDS = 3600


class FeatureSet(Dataset):
    """Cached features and targets (nests) as a dataset: items are indices, :meth:`collate` gathers a batch."""

    def __init__(self, feats: Any, targets: Any) -> None:
        self.feats, self.targets = feats, targets
        self.rows = nest_rows(targets)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, indices: list[int]) -> tuple[Any, Any]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return index_nest(self.feats, index), index_nest(self.targets, index)


@torch.no_grad()
def compute_features(model: Any, loader: Any, task: Any, progress: Any = False, desc: str = "features") -> tuple:
    """Backbone features and targets of every example (``Task.features`` per batch, the backbone in
    eval mode), each a nest joined over the batches; a wrong return is one line blaming the task plugin."""
    from .progress import Progress

    progress = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))
    model.backbone.eval()
    feats, targets = [], []
    for batch in progress.track(loader, desc):
        f, y = checked_features(task, task.features(model, task.to_device(batch)))
        feats.append(map_nest(lambda t: (t.float() if t.is_floating_point() else t).cpu(), f))
        targets.append(map_nest(lambda t: t.cpu(), y))
    return cat_nests(feats), cat_nests(targets)


def checked_features(task: Any, returned: Any) -> tuple[Any, Any]:
    """``Task.features``' ``(features, targets)``, checked to be nests of tensors with one row per
    example (targets that are not tensors yet are made tensors); ZooError naming the plugin otherwise."""
    problem = "" if isinstance(returned, (tuple, list)) and len(returned) == 2 else "not a (features, targets) pair"
    if not problem:
        f, y = returned
        try:
            rows = check_nest(f)
        except ValueError as exc:
            problem = f"features: {exc}"
        else:
            try:
                y = y if leaves_or_none(y) else torch.as_tensor(y)
                check_nest(y, rows)
            except (ValueError, TypeError, RuntimeError) as exc:
                problem = f"targets: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if problem:
        raise ZooError(
            f"task {task.name!r} (plugin {getattr(task.spec, 'plugin', None) or '?'}): Task.features returned"
            f" {type(returned).__name__} ({problem}); it must return (features, targets), each a tensor or a"
            " tuple/list/dict of tensors with one row per example (docs/plugins.md); fix that task plugin"
        )
    return f, y


def leaves_or_none(nest: Any) -> list[torch.Tensor] | None:
    try:
        return leaves(nest)
    except TypeError:
        return None


# -- the shared folder ---------------------------------------------------------------------------
def limit_bytes() -> int:
    """The cache's cap in bytes, from ``MODELZOO_FEATURE_CACHE_GB`` (0: keep nothing beyond the newest)."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    try:
        gb = float(raw) if raw else DEFAULT_LIMIT_GB
    except ValueError:
        gb = -1.0
    if not gb >= 0 or gb == float("inf"):
        raise ZooError(f"{LIMIT_ENV}={raw!r:.40} is not a size in GB; set it to a number such as 10, or unset it")
    return int(gb * 1e9)


def touch(path: Path) -> None:
    """Mark a cached file as just used (eviction goes by modification time)."""
    try:
        os.utime(path)
    except OSError:
        pass


def evict(keep: Path, limit: int, also_keep: tuple[Path, ...] = ()) -> list[Path]:
    """Remove the least recently used feature files until the folder holds at most ``limit`` bytes;
    ``keep`` (the file just published) and ``also_keep`` (files the caller still needs, such as the
    features an entry-feature file belongs to) stay whatever their size. Returns what was removed."""
    for tmp in keep.parent.glob(".features-*.tmp"):  # a copy killed midway; a live one is seconds old
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()
        except OSError:
            pass
    files = []
    for path in keep.parent.glob("features-*.pt"):
        try:
            st = path.stat()
        except OSError:  # removed by another process meanwhile
            continue
        files.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in files)
    removed = []
    for _, size, path in sorted(files):
        if total <= limit:
            break
        if path == keep or path in also_keep:
            continue
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        removed.append(path)
    return removed


def eviction_note(evicted: list[Path], limit: int) -> str:
    """The one line a run logs when publishing its features evicted others."""
    return (
        f"feature cache: removed {len(evicted)} least recently used file(s) to stay under"
        f" {limit / 1e9:g} GB (MODELZOO_FEATURE_CACHE_GB)"
    )


def shared_path(key: str) -> Path:
    """Where the features with this key live in the user cache (they may not exist)."""
    return cache_dir() / "features" / f"features-{key}.pt"


def publish(path: Path, key: str, limit: int, also_keep: tuple[Path, ...] = ()) -> list[Path]:
    """Make the run folder's feature file ``path`` findable by ``key`` (replacing an unreadable file of
    that name, which the engine just recomputed), then keep the folder under ``limit`` bytes
    (:func:`limit_bytes`, read before the feature pass); returns the files evicted. An unwritable
    cache only costs speed."""
    target = shared_path(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            os.link(path, tmp)
            os.replace(tmp, target)
            tmp.unlink(missing_ok=True)  # rename() does nothing when both are links to one file already
        except OSError:
            tmp.unlink(missing_ok=True)
            atomic_write(target, lambda p: shutil.copyfile(path, p))
    except OSError:
        return []
    return evict(target, limit, also_keep)
