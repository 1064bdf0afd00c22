"""The shared feature cache: frozen-backbone features kept in the user cache, found by their key.

The engine's head stage computes a frozen backbone's features once and keeps them in its run folder.
The same file is also published under ``cache_dir()/features/``, named by ``Trainer.feature_key()``
(the backbone's weights, its preprocessing, the recipe's data and seed, what the task loaded), so any
later run whose key is the same reuses it: ``zoo select`` extracts each candidate's features once,
and the fine-tune of the candidate it picks starts from them. A key that differs in anything names a
different file, so nothing stale is ever read. Files are hard links where the file system allows
(no second copy on disk); deleting the folder only costs the time to recompute.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .fsutil import atomic_write
from .paths import cache_dir


def shared_path(key: str) -> Path:
    """Where the features with this key live in the user cache (they may not exist)."""
    return cache_dir() / "features" / f"features-{key}.pt"


def publish(path: Path, key: str) -> None:
    """Make the run folder's feature file ``path`` findable by ``key`` (replacing an unreadable file of
    that name, which the engine just recomputed); an unwritable cache only costs speed."""
    target = shared_path(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            os.link(path, tmp)
            os.replace(tmp, target)
        except OSError:
            tmp.unlink(missing_ok=True)
            atomic_write(target, lambda p: shutil.copyfile(path, p))
    except OSError:
        pass
