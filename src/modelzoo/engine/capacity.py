"""What one machine can run: the ``--nproc`` launcher's capacity check, the kernel's out-of-memory kills,
and the limits on how many threads may start.

``--nproc`` far beyond the usable cores, more workers than the available memory holds (each holds at
least what the launcher holds when it starts them), or more threads than the task limit lets start
(a container's ``--pids-limit``, a cgroup's ``pids.max``, ``ulimit -u``) is refused before anything
starts (:func:`check_capacity`). :func:`oom_kills` tells the launcher whether the kernel's out-of-memory
killer ended a worker, :func:`task_limit_hits` whether a thread or process could not start (:mod:`.launch`):
gloo starts its threads while a worker joins the process group, and when one cannot start, torch
aborts (``terminate called without an active exception``, ``SIGABRT``) or hangs in the half-built
process group, depending on which thread failed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from ..errors import ZooError

#: worker processes per usable core beyond which ``--nproc`` is refused: they would only wait for each other
PROCESSES_PER_CORE = 4
#: threads a worker starts besides its OpenMP threads (the main one counted there): gloo's TCP loop and
#: its process group's two work loops; torchrun's agent and store, and the TaskWatch, add LAUNCHER_TASKS
#: to the launcher's. Measured with 1 OpenMP thread each, a worker ran 4-5 threads and the launcher 6
WORKER_TASKS, LAUNCHER_TASKS = 3, 4


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
    _check_tasks(nproc, cores)
    each = resident_bytes() if each is None else each
    free = available_bytes() if free is None else free
    if each and free is not None and nproc * each > free:
        fit = free // each
        fix = f"use --nproc {fit} or fewer, or free memory" if fit >= 1 else "free memory first"
        raise ZooError(
            f"--nproc {nproc} needs more than {_gb(nproc * each)} of memory (at least {_gb(each)} per worker"
            f" process before its model and data) but {_gb(free)} is available; {fix}"
        )


def _check_tasks(nproc: int, cores: int, limit: tuple[int, int, str] | None = None) -> None:
    """Refuse an ``--nproc`` whose workers' threads the task limit cannot let start (``limit``:
    :func:`task_limit`'s, by default this process's)."""
    limit = task_limit() if limit is None else limit
    if limit is None:
        return
    from ..util.cores import worker_threads

    most, used, where = limit
    threads = worker_threads(nproc, cores)  # what launch_threads gives each worker
    need, free = nproc * (threads + WORKER_TASKS) + LAUNCHER_TASKS, most - used
    if need > free:
        fit = max(0, (free - LAUNCHER_TASKS) // (threads + WORKER_TASKS))
        fix = f"use --nproc {fit}" if 1 <= fit < nproc else "run without --nproc"
        raise ZooError(
            f"--nproc {nproc} starts at least {need} threads, but only {max(0, free)} more may start here ({where},"
            f" {used} in use): raise that limit (a container's --pids-limit, ulimit -u) or {fix}"
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
    for mount, folder, v2 in _cgroup_folders("memory"):
        limit, usage = ("memory.max", "memory.current") if v2 else ("memory.limit_in_bytes", "memory.usage_in_bytes")
        for here in _up_to(mount, folder):
            try:
                cap, used = (here / limit).read_text().strip(), int((here / usage).read_text())
                if cap.isdigit() and int(cap) < 2**60:  # v1 writes "unlimited" as a huge number, v2 as "max"
                    found.append(max(0, int(cap) - used))
            except (OSError, ValueError):
                continue
    return min(found) if found else None


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


def _cgroup_folders(controller: str) -> list[tuple[Path, Path, bool]]:
    """(mount, folder, v2?) of this process's cgroups that may hold ``controller``'s files: its v2
    cgroup and its v1 ``controller`` cgroup."""
    root, found = Path("/sys/fs/cgroup"), []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        if controllers == "":
            found.append((root, root / path.lstrip("/"), True))
        elif controller in controllers.split(","):
            mount = root / controller
            found.append((mount, mount / path.lstrip("/"), False))
    return found


def _up_to(mount: Path, folder: Path) -> list[Path]:
    """``folder`` and its ancestors up to the cgroup ``mount`` (each may set a limit)."""
    return [here for here in [folder, *folder.parents] if here == mount or mount in here.parents]


def _pids_folders() -> list[tuple[Path, Path]]:
    """(mount, folder) of this process's pids cgroup (v1 or v2) and each ancestor that sets a limit."""
    return [
        (mount, here)
        for mount, folder, _ in _cgroup_folders("pids")
        for here in _up_to(mount, folder)
        if (here / "pids.max").is_file()
    ]


def task_limit() -> tuple[int, int, str] | None:
    """The tightest limit on tasks (processes and threads) this process's children may start:
    (limit, tasks in use under it, where it is set), from the pids cgroups of this process and its
    ancestors (a container's ``--pids-limit``) and, for a user other than root, ``ulimit -u``
    (``RLIMIT_NPROC``, which counts the user's threads everywhere); None where nothing limits them."""
    import resource

    found: list[tuple[int, int, str]] = []
    for mount, here in _pids_folders():
        try:
            cap, used = (here / "pids.max").read_text().strip(), int((here / "pids.current").read_text())
        except (OSError, ValueError):
            continue
        if cap.isdigit():
            name = "/" + str(here.relative_to(mount)).removeprefix(".")
            found.append((int(cap), used, f"pids.max {cap} of cgroup {name.rstrip('/') or '/'}"))
    soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY:  # root is not held to it
        found.append((soft, _user_tasks(os.getuid()), f"ulimit -u {soft}"))
    return min(found, key=lambda f: f[0] - f[1]) if found else None


def _user_tasks(uid: int) -> int:
    """Threads of every process of user ``uid`` (what ``RLIMIT_NPROC`` counts)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[1]) == uid:
                total += int(fields["Threads"])
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return total


def task_limit_hits() -> int | None:
    """How often a process or thread of this cgroup (or its ancestors) could not start because of a
    pids limit (the ``max`` counts of ``pids.events``), or None where nothing counts it."""
    counts = []
    for _, here in _pids_folders():
        try:
            events = (here / "pids.events").read_text().split()
            counts.append(int(events[events.index("max") + 1]))
        except (OSError, ValueError, IndexError):
            continue
    return sum(counts) if counts else None


class TaskWatch:
    """While the ``--nproc`` workers run: watches :func:`task_limit_hits`. Once it rose (a thread or
    process of this cgroup could not start), the workers get ``grace`` seconds to fail by themselves
    (a gloo thread that could not start aborts its worker, which the launcher reports); a run still
    going then is stopped (``SIGKILL`` to the launcher's children), for a worker can also hang for good
    in its half-built process group. :meth:`cause` words what happened for the failure line. The count
    is the cgroup's: another program of the same container that hit the limit counts too (once the
    limit is reached, the run's next thread would fail as well)."""

    def __init__(self, grace: float = 20.0, poll: float = 0.5) -> None:
        self.start, self.hits, self.stopped = task_limit_hits(), 0, False
        self.grace, self.poll = grace, poll
        self._done = threading.Event()
        self._thread = None
        if self.start is not None:  # started before the workers, while threads can still start
            self._thread = threading.Thread(target=self._watch, name="zoo-task-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        seen = None
        while not self._done.wait(self.poll):
            now = task_limit_hits()
            if now is None or now <= self.start:  # (the watch runs only where start was counted)
                continue
            self.hits = now - self.start
            seen = seen or time.monotonic()
            if time.monotonic() - seen >= self.grace:
                self.stopped = True
                for pid in _children():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                return

    def close(self) -> None:
        self._done.set()

    def cause(self) -> str | None:
        """What the workers ran into, or None when no thread failed to start for the task limit."""
        hits = task_limit_hits()
        if hits is not None and self.start is not None:
            self.hits = max(self.hits, hits - self.start)
        if not self.hits:
            return None
        limit = task_limit()
        where = limit[2] if limit else "a pids cgroup's limit"
        what = f"threads could not start ({self.hits} refused): the task limit was reached ({where})"
        return what + (f"; the workers were stopped after {self.grace:g} s" if self.stopped else "")


def _children() -> list[int]:
    """This process's child processes (the launcher's workers)."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == me:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found
