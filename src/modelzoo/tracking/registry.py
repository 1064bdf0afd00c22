"""Which trackers exist: the first-party ones and every plugin's ``modelzoo_trackers`` hook, each plugin
loaded and called in isolation (one that fails is skipped, the rest are found), and names checked."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..errors import ZooError, did_you_mean
from .base import Tracker, TrackerSpec

_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


def _impls(module: Any, name: str) -> list[Any]:
    """The ``modelzoo_trackers`` implementations of one plugin module (none when it has no such hook)."""
    import pluggy

    from .. import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(module, name=name)
    return pm.hook.modelzoo_trackers.get_hookimpls()


def _plugin_modules() -> Iterable[tuple[str, Any]]:
    """``(plugin name, module)``: the first-party trackers first, then each loadable entry point."""
    from ..catalog.plugins import allowed_names, entry_points, load_plugin, plugin_info
    from . import builtin

    yield "core", builtin
    allowed = allowed_names()
    for ep in entry_points():
        if allowed is not None and ep.name not in allowed:
            continue
        module = load_plugin(ep, plugin_info(ep))
        if module is not None:
            yield ep.name, module


def tracker_specs(problems: list[str] | None = None) -> dict[str, TrackerSpec]:
    """Every tracker by name (the first to claim a name keeps it); what went wrong is added to ``problems``."""
    found: dict[str, TrackerSpec] = {}
    problems = [] if problems is None else problems
    for plugin, module in _plugin_modules():
        try:
            returned = [item for impl in _impls(module, plugin) for item in (impl.function() or [])]
        except Exception as exc:
            problems.append(f"plugin {plugin}: modelzoo_trackers raised {type(exc).__name__}: {exc}".splitlines()[0])
            continue
        for spec in returned:
            if not isinstance(spec, TrackerSpec) or not _NAME.match(str(spec.name)) or ":" not in str(spec.builder):
                problems.append(f"plugin {plugin}: {spec!r:.80} is not a TrackerSpec(name, 'module:Class')")
            elif spec.name in found:
                problems.append(f"plugin {plugin}: tracker {spec.name!r} is already {found[spec.name].plugin}'s")
            else:
                spec.plugin = plugin
                found[spec.name] = spec
    return found


def parse_backends(value: str | Iterable[str] | None) -> list[str]:
    """``"tensorboard,mlflow"`` or a list of names as a clean list (order kept, repeats dropped)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name and name not in names:
            names.append(name)
    return names


def check_backends(names: list[str]) -> None:
    """One line for a tracker name nothing provides (a typo, an uninstalled plugin), before any work."""
    if not names:
        return
    known = tracker_specs()
    for name in names:
        if name not in known:
            raise ZooError(
                f"unknown tracker {name!r}{did_you_mean(name, list(known))} (installed trackers:"
                f" {', '.join(known) or 'none'}; a plugin adds others through the modelzoo_trackers hook)"
            )


def build_tracker(spec: TrackerSpec) -> Tracker:
    """An instance of the tracker a spec names (its library is imported here, not before)."""
    from ..catalog.builders import import_builder

    cls = import_builder(spec.builder)
    if not (isinstance(cls, type) and issubclass(cls, Tracker)):
        raise ZooError(f"tracker {spec.name!r} (plugin {spec.plugin}): {spec.builder} is not a modelzoo Tracker class")
    tracker = cls()
    tracker.name = spec.name
    return tracker
