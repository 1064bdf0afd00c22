"""MLflow: the recipe's settings as params, each epoch's metrics, the run folder as artifacts.

Where: ``MLFLOW_TRACKING_URI`` when set (a server, a database, a folder), else a local ``./mlruns``
store: ``mlruns/mlflow.db`` (SQLite: MLflow 3 keeps its plain-folder store in maintenance mode and refuses
it by default) with the artifacts in ``mlruns/artifacts``; ``mlflow ui --backend-store-uri
sqlite:///mlruns/mlflow.db`` shows it. The experiment is ``MLFLOW_EXPERIMENT_NAME``, else ``modelzoo``. It talks through ``MlflowClient`` (no global active run, no exit hooks of MLflow's own),
and a server that does not answer fails within seconds, not MLflow's default two minutes of retries.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ZooError
from .base import RunInfo, Tracker, run_files

EXPERIMENT = "modelzoo"
#: MLflow caps a param's value (6,000 characters in the store; shorter is kinder to its UI)
MAX_PARAM = 500
#: a server that is down is one warning within seconds (unless the user set MLflow's own variables)
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


LOCAL = Path("mlruns")


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the local store ``./mlruns/mlflow.db`` (absolute, so a run that
    changes directory still finds it)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    LOCAL.mkdir(exist_ok=True)
    return "sqlite:///" + str((LOCAL / "mlflow.db").resolve())


def _quiet_store_logs() -> None:
    """MLflow's database set-up says each schema migration at INFO; a run's log wants none of it."""
    import logging

    for name in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


class MLflowTracker(Tracker):
    name = "mlflow"

    def start(self, run: RunInfo, resume_id: str | None = None) -> str | None:
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ZooError("the mlflow package is not installed (pip install mlflow)") from None
        self.Metric, self.Param = Metric, Param
        _quiet_store_logs()
        local = not os.environ.get("MLFLOW_TRACKING_URI")
        self.client = MlflowClient(tracking_uri=tracking_uri())
        if resume_id is not None:
            self.run_id = resume_id
            self.client.update_run(resume_id, status="RUNNING")
            return resume_id
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:  # the local store keeps its artifacts beside its database, not in the working directory
            where = (LOCAL / "artifacts").resolve().as_uri() if local else None
            experiment_id = self.client.create_experiment(name, artifact_location=where)
        tags = {"modelzoo.run_folder": str(run.folder), "modelzoo.recipe": run.recipe, "modelzoo.task": run.task}
        created = self.client.create_run(experiment_id, run_name=run.name, tags=tags)
        self.run_id = created.info.run_id
        params = [self.Param(k, str(v)[:MAX_PARAM]) for k, v in sorted(run.hparams.items())]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        return self.run_id

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        import time

        now = int(time.time() * 1000)
        batch = [self.Metric(k, v, now, step) for k, v in metrics.items()]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[i : i + 1000])

    def log_artifacts(self, folder: Path) -> None:
        for path, rel in run_files(folder):
            parent = str(Path(rel).parent)
            self.client.log_artifact(self.run_id, str(path), None if parent == "." else parent)

    def log_hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """Params were logged at the start; the final metrics came with the last ``log_metrics``."""

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)
