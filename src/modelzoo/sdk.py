"""The plugin SDK: everything a modelzoo plugin may use from the core, and nothing else.

Plugins import from here (or the same names from ``modelzoo``); a test fails when a plugin under
``plugins/`` imports any other core module or any ``_private`` name, so the core can change its
insides without breaking plugins. ``docs/plugins.md`` documents each name.

Importing this module is cheap: names that need torch are imported on first use, so a plugin's
``modelzoo_specs`` hook (which must not import torch) can import ``Spec`` and ``hookimpl`` from here.
"""

from __future__ import annotations

import importlib
from typing import Any

#: name -> the core module that defines it
EXPORTS: dict[str, str] = {
    # catalog entries as plain data, and the hook that returns them (no torch)
    "Spec": "modelzoo.catalog.specs",
    "PretrainedTag": "modelzoo.catalog.specs",
    "Level": "modelzoo.catalog.specs",
    "TaskMeta": "modelzoo.catalog.specs",
    "PredictOption": "modelzoo.catalog.specs",
    "KINDS": "modelzoo.catalog.specs",
    "OUTPUT_KINDS": "modelzoo.catalog.specs",
    "hookimpl": "modelzoo.hookspecs",
    # errors a user can act on
    "ZooError": "modelzoo.errors",
    "RecipeError": "modelzoo.errors",
    "SpecError": "modelzoo.errors",
    "did_you_mean": "modelzoo.errors",
    # the catalog
    "get": "modelzoo.catalog.lookup",
    "list_models": "modelzoo.catalog.lookup",
    "cache_dir": "modelzoo.util.paths",
    "import_builder": "modelzoo.catalog.builders",
    "option_rule": "modelzoo.catalog.builders",
    # files: atomic writes, checked reads
    "atomic_write": "modelzoo.util.files",
    "atomic_write_text": "modelzoo.util.files",
    "atomic_write_bytes": "modelzoo.util.files",
    "read_json_object": "modelzoo.util.files",
    "sha256_file": "modelzoo.util.files",
    # backbones and models
    "Backbone": "modelzoo.model.backbone",
    "FeatureInfo": "modelzoo.model.backbone",
    "HubExport": "modelzoo.model.backbone",
    "default_layer_groups": "modelzoo.model.backbone",
    "probe_info": "modelzoo.model.backbone",
    "TaskModel": "modelzoo.model.task",
    "create_backbone": "modelzoo.model.assembly",
    "assemble": "modelzoo.model.assembly",
    # the bounds on config.json values (labels, num_classes, preprocessing): one line naming the field
    "check_label": "modelzoo.model.limits",
    "check_preprocess": "modelzoo.model.limits",
    "load": "modelzoo.loading",
    "save_model": "modelzoo.model.folder",
    # tasks
    "Task": "modelzoo.model.task",
    "DataConfig": "modelzoo.model.task",
    "CardInfo": "modelzoo.model.task",
    "move_to": "modelzoo.model.task",
    "create_task": "modelzoo.model.task",
    "write_predictions": "modelzoo.model.task",
    # pretrained weights: sources (pkg:, file:, hf-hub:, https://) with sha256
    "fetch_file": "modelzoo.model.weights",
    "locate_source": "modelzoo.model.weights",
    "package_path": "modelzoo.model.weights",
    "hub_reachable": "modelzoo.model.weights",
    "verify_sha256": "modelzoo.model.weights",
    "load_state_dict": "modelzoo.model.weights",
    "pretrained_state_dict": "modelzoo.model.weights",
    "remap_by_order": "modelzoo.model.weights",
    "SourceUnavailable": "modelzoo.model.weights",
    # images, read safely (truncated files, decompression bombs)
    "IMAGE_EXTENSIONS": "modelzoo.util.images",
    "BadImage": "modelzoo.util.images",
    "is_image_file": "modelzoo.util.images",
    "read_image": "modelzoo.util.images",
    "check_image": "modelzoo.util.images",
    "read_mask": "modelzoo.util.images",
    "read_image_tensor": "modelzoo.util.images",
    "image_size": "modelzoo.util.images",
    # plots
    "pyplot": "modelzoo.util.plots",
    "save_figure": "modelzoo.util.plots",
    # experiment trackers (the modelzoo_trackers hook)
    "Tracker": "modelzoo.tracking.base",
    "TrackerSpec": "modelzoo.tracking.base",
    "RunInfo": "modelzoo.tracking.base",
    "run_files": "modelzoo.tracking.base",
}

__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelzoo.sdk' has no attribute {name!r}; the SDK is: {', '.join(__all__)}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
