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
    "Spec": "modelzoo.specs",
    "PretrainedTag": "modelzoo.specs",
    "Level": "modelzoo.specs",
    "KINDS": "modelzoo.specs",
    "OUTPUT_KINDS": "modelzoo.specs",
    "hookimpl": "modelzoo.hookspecs",
    # errors a user can act on
    "ZooError": "modelzoo.errors",
    "RecipeError": "modelzoo.errors",
    "SpecError": "modelzoo.errors",
    "did_you_mean": "modelzoo.errors",
    # the catalog
    "get": "modelzoo.catalog",
    "list_models": "modelzoo.catalog",
    "cache_dir": "modelzoo.paths",
    "import_builder": "modelzoo.builders",
    # files: atomic writes, checked reads
    "atomic_write": "modelzoo.fsutil",
    "atomic_write_text": "modelzoo.fsutil",
    "atomic_write_bytes": "modelzoo.fsutil",
    "read_json_object": "modelzoo.fsutil",
    "sha256_file": "modelzoo.fsutil",
    # backbones and models
    "Backbone": "modelzoo.backbone",
    "FeatureInfo": "modelzoo.backbone",
    "default_layer_groups": "modelzoo.backbone",
    "probe_info": "modelzoo.backbone",
    "TaskModel": "modelzoo.model",
    "create_backbone": "modelzoo.model",
    "assemble": "modelzoo.model",
    "load": "modelzoo.loading",
    "save_model": "modelzoo.runfolder",
    # tasks
    "Task": "modelzoo.task",
    "DataConfig": "modelzoo.task",
    "CardInfo": "modelzoo.task",
    "move_to": "modelzoo.task",
    # pretrained weights: sources (pkg:, file:, hf-hub:, https://) with sha256
    "fetch_file": "modelzoo.weights",
    "locate_source": "modelzoo.weights",
    "package_path": "modelzoo.weights",
    "hub_reachable": "modelzoo.weights",
    "verify_sha256": "modelzoo.weights",
    "load_state_dict": "modelzoo.weights",
    "pretrained_state_dict": "modelzoo.weights",
    "remap_by_order": "modelzoo.weights",
    "SourceUnavailable": "modelzoo.weights",
    # images, read safely (truncated files, decompression bombs)
    "IMAGE_EXTENSIONS": "modelzoo.images",
    "BadImage": "modelzoo.images",
    "is_image_file": "modelzoo.images",
    "read_image": "modelzoo.images",
    "check_image": "modelzoo.images",
    "read_image_tensor": "modelzoo.images",
    "image_size": "modelzoo.images",
    # plots
    "pyplot": "modelzoo.plots",
    "save_figure": "modelzoo.plots",
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
