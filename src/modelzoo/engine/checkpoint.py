"""Checkpoints written in the background, so an epoch never waits for the disk.

Saving model + optimizer state after an epoch (atomically, fsync'd) is what makes ``--resume`` after
``kill -9`` exact, but it costs time: the engine checkpoints every epoch that ends at least
``CHECKPOINT_SECONDS`` after the previous checkpoint, and the last epoch of every stage. The state is snapshotted
(copied to CPU) on the training thread at the end of the epoch, then serialised and synced by one
writer thread while the next epoch trains. At most one write is in flight; the next snapshot, the end
of the run, or an error waits for it. Files that must stay consistent with the checkpoint (the
metrics log) are written by the same thread after it, so the run folder never claims progress the
checkpoint does not hold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch


def snapshot(obj: Any) -> Any:
    """A deep copy of ``obj`` whose tensors are detached CPU copies (state dicts, nested dicts/lists)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return obj


class BackgroundWriter:
    """Runs write jobs one at a time on a non-daemon thread (the interpreter finishes a write before exiting)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Wait for the previous job (re-raising its error), then start ``job``."""
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(job,), name="modelzoo-checkpoint")
        self._thread.start()

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # handed to the training thread by wait()
            self._error = exc

    def wait_quietly(self) -> None:
        """Let the write in flight land (an interrupted run keeps its newest checkpoint); errors are dropped."""
        try:
            self.wait()
        except BaseException:
            pass

    def wait(self) -> None:
        """Block until the job in flight has landed; re-raise its error on the caller's thread."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
