"""The hooks a modelzoo plugin implements (pluggy, entry-point group ``modelzoo``).

A plugin module decorates functions with ``@modelzoo.hookimpl``; the entry point names the module.
Hooks return plain :mod:`modelzoo.catalog.specs` data, so the catalog can be cached and listed without torch.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

PROJECT = "modelzoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def modelzoo_specs() -> Iterable:  # type: ignore[empty-body]
    """Return the backbones, heads, datasets and recipes this plugin provides, as ``Spec`` objects."""
