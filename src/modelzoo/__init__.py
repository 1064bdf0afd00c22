"""modelzoo: a plugin-based model zoo, registry and fine-tune engine for PyTorch.

Importing this package is cheap: the catalog needs no torch, and everything that builds models is
imported on first use. The plugin SDK (:mod:`modelzoo.sdk`: ``Spec``, ``Task``, ``Backbone``,
``assemble``, ``load``...) is reachable from here, and so is the user API around it (``finetune``,
``push``, ``pull``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from .util.cores import passive_omp_waits as _passive_omp_waits

if "torch" not in sys.modules:  # waiting OpenMP threads must sleep, not spin, on shared cores (set before torch loads)
    _passive_omp_waits()

from . import sdk as _sdk

__version__ = "0.1.0"

#: the user API beyond the SDK: name -> module
_USER_API = {"finetune": "modelzoo.engine.trainer", "push": "modelzoo.hub.upload", "pull": "modelzoo.hub.download"}


def __getattr__(name: str) -> Any:
    if name in _sdk.EXPORTS:
        return getattr(_sdk, name)
    if name not in _USER_API:
        raise AttributeError(f"module 'modelzoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_USER_API[name]), name)
    globals()[name] = value
    return value


__all__ = sorted([*_sdk.EXPORTS, *_USER_API])
