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
_HELD: set[str] = set()


class RunLock:
    """An exclusive, crash-safe lock on a run folder (``with RunLock(folder): ...``)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self.key = str(folder.resolve())
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        if self.key in _HELD:
            raise ZooError(
                f"{self.path.parent} is in use by another zoo finetune (pid {os.getpid()}); wait for it to finish or"
                " pick another --out"
            )
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            self.fd = None
            raise ZooError(
                f"{self.path.parent} is in use by another zoo finetune (pid {holder}); wait for it to finish or"
                " pick another --out"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.add(self.key)
        return self

    def __exit__(self, *_: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None
            _HELD.discard(self.key)


def remove_if_unstarted(folder: Path) -> None:
    """After a failed new run: remove the folder it created, unless a checkpoint made it worth keeping."""
    if (folder / "checkpoint" / "last.pt").exists() or (folder / "model.safetensors").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
