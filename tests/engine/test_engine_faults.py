"""The engine under faults: two runs into one folder, a full disk, a loss gone NaN, Ctrl-C and
SIGTERM, ``kill -9`` at random moments (during checkpoint writes too), broken or hostile checkpoints
and feature caches, and ``--out`` folders that are not ours. Each ends in one clear line, keeps the
last good checkpoint, and resumes to the uninterrupted run's exact result."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
import torch

from modelzoo.engine import trainer as engine_mod
from modelzoo.engine.recipe import validate
from modelzoo.engine.runlock import RunLock
from modelzoo.engine.trainer import CHECKPOINT, Trainer, finetune
from modelzoo.errors import ZooError
from modelzoo.testing import clean_env, write_color_images

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colors")
    write_color_images(root / "train", 8, seed=0)
    write_color_images(root / "val", 3, seed=1)
    return root


def recipe_dict(data: Path, tune_epochs: int = 2) -> dict:
    return {
        "name": "faults",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(data), "image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.01},
        "stages": [
            {"name": "head", "train": "head", "epochs": 2},
            {"name": "tune", "train": "all", "epochs": tune_epochs, "lr": 0.003},
        ],
    }


def write_recipe(path: Path, data: Path, **kw) -> Path:
    path.write_text(tomli_w.dumps(recipe_dict(data, **kw)))
    return path


def run_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


# -- the run folder -------------------------------------------------------------------------------
@pytest.mark.attack("run folder")
def test_a_second_run_into_a_folder_in_use_is_refused(data, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    with RunLock(out), pytest.raises(ZooError, match=rf"{out} is in use by another zoo finetune \(pid {os.getpid()}\)"):
        finetune(validate(recipe_dict(data)), out=out, quiet=True)
    finetune(validate(recipe_dict(data)), out=out, quiet=True)  # released: the run goes ahead
    assert (out / "model.safetensors").is_file()


@pytest.mark.attack("run folder")
def test_out_folders_that_are_not_ours(data, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, text in (("config.json", '{"my": 1}'), ("recipe.toml", "mine = 1"), ("metrics.jsonl", "{}")):
        (mine / name).write_text(text)
    with pytest.raises(ZooError, match="is not empty .* pick a new folder or empty it"):
        finetune(validate(recipe_dict(data)), out=mine, quiet=True)
    assert (mine / "config.json").read_text() == '{"my": 1}' and (mine / "recipe.toml").read_text() == "mine = 1"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ZooError, match="is a file; give a folder path"):
        finetune(validate(recipe_dict(data)), out=tmp_path / "file", quiet=True)
    with pytest.raises(ZooError, match="sits under .*file, which is a file"):
        finetune(validate(recipe_dict(data)), out=tmp_path / "file" / "run", quiet=True)
    done = finetune(validate(recipe_dict(data)), out=tmp_path / "done", quiet=True)
    with pytest.raises(ZooError, match="--out cannot move a resumed run"):
        finetune(resume=done.path, out=tmp_path / "elsewhere", quiet=True)


@pytest.mark.attack("run folder")
def test_a_run_that_fails_early_leaves_no_folder(data, tmp_path):
    broken = recipe_dict(data)
    broken["data"]["path"] = str(tmp_path / "no-such-data")
    with pytest.raises(ZooError, match="is not a directory"):
        finetune(validate(broken), out=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


# -- training faults --------------------------------------------------------------------------------
@pytest.mark.attack("training faults")
def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint(data, tmp_path, monkeypatch):
    trainer = Trainer(validate(recipe_dict(data)), tmp_path / "run", quiet=True, checkpoint_every=0)
    (tmp_path / "run").mkdir()
    trainer.setup()
    real = trainer.task.loss
    calls = {"n": 0}

    def nan_on_third_step(model, batch):
        calls["n"] += 1
        loss, n = real(model, batch)
        return (loss * float("nan"), n) if calls["n"] == 3 else (loss, n)

    monkeypatch.setattr(trainer.task, "loss", nan_on_third_step)
    with pytest.raises(ZooError) as info:
        trainer.run()
    message = str(info.value)
    assert message.startswith("epoch 1/2 of stage 1 'tune', step 3: the loss is nan (not finite)")
    assert "Lower the lr" in message and "\n" not in message
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert state["progress"] == {"stage": 0, "epoch": 2}  # the head stage's end, untouched and loadable


@pytest.mark.attack("training faults")
def test_a_full_disk_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    trainer = Trainer(validate(recipe_dict(data)), tmp_path / "run", quiet=True, checkpoint_every=0)
    (tmp_path / "run").mkdir()
    trainer.setup()
    real_save = torch.save

    def disk_full_in_stage_1(obj, f, *a, **kw):
        if isinstance(obj, dict) and obj.get("progress", {}).get("stage") == 1:
            Path(f).write_bytes(b"partial")  # what a full disk leaves: a truncated temp file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(engine_mod.torch, "save", disk_full_in_stage_1)
    with pytest.raises(
        ZooError,
        match=r"cannot write the checkpoint in .* \(disk full: the file system at .* free and it needs more than 7 B\);"
        r" the previous checkpoint is intact",
    ):
        trainer.run()
    monkeypatch.setattr(engine_mod.torch, "save", real_save)
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert state["progress"] == {"stage": 0, "epoch": 2}
    assert not list((tmp_path / "run" / "checkpoint").glob(".*.tmp"))  # no half-written file left


@pytest.mark.attack("files")
def test_broken_checkpoints_are_one_line(data, tmp_path):
    run = finetune(validate(recipe_dict(data)), out=tmp_path / "run", quiet=True)
    (run.path / "model.safetensors").unlink()
    ckpt = run.path / CHECKPOINT
    good = {k: v for k, v in torch.load(ckpt, weights_only=True).items() if k != "sha256"}  # as written before digests
    for broken, expected in (
        ({k: v for k, v in good.items() if k != "model"}, "does not fit this run \\(KeyError"),
        ({**good, "model": {"backbone.model.stem.0.weight": torch.zeros(1)}}, "does not fit this run"),
        (b"not a checkpoint at all", "is unreadable"),
    ):
        if isinstance(broken, bytes):
            ckpt.write_bytes(broken)
        else:
            torch.save(broken, ckpt)
        with pytest.raises(ZooError, match=expected):
            finetune(resume=run.path, quiet=True)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/zoo-pwned-feature-cache",))


@pytest.mark.attack("caches")
def test_a_stale_or_hostile_feature_cache_is_never_used(data, tmp_path, capsys):
    out = tmp_path / "run"
    trainer = Trainer(validate(recipe_dict(data)), out, quiet=False, checkpoint_every=0)
    out.mkdir()
    trainer.setup()
    key = trainer.feature_key()
    (out / "cache").mkdir()
    torch.save({"key": key, "train": torch.zeros(1)}, out / "cache" / "features-stage0.pt")  # the old naming
    torch.save(Evil(), out / "cache" / f"features-{key}.pt")  # under the right name: a malicious pickle
    feats = trainer.cached_features(0)
    assert not Path("/tmp/zoo-pwned-feature-cache").exists()
    assert feats[0].shape[0] == 24  # recomputed from the data, all 24 training images
    assert "ignoring unreadable feature cache" in capsys.readouterr().err
    other = validate({**recipe_dict(data), "seed": 1})
    t2 = Trainer(other, out, quiet=True)
    t2.setup()
    assert t2.feature_key() != key  # other data order, other key: the first run's features are not reused


# -- signals and kills, in real processes -------------------------------------------------------------
def _popen(args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "modelzoo", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background by a non-interactive shell (`pytest &`) ignores SIGINT, and a
        # child inherits that: Python then installs no Ctrl-C handler and the run ignores the signal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.attack("training faults")
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_stop_cleanly_and_resume_exactly(data, tmp_path, sig):
    recipe = write_recipe(tmp_path / "r.toml", data, tune_epochs=30)
    env = clean_env(MODELZOO_CHECKPOINT_SECONDS="0")
    reference = finetune(validate(recipe_dict(data, tune_epochs=30)), out=tmp_path / "ref", quiet=True)
    run = tmp_path / "run"
    proc = _popen(["finetune", recipe, "--out", run, "--quiet"], env)
    deadline = time.time() + 240
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and len(run_rows(run)) >= 4):
        time.sleep(0.02)
    rows_at_signal = len(run_rows(run)) if (run / "metrics.jsonl").exists() else 0
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"rows at the signal: {rows_at_signal}; stdout: {out!r}; stderr: {err!r}"
    assert (
        err.strip().splitlines()[-1]
        == f"error: interrupted; {run} keeps its last checkpoint: continue with zoo finetune --resume {run}"
    )
    resumed = finetune(resume=run, quiet=True)
    assert resumed.metrics == reference.metrics and strip(resumed.history) == strip(reference.history)


@pytest.mark.attack("training faults")
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_random_moments_never_corrupts_and_resumes_exactly(data, tmp_path, seed):
    """Killed three times (the first while a checkpoint is being written, the others at a random moment
    after the run made progress), resumed each time, then run to the end."""
    recipe = write_recipe(tmp_path / "r.toml", data, tune_epochs=6)
    env = clean_env(MODELZOO_CHECKPOINT_SECONDS="0")
    reference = finetune(validate(recipe_dict(data, tune_epochs=6)), out=tmp_path / "ref", quiet=True)
    run = tmp_path / "run"
    rng = random.Random(seed)

    def rows() -> int:
        return len(run_rows(run)) if (run / "metrics.jsonl").exists() else 0

    for kill in range(4):
        args = (
            ["finetune", "--resume", run, "--quiet"]
            if (run / "recipe.toml").exists()
            else ["finetune", recipe, "--out", run, "--quiet"]
        )
        proc = _popen(args, env)
        if kill == 3:  # the last one runs to the end
            break
        before, deadline = rows(), time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            writing = (run / "checkpoint").is_dir() and list((run / "checkpoint").glob(".last.pt.*.tmp"))
            if (kill == 0 and writing) or (kill > 0 and rows() > before):
                break
            time.sleep(0.001)
        if kill > 0:
            time.sleep(rng.uniform(0.0, 0.4))  # somewhere in the next epoch, or its checkpoint
        assert proc.poll() is None, "the run ended before the kill; make the recipe longer"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if (run / CHECKPOINT).exists():  # whatever a kill -9 left behind loads
            torch.load(run / CHECKPOINT, weights_only=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads((run / "summary.json").read_text())["metrics"] == reference.metrics
    assert strip(run_rows(run)) == strip(reference.history)
