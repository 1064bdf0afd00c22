"""The first-party trackers, registered through the same ``modelzoo_trackers`` hook a plugin implements."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .base import TrackerSpec


@hookimpl
def modelzoo_trackers() -> list[TrackerSpec]:
    return [
        TrackerSpec(
            name="tensorboard",
            builder="modelzoo.tracking.tensorboard_tracker:TensorBoardTracker",
            description="TensorBoard event files in the run folder (RUN/tensorboard): metrics, lrs, plots, hparams",
        ),
        TrackerSpec(
            name="mlflow",
            builder="modelzoo.tracking.mlflow_tracker:MLflowTracker",
            description="MLflow: params, per-epoch metrics, the run folder as artifacts (MLFLOW_TRACKING_URI, else ./mlruns)",
        ),
    ]
