"""Several machines, proven on one: the README's multi-node ``torchrun`` command run as two launchers
(nodes) on 127.0.0.1 sharing one run folder, a node lost mid-epoch, and automatic restarts.

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
TORCHRUN = Path(sys.executable).parent / "torchrun"
EPOCHS = 8  # of the fine-tune stage: long enough to kill a node or a worker mid-stage
ROWS = [(0, 0), (0, 1)] + [(1, e) for e in range(EPOCHS)]


def readme_commands() -> tuple[list[str], list[str]]:
    """The multi-node and the SLURM ``torchrun`` commands of the README's "Scale out" block, as tokens."""
    block = README.read_text().split("## Scale out", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
    multi = shlex.split(next(line for line in lines if line.startswith("torchrun ")))
    srun = shlex.split(next(line for line in lines if line.startswith("srun ")))
    slurm = srun[-1].split()  # the quoted bash -c command; $(...) stays in pieces, flags stay whole
    return multi, slurm


def test_the_slurm_command_passes_torchrun_the_multinode_flags():
    multi, slurm = readme_commands()
    flags = [t for t in multi if t.startswith("--")]
    assert flags == [t for t in slurm if t.startswith("--")]
    tail = ["-m", "modelzoo", "finetune", "RECIPE", "--out", "runs/x"]
    assert multi[multi.index("-m") :] == slurm[slurm.index("-m") :] == tail


def node_command(recipe: Path, run: Path, port: int) -> list[str]:
    """The README's multi-node command with one process per node on 127.0.0.1:``port``."""
    multi, _ = readme_commands()
    values = {"--nproc-per-node": "1", "--rdzv-endpoint": f"127.0.0.1:{port}"}
    cmd, last = [], None
    for token in multi:
        token = values.get(last, token)
        cmd.append({"torchrun": str(TORCHRUN), "RECIPE": str(recipe), "runs/x": str(run)}.get(token, token))
        last = token
    assert cmd[:2] == [str(TORCHRUN), "--nnodes"] and f"127.0.0.1:{port}" in cmd
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
def test_a_lost_node_ends_the_other_in_one_line_and_the_run_resumes_on_one_node(tmp_path, recipe, reference):
    run, port, timeout = tmp_path / "run", free_port(), 20
    a, b = start_nodes(node_command(recipe, run, port), tmp_path, port, MODELZOO_DIST_TIMEOUT=str(timeout))
    try:
        # the node of group rank 0 hosts the workers' store (and node a the rendezvous): the other one dies
        workers = {node: node.worker_env() for node in (a, b)}
        survivor, dying = (a, b) if workers[a][1]["GROUP_RANK"] == "0" else (b, a)
        wait_for_rows(run, 4, [a.proc, b.proc])  # the head stage and 2 of the fine-tune's epochs
        dying.kill()
        start, worker = time.time(), Path(f"/proc/{workers[survivor][0]}/stat")
        while time.time() - start < timeout + 60 and worker.exists() and worker.read_text().split()[2] != "Z":
            time.sleep(0.05)
        took = time.time() - start  # until the survivor's worker ended (its launcher then reports too)
        survivor.proc.wait(timeout=120)
    finally:
        a.stop()
        b.stop()
    err = survivor.err.read_text()
    assert survivor.proc.returncode != 0 and took < timeout + 30, (took, err[-3000:])
    ours = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(ours) == 1, err[-3000:]
    lost = workers[dying][1]["GROUP_RANK"]
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
