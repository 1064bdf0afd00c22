"""modelzoo: a plugin-based model zoo, registry and fine-tune engine for PyTorch.

Importing this package is cheap: the catalog functions need no torch, and everything that builds
models is imported on first use.
"""

from __future__ import annotations

from typing import Any

from .hookspecs import hookimpl
from .specs import Level, PretrainedTag, Spec

__version__ = "0.1.0"

_LAZY = {
    "create_backbone": "modelzoo.model",
    "assemble": "modelzoo.model",
    "load": "modelzoo.model",
    "TaskModel": "modelzoo.model",
    "Backbone": "modelzoo.backbone",
    "FeatureInfo": "modelzoo.backbone",
    "finetune": "modelzoo.engine",
    "ZooError": "modelzoo.errors",
    "push": "modelzoo.hub",
    "pull": "modelzoo.hub",
}


def list_models(
    include: str | list[str] | None = None,
    exclude: str | list[str] | None = None,
    kind: str | None = None,
    task: str | None = None,
    plugin: str | None = None,
    license: str | None = None,
    pretrained: bool = False,
) -> list[str]:
    """Names of catalog entries matching the filters (wildcards like timm's ``list_models``)."""
    from .catalog import catalog

    specs = catalog().filter(include, exclude, kind, task, plugin, license, pretrained)
    return [s.name for s in specs]


def get(name: str, kind: str | None = None) -> Spec:
    """The spec for ``name`` (``arch``, ``arch.tag`` or ``plugin:name``); did-you-mean on a miss."""
    from .catalog import catalog

    return catalog().get(name, kind)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelzoo' has no attribute {name!r}")


__all__ = ["Level", "PretrainedTag", "Spec", "get", "hookimpl", "list_models", *_LAZY]
