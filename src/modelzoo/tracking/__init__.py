"""Experiment trackers: the run's metrics, plots and files sent to TensorBoard, MLflow or a plugin's tracker.

Opt-in only (``zoo finetune RECIPE --track tensorboard,mlflow`` or a recipe's ``[tracking] backends``),
never because a package happens to be installed. Trackers are plugins behind one hook
(``modelzoo_trackers``, returning :class:`TrackerSpec` data: a name and a lazy builder path); the
first-party ones (:mod:`.tensorboard_tracker`, :mod:`.mlflow_tracker`) come in through the same hook
(:mod:`.builtin`). The engine calls one :class:`Tracking` session (:mod:`.session`) at run start, each
epoch's end and the finish, on rank 0 only; a tracker that fails is one warning line and the run goes
on without it; ``--resume`` continues the same tracker runs (their ids are kept in ``tracking.json``).
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "Tracker": ".base",
    "TrackerSpec": ".base",
    "RunInfo": ".base",
    "run_files": ".base",
    "Tracking": ".session",
    "STATE_FILE": ".session",
    "tracker_specs": ".registry",
    "check_backends": ".registry",
    "parse_backends": ".registry",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
