"""The ``--nproc`` launcher's one line: the worker that failed first (by time, not a peer's abort or lost
connection that followed), in its own words; memory that ran out said as such; an ``--nproc`` this
machine cannot hold refused before anything starts.

The deaths here are real: a small Python process that prepares itself as a worker does
(:func:`prepare_worker`: faulthandler into the launcher's failure folder) and aborts, read with torch's
own failure report; real memory limits (a memory cgroup around the launcher, where this process may
make one: root) for the up-front refusal and for a worker the kernel's out-of-memory killer stops. The
end-to-end runs of a rank that raises and a rank that aborts are in test_multinode.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from modelzoo.engine import capacity, launch
from modelzoo.engine.distributed import PeerLost
from modelzoo.errors import ZooError
from modelzoo.testing import clean_env, write_color_images

#: a worker that aborts in a function named like torch's (line 7), as a C++ terminate() does
ABORTING_WORKER = """
import os, sys
os.environ.update(MODELZOO_FAILURE_DIR=sys.argv[1], RANK=sys.argv[2], TORCHELASTIC_RESTART_COUNT=sys.argv[3])
from modelzoo.engine.launch import prepare_worker
prepare_worker()
def destroy_process_group():
    os.abort()
destroy_process_group()
"""


def worker_env() -> dict[str, str]:
    drop = (launch.FAILURE_DIR, "RANK", "TORCHELASTIC_RESTART_COUNT", "PYTHONFAULTHANDLER")
    return {k: v for k, v in os.environ.items() if k not in drop}


def abort_worker(records: Path, rank: int, attempt: int = 0) -> int:
    """A real worker death by SIGABRT, its fault file written by faulthandler as it died; its pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ABORTING_WORKER, str(records), str(rank), str(attempt)],
        env=worker_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGABRT, err
    return proc.pid


def record(records: Path, monkeypatch, rank: int, exc: BaseException, consequence: bool, attempt: int = 0) -> None:
    """What a worker's :func:`record_failure` writes for ``exc`` (the part before it ends the process)."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", str(attempt))
    assert launch._write_record(records, exc, str(exc), consequence)


def failed(**ranks: tuple[int, int]) -> ChildFailedError:
    """torch's own report of the failed workers: ``r<rank>=(pid, exit code)``."""
    failures = {
        int(r[1:]): ProcessFailure(local_rank=int(r[1:]), pid=pid, exitcode=code, error_file="/nonexistent")
        for r, (pid, code) in ranks.items()
    }
    return ChildFailedError("modelzoo", failures)


def tiny_recipe(tmp_path: Path) -> Path:
    """A recipe the launcher accepts (its data is never read: the launcher refuses before any worker)."""
    recipe = {
        "name": "r",
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(tmp_path), "image_size": 32, "batch_size": 64},
        "stages": [{"name": "head", "train": "head", "epochs": 1}],
    }
    (tmp_path / "r.toml").write_text(tomli_w.dumps(recipe))
    return tmp_path / "r.toml"


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    records = tmp_path / "failures"
    records.mkdir()
    return records, tmp_path / "logs"


def test_a_rank_that_raised_first_is_named_not_the_peer_that_aborted_after_it(tmp_path, folders, monkeypatch):
    records, logs = folders
    record(records, monkeypatch, 1, ZooError("unreadable image x.png"), consequence=False)
    time.sleep(0.05)
    pid0 = abort_worker(records, 0)  # the peer aborts afterwards (as gloo's terminate() can)
    first = launch.first_failure(failed(r0=(pid0, -6), r1=(4242, 2)), records, logs)
    assert (first["rank"], first["exitcode"], first["words"]) == (1, 2, "unreadable image x.png")
    line = launch._failure_line(first, tmp_path / "run", 2)
    assert line.startswith("worker rank 1 (pid ") and "(its error: unreadable image x.png)" in line, line


def test_a_rank_that_aborted_first_is_named_with_its_last_words_and_where_it_died(tmp_path, folders, monkeypatch):
    records, logs = folders
    pid1 = abort_worker(records, 1)
    time.sleep(0.05)
    record(records, monkeypatch, 0, PeerLost("rank 0: lost a peer process"), consequence=True)
    stderr = logs / "run" / "attempt_0" / "1" / "stderr.log"  # rank 1's redirected standard error
    stderr.parent.mkdir(parents=True)
    stderr.write_text(
        "  epoch 1/2: train_loss 0.5\nterminate called after throwing an instance of 'gloo::IoException'\n"
        "  what():  [pair.cc:589] Connection closed by peer\n"
    )
    first = launch.first_failure(failed(r0=(4141, 2), r1=(pid1, -6)), records, logs)
    assert (first["rank"], first["pid"], first["exitcode"]) == (1, pid1, -6)
    line = launch._failure_line(first, tmp_path / "run", 2)
    assert line.startswith(
        f"worker rank 1 (pid {pid1}) was killed by SIGABRT (its last words: terminate called after throwing an"
        " instance of 'gloo::IoException' | what():  [pair.cc:589] Connection closed by peer | Fatal Python"
        " error: Aborted in destroy_process_group (<string>:7)); the run stopped; no checkpoint"
    ), line


def test_only_the_last_attempts_failures_count(folders, monkeypatch):
    records, logs = folders
    abort_worker(records, 1, attempt=0)  # restarted by --max-restarts: not this attempt's failure
    record(records, monkeypatch, 0, ZooError("no space left on /runs"), consequence=False, attempt=1)
    first = launch.first_failure(failed(r0=(4141, 2)), records, logs)
    assert (first["rank"], first["words"]) == (0, "no space left on /runs")


def test_a_worker_killed_without_a_word_is_memory_that_likely_ran_out(tmp_path, folders, monkeypatch):
    records, logs = folders
    record(records, monkeypatch, 0, PeerLost("rank 0: lost a peer process"), consequence=True)
    first = launch.first_failure(failed(r0=(4141, 2), r1=(4242, -9)), records, logs)
    assert (first["rank"], first["exitcode"]) == (1, -9)
    line = launch._failure_line(first, tmp_path / "run", 4)
    assert "was killed by SIGKILL (memory likely ran out and the kernel stopped it, unless someone" in line, line
    assert "try fewer processes (--nproc 2) or a smaller data.batch_size" in line
    first["oom"] = True  # the kernel's out-of-memory count rose during the run
    line = launch._failure_line(first, tmp_path / "run", 4)
    assert "SIGKILL (the kernel's out-of-memory killer: memory ran out; try fewer processes (--nproc 2)" in line
    first["oom"] = False  # counted, and it did not rise
    line = launch._failure_line(first, tmp_path / "run", 4)
    assert "SIGKILL (not by the kernel's out-of-memory killer: by a user, or a memory watchdog" in line, line
    words = "terminate called after throwing an instance of 'std::bad_alloc'"
    line = launch._failure_line({"rank": 1, "pid": 7, "exitcode": -6, "words": words}, tmp_path / "run", 2)
    assert "std::bad_alloc') (memory ran out: try fewer processes (--nproc 1)" in line, line
    count = capacity.oom_kills()
    assert count is None or count >= 0


def test_an_nproc_the_machine_cannot_hold_is_refused_naming_the_fix():
    gb = 2**30
    capacity.check_capacity(8, cores=2, each=gb // 2, free=8 * gb)  # 4 per core, 4 GB of 8: fine
    with pytest.raises(ZooError) as caught:
        capacity.check_capacity(64, cores=2, each=gb // 2, free=64 * gb)
    assert str(caught.value).startswith("--nproc 64 is far more worker processes than the 2 usable CPU cores")
    assert str(caught.value).endswith("use --nproc 2 (one per core) or fewer")
    with pytest.raises(ZooError) as caught:
        capacity.check_capacity(6, cores=2, each=gb, free=4 * gb)
    assert str(caught.value) == (
        "--nproc 6 needs more than 6.0 GB of memory (at least 1.0 GB per worker process before its model and"
        " data) but 4.0 GB is available; use --nproc 4 or fewer, or free memory"
    )
    assert capacity.resident_bytes() > 10 * 2**20 and capacity.available_bytes() > 0  # this machine's, read


@pytest.mark.attack("distributed")
def test_nproc_64_on_a_small_machine_is_one_line_before_any_worker_starts(tmp_path):
    out = tmp_path / "x"
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(tiny_recipe(tmp_path)), "--nproc", "64", "--out", str(out)]
    proc = subprocess.run(cmd, env=clean_env(MODELZOO_CORES="2"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: --nproc 64 is far more worker processes than the 2 usable CPU cores here (beyond 8 they only wait"
        " for each other, and each holds its own copy of torch, the model and the data in memory); use --nproc 2"
        " (one per core) or fewer"
    ]
    assert not out.exists()


def test_only_the_launchers_workers_prepare_themselves(tmp_path):
    code = (
        "from modelzoo.engine.launch import prepare_worker; prepare_worker(); import faulthandler;"
        " print(faulthandler.is_enabled(), open('/proc/self/oom_score_adj').read().strip())"
    )
    before = Path("/proc/self/oom_score_adj").read_text().strip()
    out = subprocess.run([sys.executable, "-c", code], env=worker_env(), capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", before], out.stderr
    env = {**worker_env(), launch.FAILURE_DIR: str(tmp_path), "RANK": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", str(min(1000, int(before) + launch.OOM_SCORE_ADJ))], out.stderr
    assert [p.name.split("-")[:2] for p in tmp_path.glob("*.fault")] == [["0", "3"]]


def make_cgroup(name: str, controller: str, v1: dict[str, str], v2: dict[str, str]) -> Path | None:
    """A ``controller`` cgroup below this process's own with the first of the ``v1`` / ``v2`` limit files
    written (the others where they exist), or None where this process may not make one (not root, no
    such controller): a real limit without a container."""
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, own = [*line.split(":", 2), "", ""][:3]
        is_v1 = controller in controllers.split(",")
        base = root / controller / own.lstrip("/") if is_v1 else root / own.lstrip("/")
        if not is_v1 and (controllers or controller not in _read(base / "cgroup.subtree_control").split()):
            continue
        group = base / name
        try:
            group.mkdir()
            for n, (file, value) in enumerate((v1 if is_v1 else v2).items()):
                if n == 0 or (group / file).exists():
                    (group / file).write_text(value)
            return group
        except OSError:
            if group.is_dir():
                group.rmdir()
            continue
    return None


def memory_cgroup(name: str, limit: int) -> Path | None:
    """A memory cgroup of ``limit`` bytes (swap included)."""
    v1 = {"memory.limit_in_bytes": str(limit), "memory.memsw.limit_in_bytes": str(limit)}
    return make_cgroup(name, "memory", v1, {"memory.max": str(limit), "memory.swap.max": "0"})


def pids_cgroup(name: str, limit: int | str) -> Path | None:
    """A pids cgroup letting at most ``limit`` tasks (processes and threads) exist (a container's --pids-limit)."""
    return make_cgroup(name, "pids", {"pids.max": str(limit)}, {"pids.max": str(limit)})


def run_in_cgroup(group: Path, cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """``cmd`` run inside the cgroup ``group`` (it joins before it starts), which is removed after."""
    try:
        return subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=lambda: (group / "cgroup.procs").write_text(str(os.getpid())),
        )
    finally:
        for _ in range(50):  # the cgroup empties once the last process of the run is reaped
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@pytest.mark.attack("distributed")
def test_more_workers_than_the_memory_limit_holds_are_refused_before_any_starts(tmp_path):
    """A real limit (a 1.5 GB memory cgroup around the launcher): --nproc 4 cannot fit, so it is refused
    in one line naming the memory and a --nproc that fits, before any worker starts."""
    group = memory_cgroup(f"zoo-test-{os.getpid()}", 1536 * 2**20)
    if group is None:
        pytest.skip("no memory cgroup can be made here (needs root and a memory controller)")
    out = tmp_path / "x"
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(tiny_recipe(tmp_path)), "--nproc", "4", "--out", str(out)]
    proc = run_in_cgroup(group, cmd, clean_env(MODELZOO_CORES="2"), timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: --nproc 4 needs more than ") and " GB is available; " in lines[0], lines[0]
    assert not out.exists()


@pytest.mark.attack("distributed")
def test_a_worker_the_kernel_killed_for_memory_is_said_so(tmp_path):
    """A real out-of-memory kill: the launcher in a 1.75 GB memory cgroup passes the up-front check (each
    worker holds at least what it holds), but each worker's share of the first batch (64 images at
    224 px) needs more; the kernel's out-of-memory killer stops a worker (not the launcher: workers
    are its preferred victims), and the line says so."""
    group = memory_cgroup(f"zoo-oom-{os.getpid()}", 1792 * 2**20)
    if group is None:
        pytest.skip("no memory cgroup can be made here (needs root and a memory controller)")
    cmd, env = nproc2_run(tmp_path, 43, {"image_size": 224, "batch_size": 128}, epochs=1)
    env["MODELZOO_CHANNELS_LAST"] = "0"
    proc = run_in_cgroup(group, cmd, env, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines, proc.stderr
    assert lines[-1].startswith("error: worker rank ") and "was killed by SIGKILL" in lines[-1], proc.stderr
    if capacity.oom_kills() is not None:
        assert "(the kernel's out-of-memory killer: memory ran out; try fewer processes (--nproc 1)" in lines[-1]


def test_a_failure_is_timed_when_it_leaves_the_group_not_when_it_is_recorded(folders, monkeypatch):
    """A failing worker leaves the process group first (its peers then notice), and records its failure
    after: the record carries the earlier moment, so a peer's lost connection never looks older."""
    from modelzoo.engine import distributed

    records, _ = folders
    with pytest.raises(ZooError) as caught:
        try:
            raise ZooError("unreadable image x.png")
        finally:
            distributed.close()  # as finetune() does on the way out
    left = caught.value.failed_at
    time.sleep(0.05)
    record(records, monkeypatch, 1, caught.value, consequence=False)
    assert launch.first_failure(failed(r1=(4242, 2)), records, Path("none"))["words"] == "unreadable image x.png"
    assert [json.loads(p.read_text())["time"] for p in records.glob("*.json")] == [left]


# -- task limits: threads that cannot start (a container's --pids-limit) ----------------------------
def test_a_task_limit_below_what_nproc_starts_is_refused_naming_the_fix(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    capacity._check_tasks(2, 2, (30, 2, "pids.max 30 of cgroup /ci"))  # 2 x (1 + 3) + 4 = 12 of 28: fine
    with pytest.raises(ZooError) as caught:
        capacity._check_tasks(2, 2, (12, 2, "pids.max 12 of cgroup /ci"))
    assert str(caught.value) == (
        "--nproc 2 starts at least 12 threads, but only 10 more may start here (pids.max 12 of cgroup /ci, 2 in"
        " use): raise that limit (a container's --pids-limit, ulimit -u) or use --nproc 1"
    )
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's threads per worker count
    with pytest.raises(ZooError, match=r"--nproc 4 starts at least 32 threads, .* or use --nproc 3$"):
        capacity._check_tasks(4, 16, (30, 0, "ulimit -u 30"))


def nproc2_run(tmp_path: Path, images: int, data: dict, epochs: int) -> tuple[list[str], dict[str, str]]:
    """``zoo finetune --nproc 2`` of a random-init test_convnext on ``images`` colour images (+ ``data``)."""
    write_color_images(tmp_path / "data" / "train", images, seed=0)
    write_color_images(tmp_path / "data" / "val", 2, seed=1)
    recipe = {
        "name": "nproc2",
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(tmp_path / "data"), **data},
        "stages": [{"name": "all", "train": "all", "epochs": epochs}],
    }
    (tmp_path / "nproc2.toml").write_text(tomli_w.dumps(recipe))
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(tmp_path / "nproc2.toml"), "--out", str(tmp_path / "run")]
    env = clean_env(MODELZOO_PLUGINS="classification,timm", MODELZOO_CACHE=str(tmp_path / "cache"))
    env.pop("OMP_NUM_THREADS", None)
    return [*cmd, "--quiet", "--nproc", "2"], env


def _small_run(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    return nproc2_run(tmp_path, 8, {"image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3}, 2)


@pytest.mark.attack("distributed")
def test_nproc_under_a_real_pids_limit_is_one_line_before_any_worker_starts(tmp_path):
    """A pids cgroup of 8 tasks around the launcher (a container's --pids-limit 8): gloo's threads could
    not start, which aborts a worker (SIGABRT) or hangs it in its half-built process group; refused first."""
    group = pids_cgroup(f"zoo-pids-{os.getpid()}", 8)
    if group is None:
        pytest.skip("no pids cgroup can be made here (needs root and a pids controller)")
    cmd, env = _small_run(tmp_path)
    proc = run_in_cgroup(group, cmd, env, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: --nproc 2 starts at least ") and "(pids.max 8 of cgroup /" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.attack("distributed")
def test_a_task_limit_reached_while_the_workers_start_is_named_in_the_line(tmp_path):
    """The limit is reached after the launcher's check (another program takes the tasks): clamped to what
    is in use as soon as both workers exist. The run ends (no hang) with one line saying so."""
    group = pids_cgroup(f"zoo-pids-mid-{os.getpid()}", "max")
    if group is None:
        pytest.skip("no pids cgroup can be made here (needs root and a pids controller)")
    cmd, env = _small_run(tmp_path)
    try:
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: (group / "cgroup.procs").write_text(str(os.getpid())),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(_read(group / "cgroup.procs").split()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        (group / "pids.max").write_text(_read(group / "pids.current").strip())
        _, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
        run_in_cgroup(group, ["true"], env, timeout=30)  # (removes the group)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and lines[-1].startswith("error: "), err
    assert "threads could not start" in lines[-1] and "the task limit was reached (pids.max " in lines[-1], err


WATCHED = """
import subprocess, sys, threading
from pathlib import Path
from modelzoo.engine.capacity import TaskWatch
group = Path(sys.argv[1])
watch = TaskWatch(grace=1.0, poll=0.1)
child = subprocess.Popen(["sleep", "60"])  # a worker that hangs
(group / "pids.max").write_text((group / "pids.current").read_text())
try:
    threading.Thread(target=print).start()
except RuntimeError as exc:
    print("refused:", exc, flush=True)
print("child:", child.wait(timeout=20))
print("cause:", watch.cause())
"""


@pytest.mark.attack("distributed")
def test_workers_that_hang_after_a_thread_was_refused_are_stopped(tmp_path):
    """The launcher's TaskWatch, in a real pids cgroup: once a thread could not start, a child still
    running after the grace period is killed, and the cause says so (a worker stuck in gloo's half-built
    process group would otherwise hang the run until the 10-minute distributed timeout)."""
    group = pids_cgroup(f"zoo-pids-watch-{os.getpid()}", "max")
    if group is None:
        pytest.skip("no pids cgroup can be made here (needs root and a pids controller)")
    proc = run_in_cgroup(group, [sys.executable, "-c", WATCHED, str(group)], clean_env(), timeout=60)
    assert "refused: can't start new thread" in proc.stdout, proc.stdout + proc.stderr
    assert f"child: -{int(signal.SIGKILL)}" in proc.stdout, proc.stdout + proc.stderr
    assert "cause: threads could not start (1 refused): the task limit was reached (pids.max " in proc.stdout
    assert "the workers were stopped after 1 s" in proc.stdout


@pytest.mark.attack("distributed")
def test_nproc_under_a_real_ulimit_u_is_one_line_before_any_worker_starts():
    """``ulimit -u`` (RLIMIT_NPROC) counts every thread of the user, and root is not held to it: the run is
    a real other user (``setpriv``, uid 65534) under ``prlimit --nproc 8``, refused in one line."""
    import shutil
    import stat
    import tempfile

    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("prlimit"):
        pytest.skip("needs root, setpriv and prlimit to run as another user under ulimit -u")
    work = Path(tempfile.mkdtemp(prefix="zoo-ulimit-"))  # in /tmp: pytest's own folders are private
    try:
        cmd, env = nproc2_run(work, 4, {"image_size": 32, "batch_size": 4}, epochs=1)
        for path in [work, *work.rglob("*")]:  # readable by the other user; the run folder writable
            path.chmod(path.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
        work.chmod(0o777)
        env["HOME"] = str(work)
        user = ["prlimit", "--nproc=8", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run([*user, sys.executable, "-c", "import modelzoo"], env=env, cwd=work, capture_output=True)
        if probe.returncode:
            pytest.skip("another user cannot run this environment's python (its folders are private)")
        proc = subprocess.run([*user, *cmd], env=env, cwd=work, capture_output=True, text=True, timeout=120)
        made = (work / "run").exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: --nproc 2 starts at least ") and "(ulimit -u 8, " in lines[0], lines[0]
    assert not made
