"""``zoo select`` and ``zoo compare``: which pretrained backbone for this data, ranked without fine-tuning.

:mod:`.candidates` resolves the candidates and their recipes, :mod:`.features` extracts their frozen
features (and :mod:`.entry_features` those entering the first trained group), :mod:`.scores` scores
them with the task's transfer scores (cached), :mod:`.ranking` combines the scores, :mod:`.pipeline`
runs it all within a budget, :mod:`.results` holds what it finds, :mod:`.report` prints and saves it,
:mod:`.validate` checks a selection against real fine-tunes, and :mod:`.compare` measures speed and size.

For each candidate backbone, the engine's own :class:`~modelzoo.engine.Trainer` sets up a fine-tune
of the recipe with that backbone (the recipe's data, the backbone's own preprocessing: exactly what
``zoo finetune`` would do) and computes its frozen features once, into the shared feature cache the
head stage reads (:mod:`.featurecache`), so the fine-tune of the pick starts from them and a second
selection on the same data computes nothing. The task then scores the features
(``Task.transfer_scores``) on subsamples it draws (``Task.transfer_subsample``): the core knows no
score and no target, only that every score is higher-is-better. Each score is averaged over several
draws, and P(rank 1) is the share of draws on which a candidate comes first: how much the pick
depends on which examples happened to be drawn.

Where the recipe fine-tunes only its last layer groups, the features entering the first trained
group are scored as well (:mod:`.entry_features`), and those scores rank (:func:`voting_scores`).
Candidates are ranked by their mean rank over the voting scores (:mod:`.ranking` says why), beside the
ranking by a published prior (ImageNet top-1 where plugins record it), because a static prior is
what an estimator has to beat. The top candidate's random-init twin, scored the same way, says what
pretraining is worth on this data. The budget bounds the wall time: each candidate's extraction cost
is estimated from a measured small pass, and those that would not fit are skipped and named.
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "select": ".pipeline",
    "Selection": ".results",
    "Candidate": ".results",
    "Scored": ".results",
    "base_recipe": ".candidates",
    "validate_selection": ".validate",
    "format_selection": ".report",
    "format_table": ".compare",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
