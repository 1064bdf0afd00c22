"""The fine-tune engine: recipes, the trainer and its pieces, checkpoints and the run lock, the
feature cache, distributed launch, the LR finder and progress reporting.

A recipe (:mod:`.recipe`) is validated data; :mod:`.trainer` runs its stages (:mod:`.training` holds
the optimizer, layer groups and device choice) with background checkpoints (:mod:`.checkpoint`) in a
run folder one process owns (:mod:`.runlock`; ``--resume`` checks the recipe against the checkpoint's:
:mod:`.resume`); a frozen stage trains on features cached across runs
(:mod:`.featurecache`); :mod:`.distributed` and :mod:`.launch` scale it to several processes.
:mod:`.speed` measures the layout and precision each device runs fastest with and sizes the threads;
:mod:`.stopping` and :mod:`.ema` decide what a stage ends with (early stopping, the moving average,
never worse weights than it started with).
:mod:`.recipedoc` lists every recipe field from the schema (docs/recipes.md) and :mod:`.starter`
writes a starter recipe for a user's own data (``zoo recipe new``). :mod:`.folder_predict` runs a model
on every file under a folder (``zoo predict RUN DIR/``), batched, streaming one row per file.
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
    "TrackingCfg": ".recipe",
    "load_recipe": ".recipe",
    "validate": ".recipe",
    "apply_overrides": ".recipe",
    "find_lr": ".lr_finder",
    "RunLock": ".runlock",
    "recipe_changes": ".resume",
    "pick_device": ".training",
    "SpeedPlan": ".speed",
    "WeightEMA": ".ema",
    "StageKeeper": ".stopping",
    "predict_folder": ".folder_predict",
    "FeatureSet": ".featurecache",
    "recipe_fields": ".recipedoc",
    "recipes_markdown": ".recipedoc",
    "starter_recipe": ".starter",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
