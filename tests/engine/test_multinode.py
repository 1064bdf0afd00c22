"""Several machines, proven on one: the README's multi-node command (``zoo finetune --nnodes 2
--rdzv-endpoint ...``, torchrun's c10d rendezvous called in-process) run as two launchers (nodes) on
127.0.0.1 sharing one run folder, a node lost mid-epoch, automatic restarts, and the rendezvous's
faults (a port held by another program, nodes that never come, nobody hosting), each one line.

Equivalence tolerance, as in test_distributed.py: the model has no BatchNorm or dropout (timm
``test_convnext``: LayerNorm), so two processes and one see the same global batches with the same
weights and differ only by floating-point summation order: |Δloss| <= 1e-3, |Δaccuracy| <= 1e-6.

Who wrote what: node a runs with ``umask 022``, node b with ``umask 077`` (the rendezvous decides
which holds global rank 0); every file and folder of the run must carry rank 0's node's permissions.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from modelzoo.hub.card import build_card
from modelzoo.testing import child_pids, clean_env, free_port, write_color_images

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
ZOO = str(Path(sys.executable).parent / "zoo")
EPOCHS = 8  # of the fine-tune stage: long enough to kill a node or a worker mid-stage
ROWS = [(0, 0), (0, 1)] + [(1, e) for e in range(EPOCHS)]


def readme_commands() -> tuple[list[str], list[str], list[str]]:
    """The multi-node, SLURM and plain-torchrun commands of the README's "Scale out" block, as tokens."""
    block = README.read_text().split("## Scale out", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
    multi = shlex.split(next(line for line in lines if line.startswith("zoo ") and "--nnodes" in line))
    srun = shlex.split(next(line for line in lines if line.startswith("srun ")))
    slurm = srun[-1].split()  # the quoted bash -c command; $(...) stays in pieces, flags stay whole
    torchrun = shlex.split(next(line for line in lines if line.startswith("torchrun ")))
    return multi, slurm, torchrun


def test_the_slurm_command_passes_the_multinode_flags():
    multi, slurm, _ = readme_commands()
    flags = [t for t in multi if t.startswith("--")]
    assert [t for t in slurm if t.startswith("--") and t != "--rdzv-id"] == flags  # + the job's id
    assert multi[:3] == slurm[:3] == ["zoo", "finetune", "RECIPE"] and multi[-2:] == slurm[-2:] == ["--out", "runs/x"]


def test_zoo_gives_torchrun_the_flags_of_the_readme_torchrun_command(tmp_path):
    """``--nnodes`` is torchrun's c10d rendezvous: the README's plain torchrun form says the same."""
    from modelzoo.engine.rendezvous import parse_nodes

    _, _, torchrun = readme_commands()
    nodes = parse_nodes(2, "HOST:29500", "x", tmp_path / "x")
    ours = nodes.flags(600)
    theirs = torchrun[1 : torchrun.index("-m")]
    for flag in ("--nnodes", "--rdzv-backend", "--rdzv-endpoint", "--rdzv-id"):
        assert ours[ours.index(flag) + 1] == theirs[theirs.index(flag) + 1], flag
    assert ours[ours.index("--rdzv-conf") + 1] == "join_timeout=600,read_timeout=60"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--nnodes", "2"], "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
        (["--nnodes", "0", "--rdzv-endpoint", "h:1"], "--nnodes must be a whole number >= 1"),
        (["--rdzv-endpoint", "h:1"], "--nnodes must be a whole number >= 1"),
        (["--nnodes", "2", "--rdzv-endpoint", "h"], "is not HOST:PORT"),
        (["--nnodes", "2", "--rdzv-endpoint", "h:99999"], "is not HOST:PORT"),
        (["--nnodes", "2", "--rdzv-endpoint", "h:1", "--rdzv-id", "a/b"], "--rdzv-id 'a/b' must be letters"),
        (["--nnodes", "2", "--rdzv-endpoint", "no-such-host.invalid:29500"], "does not resolve"),
    ],
)
def test_bad_multinode_flags_are_one_line(tmp_path, recipe, flags, words):
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(recipe), "--out", str(tmp_path / "run"), *flags]
    proc = subprocess.run(cmd, env=env(tmp_path / "cache"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and words in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


def test_several_nodes_need_a_shared_run_folder(tmp_path, recipe):
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(recipe), "--nnodes", "2", "--rdzv-endpoint", "h:1"]
    proc = subprocess.run(cmd, env=env(tmp_path / "cache"), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: several nodes write one run folder: give --out")


def node_command(recipe: Path, run: Path, port: int) -> list[str]:
    """The README's multi-node command with one process per node on 127.0.0.1:``port``."""
    multi, _, _ = readme_commands()
    values = {"--nproc": "1", "--rdzv-endpoint": f"127.0.0.1:{port}"}
    cmd, last = [], None
    for token in multi:
        token = values.get(last, token)
        cmd.append({"zoo": ZOO, "RECIPE": str(recipe), "runs/x": str(run)}.get(token, token))
        last = token
    assert cmd[:4] == [ZOO, "finetune", str(recipe), "--nnodes"] and f"127.0.0.1:{port}" in cmd
    return cmd


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multinode")
    write_color_images(root / "colors" / "train", 12, seed=0)
    write_color_images(root / "colors" / "val", 4, seed=1)
    recipe = {
        "name": "nodes",
        "task": "image-classification",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(root / "colors"), "image_size": 32, "batch_size": 10, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.01, "layer_decay": 0.5},
        "stages": [
            {"name": "head", "train": "head", "epochs": 2},
            {"name": "tune", "train": "all", "epochs": EPOCHS, "lr": 0.003},
        ],
    }
    path = root / "nodes.toml"
    path.write_text(tomli_w.dumps(recipe))
    return path


def env(cache: Path, **extra: str) -> dict[str, str]:
    """A node's environment: its own cache (as on its own machine), a checkpoint after every epoch, and
    only the plugins the recipe needs (each of the many processes starts faster)."""
    return clean_env(
        MODELZOO_PLUGINS="classification,timm",
        MODELZOO_CACHE=str(cache),
        MODELZOO_CHECKPOINT_SECONDS="0",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )


@pytest.fixture(scope="module")
def reference(recipe) -> dict:
    """One process, uninterrupted: the metrics every multi-process run must reach."""
    run = recipe.parent / "reference"
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(recipe), "--out", str(run), "--quiet"]
    proc = subprocess.run(cmd, env=env(recipe.parent / "cache-ref"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {"summary": summary(run), "files": sorted(p.name for p in run.iterdir())}


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def same_metrics(want: dict, got: dict) -> bool:
    return abs(want["loss"] - got["loss"]) <= 1e-3 and abs(want["accuracy"] - got["accuracy"]) <= 1e-6


class Node:
    """One node: a torchrun launcher in a session of its own, its output in files."""

    def __init__(self, name: str, cmd: list[str], root: Path, umask: int, **extra: str) -> None:
        self.name, self.out, self.err = name, root / f"{name}.out", root / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                cmd,
                env=env(root / f"cache-{name}", **extra),
                stdout=out,
                stderr=err,
                umask=umask,
                start_new_session=True,
            )

    def worker_env(self, deadline: float = 120) -> tuple[int, dict[str, str]]:
        """The pid and environment of this node's worker (torchrun sets RANK, GROUP_RANK...)."""
        end = time.time() + deadline
        while time.time() < end and self.proc.poll() is None:
            for pid in child_pids(self.proc.pid):
                try:
                    items = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                found = dict(item.decode(errors="replace").split("=", 1) for item in items if b"=" in item)
                if "RANK" in found:
                    return pid, found
            time.sleep(0.05)
        raise AssertionError(f"node {self.name} started no worker: {self.err.read_text()[-2000:]}")

    def kill(self) -> None:
        """The node dies: its launcher and its workers, at once (as when the machine goes down)."""
        workers = child_pids(self.proc.pid)
        for pid in [self.proc.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


def start_nodes(cmd: list[str], root: Path, port: int, **extra: str) -> tuple[Node, Node]:
    """Node a first (it hosts the rendezvous store on ``port``), then node b."""
    a = Node("a", cmd, root, 0o022, **extra)
    end = time.time() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > end or a.proc.poll() is not None:
                a.stop()
                raise AssertionError(f"node a never listened on {port}: {a.err.read_text()[-2000:]}") from None
            time.sleep(0.05)
    return a, Node("b", cmd, root, 0o077, **extra)


def wait_for_rows(run: Path, rows: int, procs: list[subprocess.Popen], deadline: float = 240) -> None:
    end = time.time() + deadline
    metrics = run / "metrics.jsonl"
    while time.time() < end and all(p.poll() is None for p in procs):
        if metrics.exists() and len(metrics.read_text().splitlines()) >= rows:
            return
        time.sleep(0.01)
    raise AssertionError(f"the run ended or stalled before writing {rows} epochs; make the recipe longer")


def test_two_nodes_train_like_one_process_and_only_global_rank_zero_writes(tmp_path, recipe, reference):
    run, port = tmp_path / "run", free_port()
    a, b = start_nodes(node_command(recipe, run, port), tmp_path, port)
    try:
        ranks = {node.name: node.worker_env()[1] for node in (a, b)}
        for node in (a, b):
            assert node.proc.wait(timeout=300) == 0, node.err.read_text()[-3000:]
    finally:
        a.stop()
        b.stop()
    assert {r["WORLD_SIZE"] for r in ranks.values()} == {"2"}
    assert sorted(r["RANK"] for r in ranks.values()) == ["0", "1"]
    # one voice: the node of global rank 0 prints the result, the other nothing
    main = a if ranks["a"]["RANK"] == "0" else b
    other = b if main is a else a
    assert main.out.read_text().count("run ") == 1 and other.out.read_text() == ""
    # only global rank 0 wrote: the same files as one process writes, each with its node's permissions
    assert sorted(p.name for p in run.iterdir()) == reference["files"]
    private = main is b  # node b runs with umask 077: its files are 0600, its folders 0700
    for path in [run, *run.rglob("*")]:
        assert (path.stat().st_mode & 0o077 == 0) == private, f"{path} was not written by global rank 0's node"
    got = summary(run)
    assert got["processes"] == 2 and reference["summary"]["processes"] == 1
    assert same_metrics(reference["summary"]["metrics"], got["metrics"]), (reference["summary"]["metrics"], got)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in rows] == ROWS
    config = json.loads((run / "config.json").read_text())
    card = build_card("org/nodes", config, {p.name: p for p in run.iterdir() if p.is_file()}, summary=got)
    assert "Trained by 2 processes" in card


@pytest.mark.attack("distributed")
@pytest.mark.parametrize("dying", ["b", "a"], ids=["a-node", "the-rendezvous-host"])
def test_a_lost_node_ends_the_other_in_one_line_and_the_run_resumes_on_one_node(tmp_path, recipe, reference, dying):
    """Node a hosts the rendezvous (it started first), the node of group rank 0 the workers' store: when
    node a dies, the survivor's launcher loses the rendezvous too, and whichever sees it first says so."""
    run, port, timeout = tmp_path / "run", free_port(), 20
    a, b = start_nodes(node_command(recipe, run, port), tmp_path, port, MODELZOO_DIST_TIMEOUT=str(timeout))
    try:
        workers = {node: node.worker_env() for node in (a, b)}
        dying, survivor = (b, a) if dying == "b" else (a, b)
        wait_for_rows(run, 4, [a.proc, b.proc])  # the head stage and 2 of the fine-tune's epochs
        dying.kill()
        start = time.time()
        survivor.proc.wait(timeout=timeout + 60)
        took = time.time() - start
    finally:
        a.stop()
        b.stop()
    err = survivor.err.read_text()
    assert survivor.proc.returncode != 0 and took < timeout + 30, (took, err[-3000:])
    ours = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(ours) == 1 and err.strip().splitlines()[-1] == ours[0], err[-3000:]  # nothing after it (torchrun's)
    lost = workers[dying][1]["GROUP_RANK"]
    if dying is a and "lost the rendezvous" in ours[0]:
        assert ours[0].startswith(f"error: lost the rendezvous at 127.0.0.1:{port} ("), ours[0]
        assert "the node on 127.0.0.1 that hosts it stopped or cannot be reached; the run stopped" in ours[0]
        assert (
            f"the last checkpoint in {run} is intact; continue with: zoo finetune --resume {run} --nproc 1" in ours[0]
        )
    else:
        assert f"lost node {lost} (" in ours[0] and "stopped answering" in ours[0], ours[0]
        assert ours[0].endswith(f"the last checkpoint in {run} is intact; continue with: zoo finetune --resume {run}")
    assert not (run / "model.safetensors").exists()

    cmd = [sys.executable, "-m", "modelzoo", "finetune", "--resume", str(run), "--quiet"]
    resumed = subprocess.run(
        cmd, env=env(tmp_path / f"cache-{survivor.name}"), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert same_metrics(reference["summary"]["metrics"], summary(run)["metrics"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in rows] == ROWS


@pytest.mark.attack("distributed")
def test_max_restarts_resume_after_a_dead_worker_with_the_metrics_of_an_uninterrupted_run(tmp_path, recipe, reference):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(recipe), "--out", str(run)]
    proc = subprocess.Popen(
        [*cmd, "--nproc", "2", "--max-restarts", "1"],
        env=env(tmp_path / "cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_rows(run, 4, [proc])
        workers = child_pids(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[-1], signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "resuming " in err and out.count("run ") == 1, err[-3000:]
    assert [line for line in err.splitlines() if line.startswith("error:")] == []
    assert same_metrics(reference["summary"]["metrics"], summary(run)["metrics"])
    assert summary(run)["processes"] == 2
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in rows] == ROWS


@pytest.mark.attack("distributed")
def test_max_restarts_on_two_nodes_resume_everywhere_after_one_worker_died(tmp_path, recipe, reference):
    """Only the node whose worker died counts a restart (torchrun's TORCHELASTIC_RESTART_COUNT); the other
    node's launcher restarts its workers too, and both must resume alike from the last checkpoint."""
    run, port = tmp_path / "run", free_port()
    cmd = [*node_command(recipe, run, port), "--max-restarts", "1"]
    a, b = start_nodes(cmd, tmp_path, port, MODELZOO_DIST_TIMEOUT="60")
    try:
        b_worker, _ = b.worker_env()
        wait_for_rows(run, 4, [a.proc, b.proc])
        os.kill(b_worker, signal.SIGKILL)
        for node in (a, b):
            assert node.proc.wait(timeout=240) == 0, node.err.read_text()[-3000:]
    finally:
        a.stop()
        b.stop()
    errs = a.err.read_text() + b.err.read_text()
    assert "resuming " in errs and [line for line in errs.splitlines() if line.startswith("error")] == [], errs[-3000:]
    assert (a.out.read_text() + b.out.read_text()).count("run ") == 1
    got = summary(run)
    assert got["processes"] == 2 and same_metrics(reference["summary"]["metrics"], got["metrics"]), got
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in rows] == ROWS


def open_files(pid: int) -> list[str]:
    """What process ``pid`` holds open (Linux ``/proc``)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.append(os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
    return found


@pytest.mark.attack("distributed")
def test_the_launcher_names_the_rank_that_raised_first_in_its_own_words(tmp_path, recipe):
    """Rank 1 alone evaluates the last validation image (its share of the examples); the image goes bad
    mid-run, so rank 1 raises at the next evaluation and rank 0 then loses its peer: the one line is
    rank 1's own error, not rank 0's lost connection. (A worker that aborts instead leaves its stack in
    the fault file every worker holds open, checked here; test_launch_failures.py aborts one for real.)"""
    data = tmp_path / "colors"
    shutil.copytree(recipe.parent / "colors", data)
    spec = tomllib.loads(recipe.read_text())
    spec["data"]["path"] = str(data)
    own = tmp_path / "own.toml"
    own.write_text(tomli_w.dumps(spec))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(own), "--out", str(run), "--quiet", "--nproc", "2"]
    proc = subprocess.Popen(cmd, env=env(tmp_path / "cache"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_rows(run, 2, [proc])  # the head stage: the fine-tune's evaluations are still to come
        workers = child_pids(proc.pid)
        assert len(workers) == 2, workers
        for pid in workers:  # each worker prepared itself: its fault file open for a fatal signal's stack
            held = open_files(pid)
            assert any(path.endswith(f"-{pid}.fault") for path in held), held
        bad = sorted((data / "val").rglob("*.png"))[-1]  # the last example: rank 1's share
        (bad.parent / "broken").write_bytes(b"not a PNG any more")
        os.replace(bad.parent / "broken", bad)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # rank 0's lost peer is not a second line
    assert lines[0].startswith("error: worker rank 1 (pid ") and "stopped with exit code 2 (its error: " in lines[0]
    assert f"unreadable image {bad}" in lines[0], lines[0]
    assert lines[0].endswith(f"continue with: zoo finetune --resume {run} --nproc 2"), lines[0]


def alone(tmp_path: Path, recipe: Path, port: int, timeout: int = 5) -> tuple[subprocess.CompletedProcess, float]:
    """One node of two, started alone on 127.0.0.1:``port``: its output and how long it took."""
    cmd = node_command(recipe, tmp_path / "run", port)
    start = time.time()
    proc = subprocess.run(
        cmd,
        env=env(tmp_path / "cache", MODELZOO_DIST_TIMEOUT=str(timeout)),
        capture_output=True,
        text=True,
        timeout=240,
    )
    return proc, time.time() - start


@pytest.mark.attack("distributed")
def test_a_rendezvous_port_held_by_another_program_is_one_line(tmp_path, recipe):
    """A program on the port that accepts connections and never answers: torch's client would wait for
    its handshake forever."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(8)
        port = held.getsockname()[1]
        proc, took = alone(tmp_path, recipe, port)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr[-3000:]
    assert (
        f"another program holds port {port} on 127.0.0.1; give every node another --rdzv-endpoint port" in proc.stderr
    )
    assert took < 60, took
    assert not (tmp_path / "run").exists()


@pytest.mark.attack("distributed")
def test_nodes_that_never_come_are_one_line_after_the_timeout(tmp_path, recipe):
    proc, took = alone(tmp_path, recipe, free_port(), timeout=5)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr[-3000:]
    assert "waited 5 s for 2 nodes and not all came: start the command on every node" in proc.stderr
    assert took < 60, took


@pytest.mark.attack("distributed")
def test_a_rendezvous_nobody_hosts_is_one_line(tmp_path, recipe):
    """The port is taken on the host (bound, not listening): this node cannot host the store, and nobody
    answers there."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        proc, took = alone(tmp_path, recipe, port, timeout=5)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr[-3000:]
    line = proc.stderr.strip()
    assert line.startswith(f"error: could not reach the rendezvous at 127.0.0.1:{port}") or line.startswith(
        f"error: no rendezvous answered at 127.0.0.1:{port} within 5 s"
    ), line
    assert "start the command on 127.0.0.1 too" in line and took < 90, (took, line)
