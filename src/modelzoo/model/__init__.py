"""Models: backbones and their output contract, the task model and the ``Task`` interface, pretrained
weights (sources and sha256), assembling backbone + head, and the model folder.

:mod:`.backbone` is what a backbone plugin implements; :mod:`.task` holds the ``Task`` interface a task
plugin implements together with ``TaskModel`` (the model a task trains and predicts with) and finding a
task's class through the catalog (its methods for folders of inputs and ``zoo eval --errors`` are in
:mod:`.task_use`); :mod:`.assembly` checks and builds backbone + head (:mod:`.limits` bounds config values); :mod:`.weights`
resolves and verifies pretrained sources; :mod:`.folder` is the one reader and writer of model folders
(``config.json`` + ``model.safetensors`` + declared files, each with its recorded digest).
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "Backbone": ".backbone",
    "FeatureInfo": ".backbone",
    "HubExport": ".backbone",
    "default_layer_groups": ".backbone",
    "probe_info": ".backbone",
    "Task": ".task",
    "TaskModel": ".task",
    "DataConfig": ".task",
    "CardInfo": ".task",
    "create_task": ".task",
    "task_class": ".task",
    "move_to": ".task",
    "write_predictions": ".task",
    "task_fingerprint": ".task",
    "call_task": ".task",
    "assemble": ".assembly",
    "create_backbone": ".assembly",
    "from_config": ".assembly",
    "check_label": ".limits",
    "check_outputs": ".limits",
    "check_preprocess": ".limits",
    "save_model": ".folder",
    "load_model": ".folder",
    "read_config": ".folder",
    "model_files": ".folder",
    "write_config": ".folder",
    "verify_files": ".folder",
    "check_weights_fit": ".folder",
    "locate_source": ".weights",
    "fetch_file": ".weights",
    "pretrained_state_dict": ".weights",
    "SourceUnavailable": ".weights",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
