"""What a tracker is: :class:`TrackerSpec` (plain data a plugin's hook returns) and the :class:`Tracker`
interface the session calls, with the facts of the run it is handed (:class:`RunInfo`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: what a run folder holds that no tracker uploads: the checkpoint (the whole optimizer state), cached
#: features, the lock, and the trackers' own files
SKIPPED = ("checkpoint", "cache", "tensorboard", ".zoo-lock", "tracking.json")


@dataclass
class TrackerSpec:
    """A tracker a plugin provides (``@hookimpl def modelzoo_trackers(): return [TrackerSpec(...)]``).

    Plain data: ``builder`` is a ``"module:Class"`` path to a :class:`Tracker` subclass, imported only
    when a run asks for the tracker by ``name``, so a tracker's library (and its import errors) costs
    nothing to a run that does not use it."""

    name: str
    builder: str
    description: str = ""
    plugin: str = ""


@dataclass
class RunInfo:
    """The run a tracker logs: its folder, names and the recipe's values as flat ``hparams``."""

    folder: Path
    name: str
    recipe: str
    task: str
    metric: str
    hparams: dict[str, Any] = field(default_factory=dict)


class Tracker:
    """One experiment tracker. The session calls these in order (rank 0 only); anything a method
    raises turns into one warning line and the tracker is dropped for the rest of the run.

    ``step`` is the run's epoch count so far (1 for the first epoch of the first stage), the same
    after a resume. Override what your tracker supports; the defaults do nothing."""

    name: str = ""

    def start(self, run: RunInfo, resume_id: str | None = None) -> str | None:
        """Open (or, with ``resume_id``, reopen) the tracker's run; return its id, kept in the run folder's
        ``tracking.json`` so ``zoo finetune --resume`` hands it back."""
        return None

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """One epoch's numbers (``train_loss``, ``val_loss``, ``val_<metric>``, ``lr``, ``lr/<group>``...)."""

    def log_image(self, name: str, image: Any, step: int) -> None:
        """A picture: a PNG file path, or a matplotlib figure."""

    def log_hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """The run's settings with its final metrics (called once, at the finish)."""

    def log_artifacts(self, folder: Path) -> None:
        """The finished run folder (see :func:`run_files` for what to upload)."""

    def finish(self, status: str = "FINISHED") -> None:
        """Close the tracker's run: ``FINISHED``, ``FAILED`` or ``KILLED``."""


def run_files(folder: Path) -> Iterator[tuple[Path, str]]:
    """``(file, path relative to folder)`` of what a tracker uploads from a run folder: everything but
    :data:`SKIPPED` and hidden files, in a stable order."""
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (rel_root == Path(".") and d in SKIPPED))
        for name in sorted(files):
            if name.startswith(".") or (rel_root == Path(".") and name in SKIPPED):
                continue
            yield Path(root) / name, (rel_root / name).as_posix()


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested recipe dict as ``{"model.backbone": ..., "stages.0.lr": ...}`` (lists indexed)."""
    out: dict[str, Any] = {}
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else None
    if items is None:
        return {prefix: data} if prefix else {}
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, (dict, list)) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out
