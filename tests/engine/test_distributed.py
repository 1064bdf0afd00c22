"""Several processes train like one: the global batch, gathered evaluation, rank-0-only writes,
resume across world sizes, and failures that end in one line (gloo on this CPU).

Equivalence tolerance: on a model without BatchNorm or dropout (timm ``test_convnext``: LayerNorm),
2 processes and 1 see the same global batches with the same weights, so their metrics differ only by
floating-point summation order: we require |Δloss| <= 1e-3 and |Δaccuracy| <= 1e-6 (the same hits).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
import torch
from torch.utils.data import DataLoader

from modelzoo.engine.distributed import GlobalBatchSampler, ShareSampler, World, shuffled_order
from modelzoo.testing import child_pids, clean_env, write_color_images

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("n", "batch"), [(36, 8), (7, 3), (5, 8)])
def test_one_process_sees_exactly_what_a_shuffling_dataloader_would(n, batch):
    loader = DataLoader(list(range(n)), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(11))
    seen = [b.tolist() for b in loader]
    assert seen == GlobalBatchSampler(n, batch, World(), seed=11).batches
    assert shuffled_order(n, 11) == [i for b in seen for i in b]


@pytest.mark.parametrize("size", [2, 3, 5])
def test_shares_partition_every_global_batch_and_weights_average_to_it(size):
    n, batch = 23, 8
    samplers = [GlobalBatchSampler(n, batch, World(rank=r, size=size), seed=3) for r in range(size)]
    globals_ = GlobalBatchSampler(n, batch, World(), seed=3).batches
    for step, chunk in enumerate(globals_):
        got = []
        for s in samplers:
            if s.weights[step]:  # each example's share of the averaged gradient is 1 / len(global batch)
                got += s.batches[step]
                assert s.weights[step] / (size * len(s.batches[step])) == pytest.approx(1 / len(chunk))
            else:  # an empty share runs one example with weight 0
                assert len(s.batches[step]) == 1
        assert got == chunk  # every example of the global batch exactly once, in order
    shares = [ShareSampler(10, World(rank=r, size=3)).indices for r in range(3)]
    assert shares == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def _recipe(tmp_path: Path, epochs: int = 2) -> Path:
    data = tmp_path / "colors"
    write_color_images(data / "train", 12, seed=0)
    write_color_images(data / "val", 4, seed=1)
    recipe = {
        "name": "ddp",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(data), "image_size": 32, "batch_size": 10, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.01, "layer_decay": 0.5},
        "stages": [
            {"name": "head", "train": "head", "epochs": 2},
            {"name": "tune", "train": "all", "epochs": epochs, "lr": 0.003},
        ],
    }
    path = tmp_path / "ddp.toml"
    path.write_text(tomli_w.dumps(recipe))
    return path


def zoo(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelzoo", *map(str, args)],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_two_processes_reach_the_metrics_of_one(tmp_path):
    recipe = _recipe(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    single = zoo("finetune", recipe, "--out", one, "--quiet")
    assert single.returncode == 0, single.stderr
    # its own cache: the two processes compute the cached features themselves (each its share)
    double = zoo(
        "finetune", recipe, "--out", two, "--quiet", "--nproc", "2", env=clean_env(MODELZOO_CACHE=str(tmp_path / "c2"))
    )
    assert double.returncode == 0, double.stderr
    assert double.stdout.count("run ") == 1  # one voice: rank 0's
    a, b = summary(one), summary(two)
    assert b["processes"] == 2 and a["processes"] == 1
    assert abs(a["metrics"]["loss"] - b["metrics"]["loss"]) <= 1e-3
    assert abs(a["metrics"]["accuracy"] - b["metrics"]["accuracy"]) <= 1e-6
    rows_a = [json.loads(line) for line in (one / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (two / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows_a] == [r["epoch"] for r in rows_b]
    for ra, rb in zip(rows_a, rows_b):
        assert abs(ra["train_loss"] - rb["train_loss"]) <= 1e-3, (ra, rb)
    # only rank 0 wrote: the same files as a single process writes
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())


def wait_for_rows(run: Path, rows: int, proc: subprocess.Popen, deadline: float = 240) -> None:
    end = time.time() + deadline
    metrics = run / "metrics.jsonl"
    while time.time() < end and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= rows:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run ended or stalled before writing {rows} epochs; make the recipe longer")


@pytest.mark.attack("distributed")
def test_resume_across_world_sizes_and_a_killed_worker(tmp_path):
    """1 process, killed -> resumed with 2, a worker killed -> resumed with 1: the same final metrics."""
    recipe = _recipe(tmp_path, epochs=8)
    env = clean_env(MODELZOO_CHECKPOINT_SECONDS="0")  # a checkpoint after every epoch, however fast
    reference = zoo("finetune", recipe, "--out", tmp_path / "reference", "--quiet", env=env)
    assert reference.returncode == 0, reference.stderr
    run = tmp_path / "run"

    cmd = [sys.executable, "-m", "modelzoo", "finetune", str(recipe), "--out", str(run), "--quiet"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_rows(run, 4, first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()

    cmd = [sys.executable, "-m", "modelzoo", "finetune", "--resume", str(run), "--quiet", "--nproc", "2"]
    second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(run, 6, second)
    workers = child_pids(second.pid)
    assert len(workers) == 2, workers
    os.kill(workers[-1], signal.SIGKILL)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: worker rank ") and "was killed by SIGKILL" in last, err
    assert f"continue with: zoo finetune --resume {run} --nproc 2" in last
    assert not (run / "model.safetensors").exists()

    resumed = zoo("finetune", "--resume", run, "--quiet", env=env)
    assert resumed.returncode == 0, resumed.stderr
    want, got = summary(tmp_path / "reference")["metrics"], summary(run)["metrics"]
    assert abs(want["loss"] - got["loss"]) <= 1e-3 and abs(want["accuracy"] - got["accuracy"]) <= 1e-6
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in rows] == [(0, 0), (0, 1)] + [(1, e) for e in range(8)]


@pytest.mark.attack("distributed")
def test_a_port_in_use_or_an_unreachable_rendezvous_is_one_line(tmp_path):
    recipe = _recipe(tmp_path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        base = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MODELZOO_DIST_TIMEOUT": "2"}
        for rank, where in (("0", port), ("1", port + 1 if port < 65535 else port - 1)):
            env = clean_env(**base, RANK=rank, LOCAL_RANK=rank, MASTER_PORT=str(where))
            start = time.time()
            proc = zoo("finetune", recipe, "--out", tmp_path / f"r{rank}", "--quiet", env=env, timeout=120)
            assert proc.returncode == 2
            assert time.time() - start < 60  # a timeout, not a hang
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"error: rank {rank} could not join the gloo process group")
            fix = (  # the endpoint and what to do about it
                f"port {port} on 127.0.0.1 is in use by another program: pick a free port"
                if rank == "0"
                else f"nobody answered at 127.0.0.1:{where} within 2 s: check that 127.0.0.1 is up and reachable"
            )
            assert fix in lines[0], lines[0]
    finally:
        busy.close()


@pytest.mark.attack("distributed")
def test_nproc_errors(tmp_path):
    recipe = _recipe(tmp_path)
    proc = zoo("finetune", recipe, "--nproc", "0")
    assert (
        proc.returncode == 2
        and proc.stderr.strip() == "error: --nproc must be a whole number >= 1 (worker processes on this machine)"
    )
    proc = zoo("finetune", recipe, "--nproc", "2", env=clean_env(WORLD_SIZE="1", RANK="0"))
    assert proc.returncode == 2 and "already started by torchrun" in proc.stderr
    proc = zoo("finetune", recipe, "--nproc", "2", "--set", "data.batch_size=1")
    assert proc.returncode == 2 and "data.batch_size 1 is the global batch" in proc.stderr
