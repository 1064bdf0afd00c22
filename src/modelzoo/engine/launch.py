"""``zoo finetune --nproc N``: N worker processes on this machine through PyTorch's own launcher.

It is ``torchrun --standalone --nproc-per-node N -m modelzoo finetune ...`` (``torch.distributed.run``,
elastic, with a free local rendezvous port), called in-process so that a failure becomes one line
naming the rank that failed *first* and its own last error lines (not a peer's abort that followed
it), and how to resume, instead of the launcher's report. ``--max-restarts K`` is torchrun's elastic
restarts: after a worker dies the launcher starts them all again, and they resume from the run's last
checkpoint by themselves (:func:`restarted_resume`).

Several machines: ``--nnodes M --rdzv-endpoint HOST:PORT`` on every node is torchrun's c10d rendezvous,
called the same way (:mod:`.rendezvous` checks it and words its failures); restarts across nodes resume
alike on every node (:func:`restarted_resume`). tests/engine/test_multinode.py runs the README's
commands as two launchers on 127.0.0.1. Plain ``torchrun ... -m modelzoo finetune`` works too (the
engine reads the same environment), but torchrun reports its own rendezvous failures.

How the first failure is found: every worker that fails with an error writes a record (its rank,
pid, time, one line, and whether the error was only a consequence: a lost peer, or the launcher's
stop) into a folder the launcher names in ``MODELZOO_FAILURE_DIR``; a worker that dies of a fatal
signal (``SIGABRT`` from a C++ ``terminate``, ``SIGSEGV``) leaves its Python stack there too
(:func:`prepare_worker`, written by ``faulthandler`` as it dies, so the file's time is the time of
death); and the standard error of every local rank but 0 (whose output is the console's) goes to a
log file, so its last words (a ``terminate``'s ``what()``) are kept. Of the failures that were not
consequences, the earliest wins; a worker that left nothing (``SIGKILL``) counts from the moment the
launcher saw it die.

Memory: ``--nproc`` far beyond the usable cores, or more workers than the available memory holds
(each holds at least what the launcher holds when it starts them), is refused before anything
starts (:func:`.capacity.check_capacity`); a worker the kernel killed (``SIGKILL``; the out-of-memory killer's
count in ``/proc/vmstat`` rose meanwhile) is reported as memory that ran out, with a smaller
``--nproc`` to try.

Threads: under a task limit (a container's ``--pids-limit``, a cgroup's ``pids.max``, ``ulimit -u``) a
worker whose gloo threads cannot start dies of ``SIGABRT`` (``terminate called without an active
exception``) or hangs in its half-built process group. An ``--nproc`` whose threads the limit cannot
let start is refused up front; a limit reached while the workers run (the cgroup's count of refused
tasks rose, :class:`.capacity.TaskWatch`) is said in the line, and workers still running 20 s after
it are stopped rather than left hanging.
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
from ..util.text import first_line
from .capacity import TaskWatch, check_capacity, oom_kills
from .rendezvous import Nodes, probe_rendezvous, rendezvous_failed

#: where workers write their failure records (set by :func:`launch` for its workers)
FAILURE_DIR = "MODELZOO_FAILURE_DIR"
#: the run folder of a new run :func:`launch` started, after checking that it held no run then
NEW_RUN = "MODELZOO_NEW_RUN"
#: torch's switch for a fresh workers' store in every round of a multi-node rendezvous: torch shares one
#: across restarts and keys each attempt by TORCHELASTIC_RESTART_COUNT, which only the node whose worker
#: failed advances (pytorch/pytorch#135712): after a restart the nodes' workers would wait for each other
_FRESH_STORES = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"
#: signals the launcher sends to the workers it stops once one has failed
_STOPS = (signal.SIGTERM, signal.SIGINT)
#: the lines of a dying worker's standard error worth quoting (a C++ ``terminate`` and its ``what()``,
#: a failed C ``assert``, glibc's heap checks, Python's fatal errors)
_ERROR_WORDS = re.compile(
    r"error|terminate|what\(\)|fatal|exception|abort|killed|signal|assert|corrupt|free\(\)|malloc", re.IGNORECASE
)
#: ... but not a traceback's frames nor faulthandler's list of loaded modules
_NOT_WORDS = ('File "', "Extension modules:")
#: what a worker says when memory ran out (Python, C++, torch's allocator, thread creation)
_MEMORY_WORDS = re.compile(
    r"MemoryError|bad_alloc|out of memory|can't allocate memory|cannot allocate memory", re.IGNORECASE
)
#: the first line faulthandler writes for each fatal signal
_FAULTS = {
    "Aborted": signal.SIGABRT,
    "Segmentation fault": signal.SIGSEGV,
    "Bus error": signal.SIGBUS,
    "Floating-point exception": signal.SIGFPE,
    "Illegal instruction": signal.SIGILL,
}


def launch(
    worker_args: list[str], nproc: int, out: Path, max_restarts: int = 0, nodes: Nodes | None = None, new: bool = False
) -> int:
    """Run ``zoo <worker_args>`` in ``nproc`` processes on this machine (one node of ``nodes``);
    0 when all succeeded, else a ZooError. ``new``: a new run into ``out``, which the caller checked
    holds no run (restarted workers then resume what this launch began: :func:`restarted_resume`)."""
    if "WORLD_SIZE" in os.environ:
        raise ZooError("this process was already started by torchrun; drop --nproc (torchrun sets the processes)")
    from torch.distributed import DistError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.run import get_args_parser, run

    resume = f"zoo finetune --resume {out} --nproc {nproc}" + (nodes.resume_flags() if nodes else "")
    if nodes is not None:
        resume += " (on every node)"
        probe_rendezvous(nodes)
    check_capacity(nproc)  # with torch loaded: this process now holds what every worker holds at least
    logs = _log_folder()
    records = logs / "failures"
    args = get_args_parser().parse_args([*_torchrun_flags(nproc, max_restarts, nodes, logs), *worker_args])
    _quiet_torch_loggers()
    from .speed import launch_threads

    launch_threads(nproc)  # the workers divide the usable cores (OMP_NUM_THREADS), waiting threads sleep
    if nodes is not None:
        os.environ[_FRESH_STORES] = "1"
    if new:
        os.environ[NEW_RUN] = str(out)
    previous = os.environ.get(FAILURE_DIR)
    os.environ[FAILURE_DIR] = str(records)  # the workers inherit it
    oom_before = oom_kills()
    tasks = TaskWatch()  # a task limit reached while the workers run: their line says so, a hang is stopped
    try:
        run(args)
    except (SignalException, KeyboardInterrupt):  # Ctrl-C or SIGTERM to the launcher: the workers were stopped
        from .trainer import Interrupted

        kept = f"continue with: {resume}"
        raise Interrupted(
            f"interrupted; {out} keeps its last checkpoint: {kept}"
            if (out / "checkpoint" / "last.pt").is_file()
            else "interrupted before the first checkpoint; nothing to resume"
        ) from None
    except (RendezvousError, DistError) as exc:
        if nodes is not None:  # the nodes' rendezvous failed, or its store went away mid-run with its node
            raise _rendezvous_failed(exc, nodes, out, nproc, logs) from None
        if not isinstance(exc, RendezvousError):
            raise
        raise ZooError(  # the launcher's own store on localhost, a free port: this machine's network
            f"the workers' rendezvous on localhost (a free port) failed ({first_line(exc) or type(exc).__name__});"
            " check that 'localhost' resolves to this machine (/etc/hosts) and that local TCP connections are allowed"
        ) from None
    except ChildFailedError as exc:
        first = first_failure(exc, records, logs / "logs")
        if first.get("kind") == "PeerLost":  # a node went away: the worker's line says which, and how to go on
            raise ZooError(first["words"].removeprefix("error: ")) from None
        after = oom_kills()
        first["oom"] = None if oom_before is None or after is None else after > oom_before
        first["tasks"] = tasks.cause()
        line = _failure_line(first, out, nproc, resume)
        if max_restarts:
            line += f" (after {max_restarts} automatic restart{'s' if max_restarts > 1 else ''})"
        raise ZooError(line) from None
    finally:
        tasks.close()
        os.environ.pop(NEW_RUN, None)
        if nodes is not None:
            os.environ.pop(_FRESH_STORES, None)
        if previous is None:
            os.environ.pop(FAILURE_DIR, None)
        else:
            os.environ[FAILURE_DIR] = previous
        shutil.rmtree(logs, ignore_errors=True)
    return 0


def _torchrun_flags(nproc: int, max_restarts: int, nodes: Nodes | None, logs: Path) -> list[str]:
    """torchrun's flags for this launch: its rendezvous, the processes, restarts, and the standard error
    of every local rank but 0 into log files (their last words are quoted when they fail)."""
    from .distributed import timeout_seconds

    quiet_ranks = ",".join(f"{r}:{2 if r else 0}" for r in range(nproc))
    where = ["--standalone"] if nodes is None else nodes.flags(timeout_seconds())
    flags = [*where, "--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts)]
    return [*flags, "--log-dir", str(logs / "logs"), "--redirects", quiet_ranks, "--module", "modelzoo"]


def _log_folder() -> Path:
    """A new folder for the workers' logs and failure records (``failures/``)."""
    try:
        logs = Path(tempfile.mkdtemp(prefix="zoo-launch-"))
        (logs / "failures").mkdir()
    except OSError as exc:
        raise ZooError(
            f"cannot create the workers' log folder in {tempfile.gettempdir()} ({exc.strerror or exc}); free some"
            " space there or point TMPDIR elsewhere"
        ) from None
    return logs


def _quiet_torch_loggers() -> None:
    """torch's launcher logs each failure at length: the launcher reports it in one line instead."""
    torch_loggers = ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher")
    for name in [*torch_loggers, *logging.root.manager.loggerDict]:  # torch sets its loggers' own levels
        if name.startswith(torch_loggers):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _rendezvous_failed(exc: BaseException, nodes: Nodes, out: Path, nproc: int, logs: Path) -> ZooError:
    """:func:`.rendezvous.rendezvous_failed` with what this launch knows: whether torchrun started workers
    (it makes a log folder per attempt), and a worker's line naming the node it lost, if one said it."""
    started = any((logs / "logs").glob("*/attempt_*"))
    peer = next((r.get("line") for r in _records(logs / "failures") if r.get("kind") == "PeerLost"), None)
    kept = _kept(out, f"zoo finetune --resume {out} --nproc {nproc}")
    return rendezvous_failed(exc, nodes, started, kept, str(peer) if peer is not None else None)


# -- the first failure ---------------------------------------------------------------------------------
def _records(records: Path) -> list[dict[str, Any]]:
    """The failure records the workers wrote (:func:`record_failure`), unreadable ones skipped."""
    found = []
    for path in sorted(records.glob("*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found


def first_failure(exc: Any, records: Path, logs: Path) -> dict[str, Any]:
    """The worker that failed first: ``{"rank", "pid", "exitcode", "words"}`` (see the module docstring)."""
    found, faults = _records(records), []
    for path in records.glob("*.fault"):
        fault = _read_fault(path)
        if fault is not None:
            faults.append(fault)
    # only the last attempt's failures: the earlier attempts' were restarted
    last = max([r.get("attempt", 0) for r in found] + [f["attempt"] for f in faults], default=0)
    found = [r for r in found if r.get("attempt", 0) == last]
    faults = [f for f in faults if f["attempt"] == last]
    explained = {r.get("rank") for r in found} | {f["rank"] for f in faults}
    failures = getattr(exc, "failures", {})
    candidates = []  # (time, rank, failure)
    for r in found:
        if not r.get("consequence"):
            words = r.get("line", "")
            candidates.append(
                (
                    r.get("time", 0),
                    r["rank"],
                    {"pid": r.get("pid", "?"), "exitcode": r.get("exitcode", 2), "words": words},
                )
            )
    for f in faults:
        failure = failures.get(f["rank"])
        exitcode = failure.exitcode if failure is not None and failure.exitcode < 0 else -int(f["signal"])
        words = " | ".join(w for w in (_last_words(logs, f["rank"], failure), f["words"]) if w)
        candidates.append((f["time"], f["rank"], {"pid": f["pid"], "exitcode": exitcode, "words": words}))
    for rank, failure in failures.items():  # died leaving nothing (SIGKILL): from when the launcher saw it
        if rank in explained or (failure.exitcode < 0 and -failure.exitcode in _STOPS):
            continue
        words = _last_words(logs, rank, failure)
        candidates.append((failure.timestamp, rank, {"pid": failure.pid, "exitcode": failure.exitcode, "words": words}))
    if not candidates:  # only consequences: the first stopped (a worker's own SIGTERM), else the first to lose a peer
        stops = sorted(found, key=lambda r: (r.get("kind") == "PeerLost", r.get("time", 0), r.get("rank", 0)))
        for r in stops[:1]:
            first = {"pid": r.get("pid", "?"), "exitcode": r.get("exitcode", 2), "words": r.get("line", "")}
            candidates.append((0, r["rank"], {**first, "kind": r.get("kind")}))
    if not candidates:  # nothing recorded: torch's first
        rank, failure = exc.get_first_failure()
        candidates.append((0, rank, {"pid": failure.pid, "exitcode": failure.exitcode, "words": ""}))
    _, rank, first = min(candidates, key=lambda c: (c[0], c[1]))
    return {"rank": rank, **first}


def _read_fault(path: Path) -> dict[str, Any] | None:
    """A worker's fatal-signal dump (:func:`prepare_worker`): rank, pid, attempt, its time, the signal
    and its words (faulthandler's first line, where the process was: the innermost frame, and the
    innermost of our own); None when empty (the worker did not die of a signal)."""
    try:
        attempt, rank, pid = path.stem.split("-")
        text = path.read_text(errors="replace")[-64_000:]
        when = path.stat().st_mtime
    except (OSError, ValueError):
        return None
    lines = [line.strip() for line in text.splitlines()]
    head = next((line for line in lines if line.startswith("Fatal Python error:")), "")
    if not head:
        return None
    kind = head.removeprefix("Fatal Python error:").strip()
    sig = next((s for name, s in _FAULTS.items() if kind.startswith(name)), signal.SIGABRT)
    heads = [i for i, line in enumerate(lines) if line.startswith(("Current thread", "Stack (most", "Thread 0x"))]
    current = next((i for i in heads if not lines[i].startswith("Thread 0x")), None)
    # the dying thread's stack, innermost first; a C++ thread of torch's has none: then the main thread's
    # (faulthandler lists the newest thread first, so the main thread last)
    start = current if current is not None else (heads[-1] if heads else len(lines))
    frames = []
    for line in lines[start + 1 :]:
        m = re.match(r'File "(.+)", line (\d+) in (\S+)', line)
        if m is None:
            break
        frames.append(m)
    where = [f"{m.group(3)} ({Path(m.group(1)).name}:{m.group(2)})" for m in frames[:1]]
    ours = next((m for m in frames if "modelzoo" in m.group(1)), None)
    if ours is not None and ours is not frames[0]:
        where.append(f"{ours.group(3)} ({Path(ours.group(1)).name}:{ours.group(2)})")
    if current is None and where:
        words = f"{head} in a thread outside Python, while Python was in {', called from '.join(where)}"
    else:
        words = head + (f" in {', called from '.join(where)}" if where else "")
    try:
        return {
            "attempt": int(attempt),
            "rank": int(rank),
            "pid": int(pid),
            "time": when,
            "signal": sig,
            "words": words,
        }
    except ValueError:
        return None


def _last_words(logs: Path, rank: int, failure: Any, lines: int = 3) -> str:
    """The last error lines a worker wrote to its redirected standard error (a C++ ``terminate``'s
    ``what()``); "" for local rank 0, whose output is the console's."""
    local = getattr(failure, "local_rank", rank)
    words: list[str] = []
    for path in sorted(logs.glob(f"*/attempt_*/{local}/stderr.log"), key=lambda p: p.stat().st_mtime):
        try:
            words = [ln.strip() for ln in path.read_text(errors="replace").splitlines()[-200:] if ln.strip()]
        except OSError:
            continue
    errors = [w for w in words if _ERROR_WORDS.search(w) and not w.startswith(_NOT_WORDS)]
    errors = [w for w in errors if not w.startswith("Fatal Python error:")]  # the fault file says it, with where
    return " | ".join(errors[-lines:])[-400:]


def _failure_line(first: dict[str, Any], out: Path, nproc: int, resume: str | None = None) -> str:
    """The launcher's line for the first failure; ``resume``: the command that continues the run."""
    exitcode, words = first["exitcode"], first["words"].removeprefix("error: ")
    resume = resume or f"zoo finetune --resume {out} --nproc {nproc}"
    fewer = (
        f"try fewer processes (--nproc {nproc // 2}) or a smaller data.batch_size"
        if nproc > 1
        else "try a smaller data.batch_size or data.image_size"
    )
    if exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
        oom = first.get("oom")  # did the kernel's out-of-memory count rise during the run (None: not counted)
        if first.get("tasks"):
            pass  # said below, whatever the signal
        elif -exitcode == signal.SIGKILL and oom:
            how += f" (the kernel's out-of-memory killer: memory ran out; {fewer})"
        elif -exitcode == signal.SIGKILL and oom is False:
            how += (
                " (not by the kernel's out-of-memory killer: by a user, or a memory watchdog such as systemd-oomd;"
                f" if memory was short, {fewer})"
            )
        elif -exitcode == signal.SIGKILL and not words:  # no last words: nothing saw it coming
            how += f" (memory likely ran out and the kernel stopped it, unless someone killed it; {fewer})"
    else:
        how = f"stopped with exit code {exitcode}"
    if words:
        how += f" ({'its last words' if exitcode < 0 else 'its error'}: {words[-500:]})"
        if _MEMORY_WORDS.search(words) and not first.get("oom") and not first.get("tasks"):
            how += f" (memory ran out: {fewer})"
    if first.get("tasks"):
        fix = f"use --nproc {nproc // 2}" if nproc > 1 else "run without --nproc"
        how += f" ({first['tasks']}; raise the limit (a container's --pids-limit, ulimit -u) or {fix})"
    return f"worker rank {first['rank']} (pid {first['pid']}) {how}; the run stopped; {_kept(out, resume)}"


def _kept(out: Path, resume: str) -> str:
    if (out / "checkpoint" / "last.pt").is_file():
        return f"the last checkpoint in {out} is intact; continue with: {resume}"
    return f"no checkpoint was written yet in {out}"


# -- in the workers -------------------------------------------------------------------------------------
_fault_file: Any = None
#: added to a worker's ``oom_score_adj``: when memory runs out, the kernel stops a worker, not the launcher
#: that reports it (raising one's own score needs no privilege)
OOM_SCORE_ADJ = 300


def prepare_worker() -> None:
    """In a worker :func:`launch` started (nothing elsewhere): a fatal signal (``SIGABRT`` from a C++
    ``terminate`` or a failed ``assert``, ``SIGSEGV``) writes this process's Python stack to
    ``<attempt>-<rank>-<pid>.fault`` beside the failure records as it dies, so the launcher names the
    worker, when and where it died (forked data-loader workers do not inherit it: their deaths are
    their parent's error); and the kernel's out-of-memory killer prefers this worker to the launcher."""
    global _fault_file
    folder = os.environ.get(FAILURE_DIR)
    rank, attempt = os.environ.get("RANK", ""), os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if _fault_file is not None or not folder or not rank.isdigit() or not attempt.isdigit():
        return
    import faulthandler

    try:
        _fault_file = open(Path(folder) / f"{attempt}-{rank}-{os.getpid()}.fault", "w")  # open for the process's life
    except OSError:
        return
    faulthandler.enable(_fault_file, all_threads=True)
    os.register_at_fork(after_in_child=faulthandler.disable)
    try:
        adj = Path("/proc/self/oom_score_adj")
        adj.write_text(str(min(1000, int(adj.read_text()) + OOM_SCORE_ADJ)))
    except (OSError, ValueError):
        pass


def end_worker() -> int:
    """A worker of rank >= 1 (under ``torchrun`` or ``--nproc``) whose run finished: it left the process
    group and wrote nothing, so it ends now with ``os._exit`` (after its ``atexit`` handlers and a flush)
    instead of the interpreter's teardown. torch keeps gloo's threads (``gloo_tcp_loop``,
    ``pt_gloo_runloop``) running after ``destroy_process_group``; a teardown with them alive (C++ static
    destructors, the process group freed during finalization) races the moment rank 0 closes its
    connections, and a crash then (``SIGABRT``) turns a finished run into a failed one. Returns 0
    where it is not such a worker."""
    import atexit
    import sys

    if "WORLD_SIZE" not in os.environ or os.environ.get("RANK", "0") == "0":
        return 0
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(0)


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
    if isinstance(exc, MemoryError):
        line = "out of memory (MemoryError)"
    if folder and Path(folder).is_dir():  # the launcher quotes the first failure's line: say nothing here
        said = (ZooError, KeyboardInterrupt, MemoryError)  # the launcher's line says all there is to say
        silent = _write_record(Path(folder), exc, line, consequence) and isinstance(exc, said)
    else:  # plain torchrun: one line per node about a lost peer, said by the node's local rank 0
        silent = isinstance(exc, PeerLost) and os.environ.get("LOCAL_RANK", "0") != "0"
    if silent:
        sys.stdout.flush()
        sys.stderr.flush()
        code = 1 if isinstance(exc, MemoryError) else getattr(exc, "exit_code", 130)
        os._exit(code)  # its data-loader workers follow their parent


def _write_record(folder: Path, exc: BaseException, line: str, consequence: bool) -> bool:
    from ..util.files import atomic_write_text

    rank = os.environ.get("RANK", "0")
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    record = {
        "rank": int(rank) if rank.isdigit() else rank,
        "pid": os.getpid(),
        "attempt": attempt,
        "time": getattr(exc, "failed_at", None) or time.time(),  # when it happened (distributed.close)
        "exitcode": getattr(exc, "exit_code", 1),
        "line": line.strip().replace("\n", " ")[:400],
        "consequence": consequence,
        "kind": type(exc).__name__,
    }
    try:
        atomic_write_text(folder / f"{attempt}-{rank}.json", json.dumps(record))
    except OSError:
        return False  # the launcher then names the failure from the exit code alone: say it here
    return True


def restarted_resume(out: str | None, resume: str | None) -> str | None:
    """A worker a launcher restarted, for a run started with ``--out``: the folder to resume, or None to
    start the run (again).

    Every rank must decide alike, so the decision rests on ``checkpoint/last.pt``: in the first attempt
    no rank can see one before every rank has decided (the first checkpoint follows training steps
    that need them all), and a restart begins only once the earlier attempt's workers have all stopped.
    A restarted worker is one under :func:`launch`, which checked that ``--out`` held no run when it
    began (:data:`NEW_RUN`; on several nodes only the node whose worker failed counts a restart), or
    under plain torchrun one with ``TORCHELASTIC_RESTART_COUNT`` > 0. The files of an attempt that died
    before its first checkpoint are removed (by rank 0) so that the run starts again cleanly."""
    if resume or not out:
        return None
    folder, count = Path(out), os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    vouched = os.environ.get(NEW_RUN) == str(out)
    if not vouched and (not count.isdigit() or int(count) == 0):
        return None
    if (folder / "checkpoint" / "last.pt").is_file():
        return out
    if vouched and stdout_is_rank_zero() and folder.is_dir():
        from .runlock import LOCK

        for entry in folder.iterdir():  # the launcher found the folder empty: these are an earlier attempt's
            if entry.name == LOCK:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return None


#: the launcher's own flags, each with a value: the workers do not get them
LAUNCHER_FLAGS = ("--nproc", "--max-restarts", "--nnodes", "--rdzv-endpoint", "--rdzv-id")


def worker_args(argv: list[str], out: Path | None) -> list[str]:
    """The worker command line: the user's ``finetune`` arguments without the launcher's own flags
    (:data:`LAUNCHER_FLAGS`), with ``--out``."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in LAUNCHER_FLAGS:
            skip = True
            continue
        if arg.startswith(tuple(f"{flag}=" for flag in LAUNCHER_FLAGS)):
            continue
        args.append(arg)
    if out is not None and "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return args


def stdout_is_rank_zero() -> bool:
    """Only rank 0 prints results (every worker runs the same command)."""
    return os.environ.get("RANK", "0") == "0"
