"""The run folder of ``zoo finetune``: who may write it, and what may already be in it.

* **A lock.** A run holds an exclusive POSIX record lock (``lockf``) on ``<run>/.zoo-lock`` while it
  lives; a second ``zoo finetune`` into the same folder (or a ``--resume`` of a run that is still
  going) is refused with the holder's pid. The kernel drops the lock when the process dies, ``kill
  -9`` included, and, unlike ``flock``, a record lock is not inherited by forked DataLoader workers,
  which may outlive a killed run by a moment: a crashed run never leaves the folder locked.
* **No surprises in ``--out``.** A new run starts only in a folder that does not exist or is empty: a
  folder with someone's files is never written into, and one with a run says to ``--resume`` it.
* **No litter.** A new run that fails before its first checkpoint removes the folder it created.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ZooError

LOCK = ".zoo-lock"


def check_new_out(out: Path) -> bool:
    """Refuse an ``--out`` a new run must not write into; returns True when the folder does not exist yet."""
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == out else f"sits under {parent}, which is a file"
            raise ZooError(f"--out {out} {what}; give a folder path")
    if not out.exists():
        return True
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if (out / "checkpoint" / "last.pt").exists() or (out / "model.safetensors").exists():
        raise ZooError(f"{out} already holds a run; continue it with --resume {out} or pick another --out")
    if entries:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        hint = f"; --resume {out} continues the run begun there" if "recipe.toml" in entries else ""
        raise ZooError(f"--out {out} is not empty (it holds {shown}); pick a new folder or empty it{hint}")
    return False


#: run folders this process holds (record locks do not conflict within one process)
_HELD: dict[str, str] = {}


class RunLock:
    """An exclusive, crash-safe lock on a run folder (``with RunLock(folder): ...``).

    ``zoo push`` takes it too (``for_push=True``), so a run is never published while it trains and a
    run never starts training while it is being published. A push of a folder it cannot write (a
    read-only copy) takes a shared lock on an existing lock file, or none where there is none: nothing
    can train in such a folder either."""

    def __init__(self, folder: Path, for_push: bool = False) -> None:
        self.folder = folder
        self.path = folder / LOCK
        self.key = str(folder.resolve())
        self.fd: int | None = None
        self.for_push = for_push

    def _refusal(self, holder: str) -> ZooError:
        pid, _, what = holder.partition(" ")
        if self.for_push:
            if what == "push":
                return ZooError(f"{self.folder} is being pushed by pid {pid}; wait for that push to finish")
            return ZooError(
                f"{self.folder} is being trained by pid {pid} (zoo finetune); wait for it to finish, or push a"
                " finished run"
            )
        who = "zoo push" if what == "push" else "zoo finetune"
        return ZooError(
            f"{self.folder} is in use by another {who} (pid {pid}); wait for it to finish or pick another --out"
        )

    def _open(self) -> tuple[int, bool] | None:
        """The lock file's descriptor and whether it is writable (None: a push of a folder without one that
        is no run folder, a pulled model, or that it cannot write: nothing trains there)."""
        create = os.O_CREAT if not self.for_push or (self.folder / "recipe.toml").is_file() else 0
        try:
            return os.open(self.path, os.O_RDWR | create | os.O_CLOEXEC, 0o644), True
        except OSError:
            if not self.for_push:
                raise
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC), False
        except FileNotFoundError:
            return None

    def __enter__(self) -> RunLock:
        import fcntl

        if self.key in _HELD:
            raise self._refusal(f"{os.getpid()} {_HELD[self.key]}".strip())
        opened = self._open()
        if opened is None:
            return self
        self.fd, writable = opened
        try:
            fcntl.lockf(self.fd, (fcntl.LOCK_EX if writable else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            self.fd = None
            raise self._refusal(holder) from None
        if writable:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}{' push' if self.for_push else ''}\n".encode(), 0)
        _HELD[self.key] = "push" if self.for_push else ""
        return self

    def __exit__(self, *_: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None
            _HELD.pop(self.key, None)


def remove_if_unstarted(folder: Path) -> None:
    """After a failed new run: remove the folder it created, unless a checkpoint made it worth keeping."""
    if (folder / "checkpoint" / "last.pt").exists() or (folder / "model.safetensors").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
