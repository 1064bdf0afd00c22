"""The CPU cores this process may use, and whether the machine is busy while something is measured.

``os.cpu_count()`` counts the machine's cores, not the ones a process may use: a container limited by a
cgroup CPU quota (``cpu.max``), or a process pinned by ``taskset`` / a batch scheduler (its affinity mask),
gets fewer. Sizing torch threads and loader workers by the machine's count oversubscribes the cores,
and waiting threads then steal time from working ones. :func:`usable_cores` is the smaller of the
affinity mask and the quota.

Measurements users read (``zoo compare``'s examples/s, ``zoo select --budget``'s estimates) are only
as good as the machine is idle: :class:`LoadWatch` reads the load average before and after, and
:meth:`LoadWatch.note` gives one line when the load exceeded the cores.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: where cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) keep the CPU quota
CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in cores (``200000 100000`` -> 2.0), or None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max" and float(period) > 0:
            return float(quota) / float(period)
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = float((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = float((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """Cores this process may use: its affinity mask, capped by the cgroup quota (rounded up), at least 1.

    ``MODELZOO_CORES`` overrides it (a share of the machine set by whoever runs several jobs).
    """
    override = os.environ.get("MODELZOO_CORES", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity masks
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit - 1e-6)))
    return max(1, cores)


def worker_threads(nproc: int, cores: int, environ: dict[str, str] | None = None) -> int:
    """OpenMP threads of each of ``nproc`` worker processes sharing ``cores``: the user's ``OMP_NUM_THREADS``
    when set to a whole number, else an equal share (at least 1)."""
    given = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else max(1, cores // max(1, nproc))


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


class LoadWatch:
    """The load average around a measurement: ``watch = LoadWatch()`` before, ``watch.note()`` after."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = cores or usable_cores()
        self.before = load_average()

    def note(self, what: str = "speeds") -> str | None:
        """One line when the load exceeded the usable cores (by more than half a core) before or after, else None.

        Every runnable process beyond the cores takes a share of them, so a load of ``L`` on ``C`` cores
        leaves a measurement about ``L / C`` times slow: ``note: load 6.8 on 2 cores: speeds are ~3.4x
        low; rerun when idle``."""
        seen = [v for v in (self.before, load_average()) if v is not None]
        if not seen or max(seen) <= self.cores + 0.5:
            return None
        load = max(seen)
        plural = "s" if self.cores != 1 else ""
        return f"note: load {load:.1f} on {self.cores} core{plural}: {what} are ~{load / self.cores:.1f}x low; rerun when idle"


def passive_omp_waits(environ: dict[str, str] | None = None) -> bool:
    """Make OpenMP threads that wait for work sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``),
    unless the user chose a policy. It must happen before torch (and its OpenMP runtime) loads: later
    it has no effect. Spinning threads burn the cores other processes need: measured on 2 shared
    cores, two other fine-tunes running, a training loop ran 3.5x faster at a fifth of the CPU time
    with ``PASSIVE``. True when this call set it."""
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env:
        return False
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
