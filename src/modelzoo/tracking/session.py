"""The engine's one door to the trackers: :class:`Tracking` is started at run start, fed each epoch and
finished with the run, on rank 0 only. Each tracker call is guarded: one that raises (its library is
missing, its server is down) is one warning line, and the run goes on without it.

The tracker runs' ids are kept in ``RUN/tracking.json`` with the last epoch each tracker logged, so a
resumed run reopens the same tracker runs and does not log again the epochs it replays.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from ..util.files import atomic_write_text
from ..util.text import first_line
from .base import RunInfo, Tracker, flatten
from .registry import build_tracker, parse_backends, tracker_specs

STATE_FILE = "tracking.json"
#: epoch-row fields that are not metrics (where an epoch sits is the step; names are not numbers)
NOT_METRICS = ("stage", "epoch", "stage_name")
#: what a guarded call returns when the tracker failed
BROKEN = object()


class Tracking:
    """The trackers of one run (``trainer``: anything with ``out``, ``recipe``, ``world``, ``history``,
    ``task`` and ``warn``); idle until :meth:`start`, and always idle off rank 0."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.active: dict[str, Tracker] = {}
        self.state: dict[str, dict[str, Any]] = {}
        self.closed = False

    # -- the engine's three calls ----------------------------------------------------------------
    def start(self) -> None:
        """Open the recipe's trackers and those ``tracking.json`` says this run already logs to."""
        t = self.trainer
        if not t.world.main:
            return
        self.path = Path(t.out) / STATE_FILE
        self.state = self._read_state()
        names = parse_backends([*getattr(getattr(t.recipe, "tracking", None), "backends", []), *self.state])
        if not names:
            return
        problems: list[str] = []
        specs = tracker_specs(problems)
        info = self._run_info()
        for name in names:
            entry = self.state.setdefault(name, {})
            if name not in specs:
                detail = f" ({problems[0]})" if problems else ""
                t.warn(f"tracker {name!r} is not installed{detail}; the run goes on without it")
                continue
            tracker = self._call(name, lambda spec=specs[name]: build_tracker(spec))
            if tracker is BROKEN:
                continue
            self.active[name] = tracker
            run_id = self._call(name, lambda tr=tracker, e=entry: tr.start(info, e.get("id")))
            if run_id is not BROKEN and run_id is not None:
                entry["id"] = str(run_id)
        self._save()
        atexit.register(self.close, "FAILED")

    def epoch(self, row: dict[str, Any], optimizer: Any = None) -> None:
        """One finished epoch (an entry of the trainer's history; step = epochs run so far)."""
        if not self.active:
            return
        step = len(self.trainer.history)
        metrics = {k: float(v) for k, v in row.items() if k not in NOT_METRICS and _number(v)}
        for group in getattr(optimizer, "param_groups", []):
            name = str(group.get("name", "")).removesuffix("/no_decay")  # the same lr as its decayed twin
            if name:
                metrics[f"lr/{name.replace(':', '.')}"] = float(group["lr"])
        for name in list(self.active):
            if step <= self.state.get(name, {}).get("step", 0):
                continue  # a resumed run replays the epochs after its last checkpoint: logged already
            if self._call(name, lambda tr=self.active[name]: tr.log_metrics(step, metrics)) is not BROKEN:
                self.state[name]["step"] = step
        self._save()

    def finish(self, run: Any) -> Any:
        """The finished run: final metrics, the run folder's pictures, hparams and files; returns ``run``."""
        if not self.active:
            return run
        step = len(self.trainer.history)
        final = {f"final/{k}": float(v) for k, v in run.metrics.items() if _number(v)}
        pictures = sorted(Path(run.path).glob("*.png"))
        hparams = self._run_info().hparams
        for name in list(self.active):
            tr = self.active[name]
            calls = [
                lambda tr=tr: tr.log_metrics(step, final),
                *(lambda tr=tr, p=png: tr.log_image(p.stem, p, step) for png in pictures),
                lambda tr=tr: tr.log_hparams(hparams, final),
                lambda tr=tr: tr.log_artifacts(Path(run.path)),
            ]
            for call in calls:
                if name in self.active:  # a tracker that failed is dropped: nothing more is sent to it
                    self._call(name, call)
        self.close("FINISHED")
        return run

    def close_on_error(self) -> None:
        """Called from the engine's ``finally``: when an exception is on its way out (Ctrl-C, a failed
        stage), end the tracker runs now (``KILLED`` or ``FAILED``); otherwise nothing."""
        if sys.exc_info()[1] is not None:
            self.close()

    def close(self, status: str | None = None) -> None:
        """End every tracker's run: ``FINISHED`` at the finish; called while an exception propagates,
        ``KILLED`` (Ctrl-C, SIGTERM: the run is resumable) or ``FAILED``; at exit, a run never closed is
        ``FAILED``."""
        if self.closed:
            return
        self.closed = True
        if status is None:
            exc = sys.exc_info()[1]
            interrupted = isinstance(exc, KeyboardInterrupt) or getattr(exc, "exit_code", None) == 130
            status = "FINISHED" if exc is None else "KILLED" if interrupted else "FAILED"
        for name in list(self.active):
            self._call(name, lambda tr=self.active[name]: tr.finish(status))
        self.active.clear()
        atexit.unregister(self.close)

    # -- helpers ---------------------------------------------------------------------------------
    def _call(self, name: str, fn: Any) -> Any:
        """``fn()``; on any failure one warning line, the tracker dropped, and :data:`BROKEN` returned."""
        try:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is zoo's (--json); MLflow prints run links
                return fn()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            detail = first_line(exc)
            self.trainer.warn(
                f"tracker {name} failed ({type(exc).__name__}{': ' + detail if detail else ''}); the run goes on"
                " without it"
            )
            tracker = self.active.pop(name, None)
            if tracker is not None and not isinstance(exc, ImportError):
                try:
                    tracker.finish("FAILED")
                except Exception:
                    pass
            return BROKEN

    def _run_info(self) -> RunInfo:
        t = self.trainer
        recipe = t.recipe
        hparams = {k: v for k, v in flatten(recipe.to_dict()).items() if not k.startswith("reference.")}
        return RunInfo(
            folder=Path(t.out).resolve(),
            name=Path(t.out).resolve().name,
            recipe=recipe.name,
            task=recipe.task,
            metric=t.task.metric,
            hparams=hparams,
        )

    def _read_state(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        trackers = data.get("trackers") if isinstance(data, dict) else None
        return (
            {str(k): dict(v) for k, v in trackers.items() if isinstance(v, dict)} if isinstance(trackers, dict) else {}
        )

    def _save(self) -> None:
        try:
            atomic_write_text(self.path, json.dumps({"trackers": self.state}, indent=2) + "\n")
        except OSError as exc:
            self.trainer.warn(f"cannot write {self.path} ({exc.strerror or exc}); a resume starts new tracker runs")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
