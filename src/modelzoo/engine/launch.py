"""``zoo finetune --nproc N``: N worker processes on this machine through PyTorch's own launcher.

It is ``torchrun --standalone --nproc-per-node N -m modelzoo finetune ...`` (``torch.distributed.run``,
elastic, with a free local rendezvous port and no restarts), called in-process so that a failure
becomes one line naming the rank and how to resume, instead of the launcher's traceback. Multi-node
runs use ``torchrun`` directly (the README has the commands); the engine reads the same environment.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from ..errors import ZooError


def launch(worker_args: list[str], nproc: int, out: Path) -> int:
    """Run ``zoo <worker_args>`` in ``nproc`` processes; 0 when all succeeded, else a ZooError."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if "WORLD_SIZE" in os.environ:
        raise ZooError("this process was already started by torchrun; drop --nproc (torchrun sets the processes)")
    args = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", "0", "--module", "modelzoo", *worker_args]
    )
    for name in ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the failure is reported below, in one line
    try:
        run(args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        raise ZooError(_failure_line(rank, failure.pid, failure.exitcode, out, nproc)) from None
    return 0


def _failure_line(rank: int, pid: int, exitcode: int, out: Path, nproc: int) -> str:
    if exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"stopped with exit code {exitcode} (its error is above)"
    resume = f"zoo finetune --resume {out} --nproc {nproc}"
    kept = (
        f"the last checkpoint in {out} is intact; continue with: {resume}"
        if (out / "checkpoint" / "last.pt").is_file()
        else f"no checkpoint was written yet in {out}"
    )
    return f"worker rank {rank} (pid {pid}) {how}; the run stopped; {kept}"


def worker_args(argv: list[str], out: Path | None) -> list[str]:
    """The worker command line: the user's ``finetune`` arguments without ``--nproc N``, with ``--out``."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        args.append(arg)
    if out is not None and "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return args


def stdout_is_rank_zero() -> bool:
    """Only rank 0 prints results (every worker runs the same command)."""
    return os.environ.get("RANK", "0") == "0"
