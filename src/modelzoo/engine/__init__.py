"""The fine-tune engine: recipes, the trainer and its pieces, checkpoints and the run lock, the
feature cache, distributed launch, the LR finder and progress reporting.

A recipe (:mod:`.recipe`) is validated data; :mod:`.trainer` runs its stages (:mod:`.training` holds
the optimizer, layer groups and device choice) with background checkpoints (:mod:`.checkpoint`) in a
run folder one process owns (:mod:`.runlock`); a frozen stage trains on features cached across runs
(:mod:`.featurecache`); :mod:`.distributed` and :mod:`.launch` scale it to several processes.
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "finetune": ".trainer",
    "Trainer": ".trainer",
    "compute_features": ".trainer",
    "resolve_out": ".trainer",
    "Recipe": ".recipe",
    "ModelCfg": ".recipe",
    "StageCfg": ".recipe",
    "OptimizerCfg": ".recipe",
    "load_recipe": ".recipe",
    "validate": ".recipe",
    "apply_overrides": ".recipe",
    "find_lr": ".lr_finder",
    "RunLock": ".runlock",
    "pick_device": ".training",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
