"""What ``zoo select`` finds: candidates, their scored features, the selection, and which scores vote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine.recipe import Recipe

#: what ``--prior`` ranks by unless told otherwise: a key of ``PretrainedTag.metrics``
#: the names of the entry features' scores (:mod:`.entry_features`) start with this
ENTRY_PREFIX = "entry_"


class Skipped(Exception):
    """A candidate left out of the ranking, with the reason a user reads (and, when the budget was
    the reason, the seconds it would have needed)."""

    def __init__(self, reason: str, need: float | None = None) -> None:
        super().__init__(reason)
        self.need = need


@dataclass
class Candidate:
    """One backbone to rank: a registered architecture with one pretrained tag (or random init)."""

    label: str
    backbone: str
    arch: str
    pretrained: str | bool
    prior: float | None = None
    license: str | None = None
    note: str | None = None

    @property
    def reference(self) -> bool:
        return self.pretrained is False


@dataclass
class Scored:
    """A candidate whose features were extracted and scored."""

    candidate: Candidate
    feature_key: str
    params: int
    macs: int | None
    estimate_seconds: float | None
    feature_seconds: float
    from_cache: bool
    num_train: int
    dataset: str
    #: the train features and targets, each a tensor or a nest of tensors (:mod:`modelzoo.util.nest`)
    feats: Any = field(repr=False)
    targets: Any = field(repr=False)
    #: the mean of each score over the draws, and each draw's scores
    scores: dict[str, float] = field(default_factory=dict)
    draws: list[dict[str, float]] = field(default_factory=list)
    #: the train features entering the first group the recipe trains (:mod:`.entry_features`), if any
    entry_feats: torch.Tensor | None = field(default=None, repr=False)
    entry_group: str | None = None
    #: the candidate's model (``Task.transfer_scores`` may read its labels and level shapes)
    model: Any = field(default=None, repr=False)


@dataclass
class Selection:
    """What ``zoo select`` found: ranked candidates (best first), the reference, the skipped ones."""

    base: Recipe
    task: str
    dataset: str
    metric: str
    higher_is_better: bool
    prior_key: str
    #: examples per draw, and how many draws the scores are averaged over
    samples: int
    draws: int
    ranked: list[Scored]
    #: the scores whose mean rank orders the candidates (:func:`voting_scores`)
    ranked_by: list[str]
    mean_ranks: list[float]
    p_rank1: list[float]
    reference: Scored | None
    skipped: list[tuple[str, str]]
    budget_seconds: float | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def winner(self) -> Scored:
        return self.ranked[0]

    @property
    def score_names(self) -> list[str]:
        """The scores every ranked candidate has (a candidate may lack the entry features' ones)."""
        return common_scores(self.ranked)


def common_scores(items: list[Scored]) -> list[str]:
    """The score names every one of ``items`` has, in the first one's order."""
    if not items:
        return []
    return [k for k in items[0].scores if all(k in item.scores for item in items)]


def voting_scores(items: list[Scored]) -> list[str]:
    """The scores the ranking is made of: those of the entry features when every candidate has them
    (the recipe fine-tunes its last groups, so what reaches them is what it cannot change), else those
    of the final features. Chosen on a hold-out of the training split, never on a reported one:
    ``bench/select_validation.py --split holdout`` compares the rules; the README has the table."""
    names = common_scores(items)
    entry = [k for k in names if k.startswith(ENTRY_PREFIX)]
    return entry or [k for k in names if not k.startswith(ENTRY_PREFIX)]


def _only(scores: dict[str, float], names: list[str]) -> dict[str, float]:
    return {k: scores[k] for k in names}


def _dur(seconds: float) -> str:
    """Seconds as a user reads them: ``0.25s``, ``3.1s``, ``42s``."""
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.2g}s"
