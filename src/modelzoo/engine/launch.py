"""``zoo finetune --nproc N``: N worker processes on this machine through PyTorch's own launcher.

It is ``torchrun --standalone --nproc-per-node N -m modelzoo finetune ...`` (``torch.distributed.run``,
elastic, with a free local rendezvous port), called in-process so that a failure becomes one line
naming the rank that failed *first* and its own last error lines (not a peer's abort that followed
it), and how to resume, instead of the launcher's report. ``--max-restarts K`` is torchrun's elastic
restarts: after a worker dies the launcher starts them all again, and they resume from the run's last
checkpoint by themselves (:func:`restarted_resume`). Multi-node runs use ``torchrun`` directly (the
README's commands, which tests/engine/test_multinode.py runs on 127.0.0.1); the engine reads the same
environment, and a worker restarted by torchrun's ``--max-restarts`` resumes there too.

How the first failure is found: every worker that fails with an error writes a record (its rank,
pid, time, one line, and whether the error was only a consequence: a lost peer, or the launcher's
stop) into a folder the launcher names in ``MODELZOO_FAILURE_DIR``; the standard error of every
local rank but 0 (whose output is the console's) goes to a log file, so a worker that dies of a
signal (``SIGABRT`` from a C++ ``terminate``, ``SIGSEGV``) still has its last words. The first
record that is not a consequence wins, else the first worker killed by a signal the launcher did not
send, else torch's first failure.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import ZooError

#: where workers write their failure records (set by :func:`launch` for its workers)
FAILURE_DIR = "MODELZOO_FAILURE_DIR"
#: signals the launcher sends to the workers it stops once one has failed
_STOPS = (signal.SIGTERM, signal.SIGINT)
#: the lines of a dying worker's standard error worth quoting
_ERROR_WORDS = re.compile(r"error|terminate|what\(\)|fatal|exception|abort|killed|signal", re.IGNORECASE)
#: ... but not a traceback's frames nor faulthandler's list of loaded modules
_NOT_WORDS = ('File "', "Extension modules:")


def launch(worker_args: list[str], nproc: int, out: Path, max_restarts: int = 0) -> int:
    """Run ``zoo <worker_args>`` in ``nproc`` processes; 0 when all succeeded, else a ZooError."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if "WORLD_SIZE" in os.environ:
        raise ZooError("this process was already started by torchrun; drop --nproc (torchrun sets the processes)")
    try:
        logs = Path(tempfile.mkdtemp(prefix="zoo-launch-"))
        records = logs / "failures"
        records.mkdir()
    except OSError as exc:
        raise ZooError(
            f"cannot create the workers' log folder in {tempfile.gettempdir()} ({exc.strerror or exc}); free some"
            " space there or point TMPDIR elsewhere"
        ) from None
    quiet_ranks = ",".join(f"{r}:{2 if r else 0}" for r in range(nproc))  # stderr of ranks >= 1 into files
    flags = ["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts)]
    flags += ["--log-dir", str(logs / "logs"), "--redirects", quiet_ranks, "--module", "modelzoo"]
    args = get_args_parser().parse_args([*flags, *worker_args])
    torch_loggers = ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher")
    for name in [*torch_loggers, *logging.root.manager.loggerDict]:  # torch sets its loggers' own levels
        if name.startswith(torch_loggers):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # the failure is reported below, in one line
    from .speed import launch_threads

    launch_threads(nproc)  # the workers divide the usable cores (OMP_NUM_THREADS), waiting threads sleep
    previous = os.environ.get(FAILURE_DIR)
    os.environ[FAILURE_DIR] = str(records)  # the workers inherit it
    try:
        run(args)
    except (SignalException, KeyboardInterrupt):  # Ctrl-C or SIGTERM to the launcher: the workers were stopped
        from .trainer import Interrupted

        kept = f"continue with: zoo finetune --resume {out} --nproc {nproc}"
        raise Interrupted(
            f"interrupted; {out} keeps its last checkpoint: {kept}"
            if (out / "checkpoint" / "last.pt").is_file()
            else "interrupted before the first checkpoint; nothing to resume"
        ) from None
    except ChildFailedError as exc:
        line = _failure_line(first_failure(exc, records, logs / "logs"), out, nproc)
        if max_restarts:
            line += f" (after {max_restarts} automatic restart{'s' if max_restarts > 1 else ''})"
        raise ZooError(line) from None
    finally:
        if previous is None:
            os.environ.pop(FAILURE_DIR, None)
        else:
            os.environ[FAILURE_DIR] = previous
        shutil.rmtree(logs, ignore_errors=True)
    return 0


def first_failure(exc: Any, records: Path, logs: Path) -> dict[str, Any]:
    """The worker that failed first: ``{"rank", "pid", "exitcode", "words"}`` (see the module docstring)."""
    found = []
    for path in records.glob("*.json"):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    if found:  # only the last attempt's records: the earlier attempts' failures were restarted
        last = max(r.get("attempt", 0) for r in found)
        found = [r for r in found if r.get("attempt", 0) == last]
    own = sorted((r for r in found if not r.get("consequence")), key=lambda r: (r.get("time", 0), r.get("rank", 0)))
    if own:
        r = own[0]
        return {"rank": r["rank"], "pid": r.get("pid", "?"), "exitcode": r.get("exitcode", 2), "words": r["line"]}
    killed = sorted(r for r, f in exc.failures.items() if f.exitcode < 0 and -f.exitcode not in _STOPS)
    rank = killed[0] if killed else exc.get_first_failure()[0]
    failure = exc.failures[rank]
    return {"rank": rank, "pid": failure.pid, "exitcode": failure.exitcode, "words": _last_words(logs, failure)}


def _last_words(logs: Path, failure: Any, lines: int = 3) -> str:
    """The last error lines a worker wrote to its redirected standard error (a C++ ``terminate``'s
    ``what()``, Python's ``Fatal Python error``); "" for local rank 0, whose output is the console's."""
    words: list[str] = []
    for path in sorted(logs.glob(f"*/attempt_*/{failure.local_rank}/stderr.log"), key=lambda p: p.stat().st_mtime):
        try:
            words = [ln.strip() for ln in path.read_text(errors="replace").splitlines()[-200:] if ln.strip()]
        except OSError:
            continue
    errors = [w for w in words if _ERROR_WORDS.search(w) and not w.startswith(_NOT_WORDS)]
    return " | ".join(errors[-lines:])[-400:]


def _failure_line(first: dict[str, Any], out: Path, nproc: int) -> str:
    exitcode = first["exitcode"]
    if exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
            if -exitcode == signal.SIGKILL and not first["words"]:  # no last words: nothing saw it coming
                how += " (by a user, or by the kernel when memory ran out: try fewer processes)"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"stopped with exit code {exitcode}"
    words = first["words"].removeprefix("error: ")
    if words:
        how += f" ({'its last words' if exitcode < 0 else 'its error'}: {words})"
    resume = f"zoo finetune --resume {out} --nproc {nproc}"
    kept = (
        f"the last checkpoint in {out} is intact; continue with: {resume}"
        if (out / "checkpoint" / "last.pt").is_file()
        else f"no checkpoint was written yet in {out}"
    )
    return f"worker rank {first['rank']} (pid {first['pid']}) {how}; the run stopped; {kept}"


def record_failure(exc: BaseException, line: str) -> None:
    """In a worker :func:`launch` started: note this failure for the launcher's one line (see above),
    then end silently (a bug still prints its report): the launcher names the first failure and quotes
    its line, so the console keeps one line. Under plain torchrun, a lost peer is said once per node
    (by its local rank 0)."""
    import sys

    from .distributed import PeerLost
    from .trainer import Interrupted

    folder = os.environ.get(FAILURE_DIR)
    consequence = isinstance(exc, (PeerLost, Interrupted, KeyboardInterrupt))
    if folder and Path(folder).is_dir():  # the launcher quotes the first failure's line: say nothing here
        silent = _write_record(Path(folder), exc, line, consequence) and isinstance(exc, (ZooError, KeyboardInterrupt))
    else:  # plain torchrun: one line per node about a lost peer, said by the node's local rank 0
        silent = isinstance(exc, PeerLost) and os.environ.get("LOCAL_RANK", "0") != "0"
    if silent:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(getattr(exc, "exit_code", 130))  # its data-loader workers follow their parent


def _write_record(folder: Path, exc: BaseException, line: str, consequence: bool) -> bool:
    from ..util.files import atomic_write_text

    rank = os.environ.get("RANK", "0")
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    record = {
        "rank": int(rank) if rank.isdigit() else rank,
        "pid": os.getpid(),
        "attempt": attempt,
        "time": time.time(),
        "exitcode": getattr(exc, "exit_code", 1),
        "line": line.strip().replace("\n", " ")[:400],
        "consequence": consequence,
    }
    try:
        atomic_write_text(folder / f"{attempt}-{rank}.json", json.dumps(record))
    except OSError:
        return False  # the launcher then names the failure from the exit code alone: say it here
    return True


def restarted_resume(out: str | None, resume: str | None) -> str | None:
    """Under torchrun's elastic restarts (``TORCHELASTIC_RESTART_COUNT`` > 0), a run started with ``--out``
    continues from its last checkpoint: the folder to resume, or None where there is nothing to resume."""
    restarts = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if resume or not out or not restarts.isdigit() or int(restarts) == 0:
        return None
    return out if (Path(out) / "recipe.toml").is_file() else None


def worker_args(argv: list[str], out: Path | None) -> list[str]:
    """The worker command line: the user's ``finetune`` arguments without the launcher's own flags
    (``--nproc N``, ``--max-restarts K``), with ``--out``."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--nproc", "--max-restarts"):
            skip = True
            continue
        if arg.startswith(("--nproc=", "--max-restarts=")):
            continue
        args.append(arg)
    if out is not None and "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return args


def stdout_is_rank_zero() -> bool:
    """Only rank 0 prints results (every worker runs the same command)."""
    return os.environ.get("RANK", "0") == "0"
