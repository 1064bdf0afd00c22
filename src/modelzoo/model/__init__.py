"""Models: backbones and their output contract, the task model and the ``Task`` interface, pretrained
weights (sources and sha256), assembling backbone + head, and the model folder.

:mod:`.backbone` is what a backbone plugin implements; :mod:`.task` holds the ``Task`` interface a task
plugin implements together with ``TaskModel`` (the model a task trains and predicts with) and finding a
task's class through the catalog; :mod:`.assembly` checks and builds backbone + head; :mod:`.weights`
resolves and verifies pretrained sources; :mod:`.folder` is the one reader and writer of model folders
(``config.json`` + ``model.safetensors`` + declared files).
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "Backbone": ".backbone",
    "FeatureInfo": ".backbone",
    "default_layer_groups": ".backbone",
    "probe_info": ".backbone",
    "Task": ".task",
    "TaskModel": ".task",
    "DataConfig": ".task",
    "CardInfo": ".task",
    "create_task": ".task",
    "task_class": ".task",
    "move_to": ".task",
    "assemble": ".assembly",
    "create_backbone": ".assembly",
    "from_config": ".assembly",
    "save_model": ".folder",
    "load_model": ".folder",
    "read_config": ".folder",
    "model_files": ".folder",
    "locate_source": ".weights",
    "fetch_file": ".weights",
    "pretrained_state_dict": ".weights",
    "SourceUnavailable": ".weights",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
