"""What one machine can run: the ``--nproc`` launcher's capacity check, and the kernel's out-of-memory kills.

``--nproc`` far beyond the usable cores, or more workers than the available memory holds (each holds
at least what the launcher holds when it starts them), is refused before anything starts
(:func:`check_capacity`); :func:`oom_kills` tells the launcher whether the kernel's out-of-memory killer
ended a worker (:mod:`.launch`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ZooError

#: worker processes per usable core beyond which ``--nproc`` is refused: they would only wait for each other
PROCESSES_PER_CORE = 4


def check_capacity(nproc: int, cores: int | None = None, each: int | None = None, free: int | None = None) -> None:
    """Refuse up front an ``--nproc`` this machine cannot run: far more processes than usable cores
    (:data:`PROCESSES_PER_CORE` per core), or more memory than is available: each worker holds at least
    what this launcher holds now (Python, torch, the plugins), its model and data come on top.
    ``cores``, ``each`` and ``free`` (bytes) default to this machine's."""
    from ..util.cores import usable_cores

    cores = usable_cores() if cores is None else cores
    if nproc > PROCESSES_PER_CORE * cores:
        raise ZooError(
            f"--nproc {nproc} is far more worker processes than the {cores} usable CPU core{'s' if cores > 1 else ''}"
            f" here (beyond {PROCESSES_PER_CORE * cores} they only wait for each other, and each holds its own"
            f" copy of torch, the model and the data in memory); use --nproc {cores} (one per core) or fewer"
        )
    each = resident_bytes() if each is None else each
    free = available_bytes() if free is None else free
    if each and free is not None and nproc * each > free:
        fit = free // each
        fix = f"use --nproc {fit} or fewer, or free memory" if fit >= 1 else "free memory first"
        raise ZooError(
            f"--nproc {nproc} needs more than {_gb(nproc * each)} of memory (at least {_gb(each)} per worker"
            f" process before its model and data) but {_gb(free)} is available; {fix}"
        )


def _gb(size: float) -> str:
    return f"{size / 2**30:.1f} GB"


def resident_bytes() -> int | None:
    """This process's resident memory (``/proc/self/statm``), or None where there is none."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def available_bytes() -> int | None:
    """Memory available to new processes: ``MemAvailable``, capped by the limits of this process's cgroup
    and its ancestors (v2 ``memory.max`` - ``memory.current``, v1 ``memory.limit_in_bytes`` -
    ``memory.usage_in_bytes``); None where neither is known."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for mount, folder, limit, usage in _cgroup_memory_folders():
        for here in [folder, *folder.parents]:
            if here != mount and mount not in here.parents:
                break
            try:
                cap, used = (here / limit).read_text().strip(), int((here / usage).read_text())
                if cap.isdigit() and int(cap) < 2**60:  # v1 writes "unlimited" as a huge number, v2 as "max"
                    found.append(max(0, int(cap) - used))
            except (OSError, ValueError):
                continue
    return min(found) if found else None


def _cgroup_memory_folders() -> list[tuple[Path, Path, str, str]]:
    """This process's memory cgroup folders (v2, v1): the mount, the folder, its limit and usage files."""
    root, found = Path("/sys/fs/cgroup"), []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        if controllers == "":
            found.append((root, root / path.lstrip("/"), "memory.max", "memory.current"))
        elif "memory" in controllers.split(","):
            mount = root / "memory"
            found.append((mount, mount / path.lstrip("/"), "memory.limit_in_bytes", "memory.usage_in_bytes"))
    return found


def oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has ended since boot (``/proc/vmstat``,
    cgroup limits included), or None where it is not counted."""
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None
