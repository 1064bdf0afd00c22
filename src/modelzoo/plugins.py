"""Discovering and loading plugins, each in isolation.

Every entry point in the ``modelzoo`` group is loaded in its own ``try``; a plugin that fails to
import is recorded with its reason and the rest keep working (DESIGN principle 3). The core's own
heads come in through the same entry-point path (``core = modelzoo.builtin``), as pytest and llm do.
``MODELZOO_PLUGINS=a,b`` restricts loading to those names; ``MODELZOO_PLUGINS=`` loads none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

GROUP = "modelzoo"


@dataclass
class PluginInfo:
    """What ``zoo plugins`` shows for one entry point."""

    name: str
    module: str
    dist: str | None
    version: str | None
    status: str = "ok"  # ok | failed | disabled
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def entry_points() -> list:
    """The ``modelzoo`` entry points, sorted, de-duplicated by name (first distribution wins)."""
    from importlib import metadata  # imported here: a warm `zoo list` never needs it

    seen: dict[str, metadata.EntryPoint] = {}
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def allowed_names() -> set[str] | None:
    """The plugin names ``MODELZOO_PLUGINS`` allows, or None when it is unset (all allowed)."""
    raw = os.environ.get("MODELZOO_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def load_plugins():
    """Load each allowed entry point; return ``(pluggy manager, {name: PluginInfo})``."""
    import pluggy

    from . import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    allowed = allowed_names()
    for ep in entry_points():
        dist = ep.dist.metadata["Name"] if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        info = PluginInfo(name=ep.name, module=ep.value, dist=dist, version=version)
        infos[ep.name] = info
        if allowed is not None and ep.name not in allowed:
            info.status = "disabled"
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            info.status = "failed"
            info.error = f"import failed: {type(exc).__name__}: {exc}".splitlines()[0]
    return pm, infos


def requirement_name(requirement: str) -> str | None:
    """The distribution a ``Requires-Dist`` line names, or None for an extra's optional dependency."""
    import re

    if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
        return None
    name = re.split(r"[<>=!~\[ ;(]", requirement.strip(), maxsplit=1)[0]
    return name or None


def dist_fingerprint(dist_name: str) -> dict | None:
    """What a plugin's catalog entries depend on: its distribution's version and the installed versions of
    its direct requirements (timm under a timm plugin...). None when the distribution is not installed."""
    from importlib import metadata

    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        return None
    requires = {}
    for line in dist.requires or []:
        name = requirement_name(line)
        if name is None:
            continue
        try:
            requires[name.lower()] = metadata.version(name)
        except metadata.PackageNotFoundError:
            requires[name.lower()] = None
    return {"distribution": dist.metadata["Name"], "version": dist.version, "requires": dict(sorted(requires.items()))}
