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


@hookspec
def modelzoo_hub_backbone(repo: str, sha: str, config: dict, files: dict) -> object:  # type: ignore[empty-body]
    """Offer to build a Hub repo that is not modelzoo's as a backbone (``model.backbone = "hf-hub:ORG/NAME"``).

    ``repo`` is ``ORG/NAME``, ``sha`` the commit it resolved to, ``config`` its ``config.json`` (plain
    data) and ``files`` maps each file of that commit to its sha256 (None where the Hub gave none).
    Return a backbone ``Spec`` whose pretrained tag's source is ``hf-hub:ORG/NAME@SHA::<weights file>``
    when the repo is in a format this plugin builds, ``None`` when it is not; raise ``ZooError`` (one line)
    when the format is yours but this repo cannot be built (an architecture your library lacks).
    Build from the config data only: never remote code, never pickles.
    """


@hookspec
def modelzoo_trackers() -> Iterable:  # type: ignore[empty-body]
    """Return the experiment trackers this plugin provides, as ``TrackerSpec`` objects: plain data (a
    name and a ``"module:Class"`` builder naming a ``Tracker`` subclass), imported only when a run asks
    for the tracker (``zoo finetune --track NAME`` or a recipe's ``[tracking] backends``)."""
