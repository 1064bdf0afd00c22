"""Torch under an address-space limit (``ulimit -v``, ``prlimit --as``).

A CUDA build of torch maps over 3 GiB of virtual memory just to load (its libraries and their
thread-local data); below that the dynamic loader or OpenBLAS aborts the process during ``import
torch`` (``cannot allocate memory for thread-local data: ABORT``), before Python can say anything.
Where such a limit is set, the first ``import torch`` of a ``zoo`` process is tried first in a child
under the same limit, and a child that dies becomes one line naming the limit and the fix. Without
a limit nothing is installed: no cost.
"""

from __future__ import annotations

import importlib.abc
import os
import subprocess
import sys

from ..errors import ZooError

#: set once torch loaded under this limit (in bytes): the processes this one starts skip the check
LOADS_UNDER = "MODELZOO_TORCH_LOADS_UNDER"


def guard_torch_import() -> None:
    """Check, before this process first imports torch, that torch can load under its address-space
    limit; nothing where there is no limit, torch is loaded already, or a parent checked this limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return
    if soft == resource.RLIM_INFINITY or "torch" in sys.modules or os.environ.get(LOADS_UNDER) == str(soft):
        return
    if not any(isinstance(finder, _FirstTorchImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FirstTorchImport(soft))


class _FirstTorchImport(importlib.abc.MetaPathFinder):
    """Runs :func:`check_torch_loads` when ``torch`` is first imported, then steps aside."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def find_spec(self, name, path=None, target=None):  # the finder protocol
        if name != "torch":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        check_torch_loads(self.limit)
        return None  # the usual finders import it


def check_torch_loads(limit: int) -> None:
    """Import torch in a child under the same limit; one line if it cannot."""
    try:
        child = subprocess.run(
            [sys.executable, "-c", "import torch"], capture_output=True, text=True, errors="replace", timeout=600
        )
    except (OSError, subprocess.TimeoutExpired):
        return  # could not try: the import itself will tell
    if child.returncode == 0:
        os.environ[LOADS_UNDER] = str(limit)
        return
    words = [line.strip() for line in child.stderr.splitlines() if line.strip()]
    said = f" ({words[-1][:160]})" if words else ""
    raise ZooError(
        f"this process may map only {limit / 2**30:.1f} GiB of memory (an address-space limit: ulimit -v or"
        f" prlimit --as), too little for torch to load{said}: torch alone maps over 3 GiB; raise the"
        " limit (ulimit -v unlimited) and rerun"
    )
