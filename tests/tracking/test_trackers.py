"""Experiment trackers on a real tiny fine-tune: TensorBoard event files read back with TensorBoard's
own reader, MLflow in its local store and behind a real ``mlflow server`` on 127.0.0.1, a tracker that
fails (a dead server, a plugin's tracker that raises, one not installed) as one warning, and a resumed
run continuing the same tracker runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import Interrupted, Trainer, finetune
from modelzoo.errors import RecipeError, ZooError
from modelzoo.testing import free_port, write_color_images
from modelzoo.tracking import check_backends

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colors")
    write_color_images(root / "train", 6, seed=0)
    write_color_images(root / "val", 3, seed=1)
    return root


def recipe(folder: Path, backends: list[str]) -> dict:
    return {
        "name": "tracked",
        "task": "image-classification",
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False},
        "data": {"path": str(folder), "image_size": 32, "batch_size": 8, "num_workers": 0},
        "stages": [
            {"name": "head", "train": "head", "epochs": 2},
            {"name": "tune", "train": "last:1", "epochs": 1, "lr": 0.005},
        ],
        "tracking": {"backends": backends},
    }


def events(logdir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_event_files_hold_every_epoch_the_plots_and_hparams(folder, tmp_path, capsys):
    run = finetune(validate(recipe(folder, ["tensorboard"])), out=tmp_path / "run", quiet=True)
    assert "warning" not in capsys.readouterr().err
    acc = events(run.path / "tensorboard")
    history = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
        logged = acc.Scalars(key)
        assert [e.step for e in logged] == [1, 2, 3]
        assert [e.value for e in logged] == pytest.approx([row[key] for row in history], rel=1e-5)
    tags = acc.Tags()
    assert {"lr/head", "lr/backbone.group5", "final/accuracy"} <= set(tags["scalars"])
    assert acc.Scalars("final/accuracy")[0].value == pytest.approx(run.metrics["accuracy"])
    assert {"training_curves", "confusion_matrix"} <= set(tags["images"])
    assert acc.Images("confusion_matrix")[0].encoded_image_string.startswith(b"\x89PNG")
    assert acc.PluginTagToContent("hparams")  # the HParams dashboard's row: settings + final metrics
    state = json.loads((run.path / "tracking.json").read_text())
    assert state["trackers"]["tensorboard"]["step"] == 3
    assert "tracking" not in (run.path / "recipe.toml").read_text()  # how a run is watched, not what it trains


def mlflow_runs(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("modelzoo")
    return client, client.search_runs([experiment.experiment_id])


def test_mlflow_local_store_and_a_resumed_run_continue_the_same_tracker_runs(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default store: ./mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    real_stage = Trainer.run_stage

    def stop_in_stage_one(self, si, *args, **kwargs):
        if si == 1:
            raise KeyboardInterrupt  # Ctrl-C after stage 0 was checkpointed
        return real_stage(self, si, *args, **kwargs)

    monkeypatch.setattr(Trainer, "run_stage", stop_in_stage_one)
    with pytest.raises(Interrupted):
        finetune(validate(recipe(folder, ["mlflow", "tensorboard"])), out=out, quiet=True)
    monkeypatch.setattr(Trainer, "run_stage", real_stage)
    uri = "sqlite:///" + str((tmp_path / "mlruns" / "mlflow.db").resolve())
    client, runs = mlflow_runs(uri)
    (first,) = runs
    assert first.info.status == "KILLED"
    state = json.loads((out / "tracking.json").read_text())["trackers"]
    assert state["mlflow"] == {"id": first.info.run_id, "step": 2}

    run = finetune(resume=out, quiet=True)  # the saved recipe holds no [tracking]: tracking.json does
    assert "warning" not in capsys.readouterr().err
    client, runs = mlflow_runs(uri)
    (again,) = runs
    assert again.info.run_id == first.info.run_id and again.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(again.info.run_id, "val_accuracy")]
    assert steps == [1, 2, 3]  # each epoch once: nothing replayed twice, nothing lost
    assert again.data.params["model.backbone"] == "timm:test_convnext"
    assert again.data.metrics["final/accuracy"] == pytest.approx(run.metrics["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(again.info.run_id)}
    assert {"model.safetensors", "config.json", "metrics.jsonl", "confusion_matrix.png"} <= artifacts
    assert not artifacts & {"checkpoint", "cache", "tensorboard", "tracking.json"}
    assert [e.step for e in events(out / "tensorboard").Scalars("val_accuracy")] == [1, 2, 3]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 (a free port, its own database and artifact folder)."""
    import urllib.request

    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(root / "server.log", "wb")
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}", "--artifacts-destination", str(root / "art")]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_mlflow_server_gets_params_metrics_and_the_run_folder(folder, tmp_path, mlflow_server, zoo_subprocess_env):
    from modelzoo.testing import zoo_subprocess

    path = tmp_path / "recipe.toml"
    import tomli_w

    raw = recipe(folder, [])
    raw.pop("tracking")
    path.write_text(tomli_w.dumps(raw))
    env = {**zoo_subprocess_env, "MLFLOW_TRACKING_URI": mlflow_server, "OMP_NUM_THREADS": "1"}
    proc = zoo_subprocess("finetune", str(path), "--out", str(tmp_path / "run"), "--track", "mlflow", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # stdout stays zoo's: MLflow's "View run" links went to stderr
    assert "warning" not in proc.stderr
    client, runs = mlflow_runs(mlflow_server)
    (run,) = [r for r in runs if r.info.run_name == "run"]
    assert run.info.status == "FINISHED"
    assert run.data.params["stages.1.train"] == "last:1"
    assert run.data.metrics["final/accuracy"] == pytest.approx(summary["metrics"]["accuracy"])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2, 3]
    assert "model.safetensors" in {a.path for a in client.list_artifacts(run.info.run_id)}


@pytest.fixture
def zoo_subprocess_env(warm_cli_env):
    return dict(warm_cli_env)


FLAKY = """
from modelzoo.sdk import Tracker, TrackerSpec, hookimpl


@hookimpl
def modelzoo_trackers():
    return [TrackerSpec(name="flaky", builder="zt_flaky:Flaky")]


class Flaky(Tracker):
    def start(self, run, resume_id=None):
        return "flaky-1"

    def log_metrics(self, step, metrics):
        raise ConnectionError("the flaky server hung up")
"""


def test_a_failing_tracker_is_one_warning_and_the_run_goes_on(folder, tmp_path, monkeypatch, capsys, fake_site):
    fake_site.plugin("flaky", FLAKY)
    port = free_port()  # nothing listens there: a server that is down
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    run = finetune(
        validate(recipe(folder, ["flaky", "ghost", "mlflow", "tensorboard"])), out=tmp_path / "r", quiet=True
    )
    assert run.metrics["accuracy"] >= 0 and (run.path / "model.safetensors").is_file()
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, warnings
    assert any("tracker flaky failed (ConnectionError: the flaky server hung up)" in w for w in warnings)
    assert any("tracker 'ghost' is not installed" in w for w in warnings)
    assert any("tracker mlflow failed" in w for w in warnings)
    assert [e.step for e in events(run.path / "tensorboard").Scalars("val_loss")] == [1, 2, 3]  # the others go on


def test_tracker_names_are_checked(folder):
    with pytest.raises(ZooError, match=r"unknown tracker 'tensorbord'; did you mean: tensorboard"):
        check_backends(["tensorbord"])
    with pytest.raises(RecipeError, match=r"tracking.backends: 'ml flow' is not a tracker name"):
        validate(recipe(folder, ["ml flow"]))
    with pytest.raises(RecipeError, match=r"tracking.backend: unknown field"):
        validate({**recipe(folder, []), "tracking": {"backend": ["mlflow"]}})
    watched, plain = validate(recipe(folder, ["mlflow"])), validate(recipe(folder, []))
    assert watched.tracking.backends == ["mlflow"]
    assert watched.to_dict() == plain.to_dict()  # watching is not training: the resolved recipe is the same


BROKEN_HOOK = """
from modelzoo.sdk import TrackerSpec, hookimpl


@hookimpl
def modelzoo_trackers():
    raise RuntimeError("cannot list my trackers")
"""

NOT_A_SPEC = """
from modelzoo.sdk import TrackerSpec, hookimpl


@hookimpl
def modelzoo_trackers():
    return [{"name": "dict"}, TrackerSpec(name="tensorboard", builder="x:Y"), TrackerSpec(name="ok", builder="zt_odd:T")]
"""


def test_one_plugin_breaking_the_tracker_hook_never_hides_the_others(fake_site):
    from modelzoo.tracking import tracker_specs

    fake_site.plugin("broken", BROKEN_HOOK)
    fake_site.plugin("odd", NOT_A_SPEC)
    problems: list[str] = []
    specs = tracker_specs(problems)
    assert {"tensorboard", "mlflow", "ok"} <= set(specs) and specs["tensorboard"].plugin == "core"
    assert specs["ok"].plugin == "odd"
    assert any("plugin broken: modelzoo_trackers raised RuntimeError: cannot list my trackers" in p for p in problems)
    assert any("is not a TrackerSpec" in p for p in problems)
    assert any("tracker 'tensorboard' is already core's" in p for p in problems)
