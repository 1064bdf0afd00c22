"""Speed settings chosen by measurement: usable cores (affinity, cgroup quota), threads and workers sized
to them, the passive OpenMP wait policy set before torch loads, the channels_last / bf16 measurement
(cached, leaving the model and torch's RNG as they were), and the busy-machine note."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from modelzoo.engine import speed
from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import Trainer
from modelzoo.testing import clean_env, write_color_images
from modelzoo.util import cores


def test_cgroup_quota_caps_the_usable_cores(tmp_path, monkeypatch):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cores.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cores.cgroup_cpu_limit(tmp_path) is None
    monkeypatch.setattr(cores, "cgroup_cpu_limit", lambda: 1.5)
    assert cores.usable_cores() == min(2, len(os.sched_getaffinity(0)))  # 1.5 cores of quota: 2 threads at most
    monkeypatch.setenv("MODELZOO_CORES", "3")
    assert cores.usable_cores() == 3


def test_threads_and_workers_never_exceed_the_cores(monkeypatch):
    cpu = torch.device("cpu")
    assert speed.auto_workers(2, in_memory=False, device=cpu) == 0
    assert speed.auto_workers(16, in_memory=False, device=cpu) == 4
    assert speed.auto_workers(16, in_memory=True, device=cpu) == 0
    monkeypatch.setenv("MODELZOO_CORES", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert speed.process_cores() == 2  # --nproc 2 on 4 cores: 2 each
    env: dict[str, str] = {}
    speed.launch_threads(2, env)
    assert env == {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_NUM_THREADS": "1"}
    speed.launch_threads(2, env)
    assert env["OMP_NUM_THREADS"] == "1"  # the user's choice stands
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert speed.configure_threads(3, 1, cpu) == 2
    finally:
        torch.set_num_threads(before)


def test_passive_wait_policy_is_set_before_torch_loads_unless_the_user_chose():
    code = "import modelzoo, os, sys; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    env = clean_env()
    env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "False"]
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True, text=True
    )
    assert out.stdout.split()[0] == "ACTIVE"
    env_dict: dict[str, str] = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not cores.passive_omp_waits(env_dict) and env_dict["OMP_WAIT_POLICY"] == "ACTIVE"


def test_busy_note_when_the_load_exceeds_the_cores(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (6.8, 5.0, 4.0))
    note = cores.LoadWatch(cores=2).note()
    assert note == "note: load 6.8 on 2 cores: speeds are ~3.4x low; rerun when idle"
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    assert cores.LoadWatch(cores=2).note() is None


@pytest.fixture(scope="module")
def colors(tmp_path_factory):
    root = tmp_path_factory.mktemp("colors")
    write_color_images(root / "train", 4, seed=0)
    write_color_images(root / "val", 2, seed=1)
    return root


def _trainer(colors, tmp_path, **top) -> Trainer:
    recipe = {
        "name": "speed",
        "device": "cpu",
        "task": "image-classification",
        "model": {"backbone": "timm:test_convnext", "pretrained": False},
        "data": {"path": str(colors), "image_size": 32, "batch_size": 4, "mean": [0.5] * 3, "std": [0.5] * 3},
        "stages": [{"name": "tune", "train": "all", "epochs": 1}],
        **top,
    }
    lines: list[str] = []
    t = Trainer(validate(recipe), tmp_path / "run", log=lines.append)
    t.lines = lines
    return t


def test_measurement_is_cached_and_leaves_model_and_rng_alone(colors, tmp_path, monkeypatch):
    monkeypatch.delenv("MODELZOO_CHANNELS_LAST", raising=False)
    t = _trainer(colors, tmp_path)
    calls = []
    real = speed.measure
    monkeypatch.setattr(speed, "measure", lambda *a, **k: calls.append(1) or real(*a, **k))
    t.setup()
    line = next(line for line in t.lines if line.startswith("speed: "))
    # what wins is measured (under load bf16 or NCHW can win a close race), so only the line's form is fixed
    assert re.fullmatch(
        r"speed: cpu, \d+ threads?(, \d+ loader workers?)?, (channels_last|contiguous)( \(.+\))?, (fp32|bf16 autocast)",
        line,
    ), line
    assert t.speed.how == "measured" and calls == [1]
    state = {k: v.clone() for k, v in t.model.state_dict().items()}
    rng = torch.get_rng_state()
    found, how = speed.timings(t.model, t.device, 4, t.speed.threads, speed.cpu_bf16())
    cl = speed.choose(found, True, t.device, None)[0]
    assert calls == [1] and how == "cached"  # read from the user cache this time
    assert cl == t.speed.channels_last
    real(t.model.backbone, [3, 32, 32], 4, t.device, False)
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(v, t.model.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in t.model.parameters())
    t2 = _trainer(colors, tmp_path / "2")
    t2.setup()
    assert t2.speed.how == "cached" and calls == [1]


def test_forced_layout_reaches_the_model_and_the_batches(colors, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_CHANNELS_LAST", "1")
    t = _trainer(colors, tmp_path)
    t.setup()
    assert t.speed.channels_last and t.task.channels_last
    conv = next(m for m in t.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x, _ = next(iter(t.loader(t.task.dataset("val"), shuffle=False)))
    assert t.task.to_device(x).is_contiguous(memory_format=torch.channels_last)
    assert "channels_last (MODELZOO_CHANNELS_LAST)" in next(line for line in t.lines if line.startswith("speed: "))


def test_choice_prefers_measured_gains_and_bf16_only_when_faster():
    cpu = torch.device("cpu")
    slow_cl = {"train": {"contiguous": 100.0, "channels_last": 104.0}, "infer": {}}
    assert speed.choose(slow_cl, True, cpu, None)[:2] == (False, 1.04)
    fast = {"train": {"contiguous": 100.0, "channels_last": 270.0, "channels_last_bf16": 150.0}}
    assert speed.choose(fast, True, cpu, None) == (True, 2.7, None)  # bf16 slower than fp32 channels_last
    bf16 = {"train": {"contiguous": 100.0, "channels_last": 120.0, "channels_last_bf16": 300.0}}
    assert speed.choose(bf16, True, cpu, None)[2] == torch.bfloat16
    plan = speed.SpeedPlan(device="cpu", threads=2, workers=0, channels_last=True, gain=1.9, how="measured")
    assert plan.line() == "speed: cpu, 2 threads, channels_last (1.90x measured), fp32"
