"""TensorBoard: event files in ``RUN/tensorboard`` (``tensorboard --logdir runs`` shows every run).

Each epoch's metrics and learning rates are scalars, the run's pictures (training curves, the task's
plots) are images, and the recipe's settings with the final metrics are the HParams dashboard's row.
A resumed run appends a new event file to the same folder: TensorBoard reads them as one run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ZooError
from .base import RunInfo, Tracker

FOLDER = "tensorboard"


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def start(self, run: RunInfo, resume_id: str | None = None) -> str | None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ZooError("the tensorboard package is not installed (pip install tensorboard)") from None
        self.logdir = run.folder / FOLDER
        self.writer = SummaryWriter(log_dir=str(self.logdir), flush_secs=10)
        if resume_id is None:
            self.writer.add_text("run", f"{run.name}: recipe {run.recipe}, task {run.task}", 0)
        return FOLDER

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def log_image(self, name: str, image: Any, step: int) -> None:
        if isinstance(image, (str, Path)):
            import numpy as np
            from PIL import Image

            with Image.open(image) as im:
                pixels = np.asarray(im.convert("RGB"))
            self.writer.add_image(name, pixels, step, dataformats="HWC")
        else:
            self.writer.add_figure(name, image, step)
        self.writer.flush()

    def log_hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        values = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
        for summary in hparams_summary(values, metrics):
            self.writer.file_writer.add_summary(summary)
        self.writer.flush()

    def finish(self, status: str = "FINISHED") -> None:
        self.writer.close()
