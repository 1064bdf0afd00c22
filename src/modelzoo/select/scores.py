"""Transfer scores of a candidate's features, computed by the task on subsamples it draws, cached per
features and scorer (the task plugin's fingerprint is part of the key).
"""

from __future__ import annotations

import hashlib
import json

import torch

from ..errors import ZooError
from ..model.task import call_task, task_fingerprint
from ..util.nest import index_nest
from .features import entry_feature_key
from .results import ENTRY_PREFIX, Scored

#: what ``--prior`` ranks by unless told otherwise: a key of ``PretrainedTag.metrics``
SCORES_FORMAT = 1


# -- scores -----------------------------------------------------------------------------------------
class ScoreCache:
    """Scores of one feature file, by the exact subsample they were computed on (a second selection
    on the same data recomputes nothing); a JSON file beside the features, in the user cache."""

    def __init__(self, feature_key: str, scorer: str) -> None:
        from ..util.paths import cache_dir

        self.path = cache_dir() / "select" / f"scores-{feature_key}.json"
        self.scorer = scorer
        self.entries: dict[str, dict[str, float]] = {}
        self.dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") == SCORES_FORMAT and data.get("scorer") == scorer:
                self.entries = dict(data["entries"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass

    @staticmethod
    def digest(indices: torch.Tensor, seed: int) -> str:
        h = hashlib.sha256(str(seed).encode())
        h.update(indices.to(torch.int64).contiguous().numpy().tobytes())
        return h.hexdigest()[:20]

    def get(self, digest: str) -> dict[str, float] | None:
        return self.entries.get(digest)

    def put(self, digest: str, scores: dict[str, float]) -> None:
        self.entries[digest] = scores
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        from ..util.files import atomic_write_text

        payload = {"format": SCORES_FORMAT, "scorer": self.scorer, "entries": self.entries}
        try:
            atomic_write_text(self.path, json.dumps(payload))
        except OSError:
            pass  # an unwritable cache only costs time
        self.dirty = False


def _scores(task, item: Scored, caches: tuple[ScoreCache, ...], indices: torch.Tensor, seed: int) -> dict[str, float]:
    """The task's transfer scores of the final features on one subsample, and (named ``entry_*``)
    those of the entry features where the candidate has them; a view the task leaves out of
    ``Task.select_views``, or scores as ``{}`` (not applicable), adds nothing."""
    views = tuple(getattr(task, "select_views", ("final", "entry")))
    found = {}
    if "final" in views:
        found = _scores_of(task, item.feats, item.targets, caches[0], indices, seed, item.model, "final")
    if item.entry_feats is not None and len(caches) > 1 and "entry" in views:
        entry = _scores_of(task, item.entry_feats, item.targets, caches[1], indices, seed, item.model, "entry")
        found.update({f"{ENTRY_PREFIX}{name}": value for name, value in entry.items()})
    return found


def _score_caches(task, item: Scored) -> tuple[ScoreCache, ...]:
    scorer = _scorer_id(task)
    caches = [ScoreCache(item.feature_key, scorer)]
    if item.entry_feats is not None:
        caches.append(ScoreCache(entry_feature_key(item.feature_key, item.entry_group or ""), scorer))
    return tuple(caches)


def _scores_of(
    task, feats, targets, cache: ScoreCache, indices: torch.Tensor, seed: int, model=None, view: str = "final"
) -> dict[str, float]:
    digest = cache.digest(indices, seed)
    found = cache.get(digest)
    if found is None:
        # scores work on small matrices, where one intra-op thread is faster than several, and far
        # faster on a busy machine (measured: a linear probe 3 s on one thread, 22 s on two)
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            raw = call_task(
                task.transfer_scores, index_nest(feats, indices), index_nest(targets, indices), seed,
                model=model, view=view,
            )  # fmt: skip
        finally:
            torch.set_num_threads(before)
        if not isinstance(raw, dict):
            raise ZooError(
                f"task {task.name!r}: transfer_scores returned {type(raw).__name__}, not a dict of scores"
                " ({} when the view does not apply); fix its plugin"
            )
        found = {k: float(v) for k, v in raw.items()}  # {}: the view does not apply (cached as such)
        cache.put(digest, found)
    return found


def _mean_scores(draws: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(d[k] for d in draws) / len(draws) for k in draws[0]}


def _scorer_id(task) -> str:
    """Which code computed the scores: the task class and its plugin's fingerprint (distribution,
    version, source: :func:`modelzoo.model.task.task_fingerprint`, the same rule as the feature cache's
    key), so editing or upgrading that plugin invalidates every cached score."""
    cls = type(task)
    return f"{cls.__module__}.{cls.__qualname__}:{task_fingerprint(task)}"
