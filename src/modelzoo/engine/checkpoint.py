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

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import ZooError
from ..util.files import DiskFull, atomic_write
from .speed import adopt


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
        thread = threading.Thread(target=self._run, args=(job,), name="modelzoo-checkpoint")
        try:
            thread.start()
        except RuntimeError:  # no thread may start (a task limit reached): write in the foreground
            job()
            return
        self._thread = thread

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


# -- the engine's checkpoint ----------------------------------------------------------------------
def save_checkpoint(trainer: Any, stage: int, epoch: int, opt, sched) -> None:
    """Snapshot ``trainer``'s state now (model, optimizer, schedule, progress, history, RNG, the stage's
    keeper: moving average, best and starting weights; the speed settings); write it, then
    metrics.jsonl, while the next epoch trains. Rank 0 only."""
    if not trainer.world.main:
        return
    keeper, speed = trainer.keeper, trainer.speed
    state = snapshot(
        {
            "model": trainer.model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "progress": {"stage": stage, "epoch": epoch},
            "history": json.dumps(trainer.history),
            "stage_results": json.dumps(trainer.stage_results),
            "rng": {"torch": torch.get_rng_state()},
            **({"stage_state": keeper.state_dict()} if keeper is not None else {}),
            **({"speed": {"channels_last": speed.channels_last, "autocast": speed.autocast}} if speed else {}),
            # what --resume compares recipe.toml with (an edit after a kill is refused, or named with --force)
            "recipe": json.dumps(trainer.recipe.to_dict(), sort_keys=True, default=str),
        }
    )
    history, out, path = list(trainer.history), trainer.out, trainer.out / trainer.checkpoint_file

    def write() -> None:
        state[DIGEST] = state_digest(state)  # on the writer thread: hashing never delays an epoch
        try:
            atomic_write(path, lambda p: torch.save(state, p))
            trainer.write_metrics(history)
        except (OSError, DiskFull) as exc:  # a full or failing disk: the previous checkpoint is still whole
            reason = exc.reason if isinstance(exc, DiskFull) else exc.strerror or exc
            raise ZooError(
                f"cannot write the checkpoint in {out} ({reason}); the previous checkpoint is"
                f" intact: free some space, then continue with zoo finetune --resume {out}"
            ) from None

    trainer.checkpoints.submit(write)


def load_checkpoint(trainer: Any) -> dict[str, Any] | None:
    """Restore ``trainer`` from its run folder's checkpoint (None when there is none); the stage's keeper
    state is left in the returned dict for the stage to load."""
    path = trainer.out / trainer.checkpoint_file
    if not path.is_file():
        return None
    state = read_checkpoint(path)
    try:
        trainer.model.load_state_dict(state["model"])
        trainer.history = json.loads(state["history"])
        trainer.stage_results = json.loads(state.get("stage_results", "[]"))
        progress = state["progress"]
        if not (isinstance(progress["stage"], int) and isinstance(progress["epoch"], int)):
            raise TypeError("progress")
        torch.set_rng_state(state["rng"]["torch"])
        speed = state.get("speed")
        if speed and trainer.speed:  # the layout and precision the run started with, whatever is measured now
            adopt(trainer, bool(speed["channels_last"]), speed.get("autocast"))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ZooError(
            f"checkpoint {path} does not fit this run ({type(exc).__name__}: {detail}); delete it to restart the run"
        ) from None
    return state


# -- the checkpoint's digest --------------------------------------------------------------------------
#: the key under which a checkpoint carries the sha256 of everything else it holds
DIGEST = "sha256"


def state_digest(state: dict[str, Any]) -> str:
    """The sha256 of a checkpoint's content (every tensor's dtype, shape and bytes, every other value's
    repr, in the order they were saved), ``sha256`` itself excepted: the file carries its own digest."""
    digest = hashlib.sha256()

    def feed(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{t.dtype}{tuple(obj.shape)}:".encode())
            digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(obj, dict):
            digest.update(f"D{len(obj)}:".encode())
            for key, value in obj.items():
                digest.update(f"{type(key).__name__}{key!r}=".encode())
                feed(value)
        elif isinstance(obj, (list, tuple)):
            digest.update(f"{type(obj).__name__}{len(obj)}:".encode())
            for value in obj:
                feed(value)
        else:
            digest.update(f"{type(obj).__name__}{obj!r};".encode())

    feed({k: v for k, v in state.items() if k != DIGEST})
    return digest.hexdigest()


def read_checkpoint(path: Path, verify: bool = True) -> dict[str, Any]:
    """A checkpoint file's state, its digest checked (a flipped bit anywhere is one line, never resumed
    from); checkpoints written before digests were recorded load unchecked."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=not verify)
    except Exception as exc:
        raise ZooError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to restart the run"
        ) from None
    if not isinstance(state, dict):
        raise ZooError(f"checkpoint {path} does not hold a modelzoo checkpoint; delete it to restart the run")
    if verify and DIGEST in state and state[DIGEST] != state_digest(state):
        run = path.parent.parent
        raise ZooError(
            f"checkpoint {path} is damaged (its content no longer matches the sha256 recorded when it was written);"
            f" it is never resumed from: delete it and re-run (zoo finetune --resume {run} then starts over)"
        )
    return state


def recorded_recipe(path: Path) -> dict[str, Any] | None:
    """The recipe a checkpoint was written with (read cheaply, memory-mapped; None for older checkpoints)."""
    if not path.is_file():
        return None
    raw = read_checkpoint(path, verify=False).get("recipe")
    try:
        recipe = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        recipe = None
    if not isinstance(recipe, dict):
        read_checkpoint(path)  # a recipe field that is not JSON: the digest says whether the file is damaged
        return None
    return recipe
