"""Where the catalog's entries come from, plugin by plugin: the cache, the shipped registry, or live.

For each installed plugin the loader computes its fingerprint (:func:`modelzoo.catalog.plugins.plugin_fingerprint`:
distribution, version, the versions of what it requires, a digest of its source; no import) and takes
its entries from the first of:

1. the user cache: ``<cache>/catalog/<plugin>-<fingerprint hash>.json``, written after a live load;
2. the shipped ``registry.json`` (the first-party catalog built by ``zoo registry build``), when it
   records the same fingerprint for that plugin: a cold ``zoo list`` then imports no torch at all;
3. live: import the plugin and call its hook, in isolation (a failure is reported, never fatal).

Only what a fresh process would find again is cached: entries from a hook that ran. A plugin that
failed to import or whose hook raised is tried again next time, so a failure seen in a process that
could not import a just-installed plugin never outlives that process. Installing, upgrading or
removing a plugin, or upgrading a library it enumerates, changes the fingerprints, so the very next
listing is right without any explicit invalidation.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import ZooError
from .plugins import (
    PluginExit,
    PluginInfo,
    PluginTimeout,
    allowed_names,
    entry_points,
    installed_versions,
    load_plugin,
    normalized_name,
    plugin_fingerprint,
    plugin_info,
    plugin_timeout,
    run_plugin_code,
    stdout_to_stderr,
)
from .specs import Spec, validate_spec

CACHE_FORMAT = 2
CORE_MODULE = "modelzoo.catalog.builtin"


def cache_enabled() -> bool:
    return os.environ.get("MODELZOO_NO_CACHE", "") in ("", "0")


def catalog_cache_dir() -> Path:
    from ..util.paths import cache_dir

    return cache_dir() / "catalog"


def fingerprint_of(ep, versions: dict[str, str] | None = None) -> dict[str, Any]:
    """The plugin's fingerprint. The core's own entries are the zoo/ recipes: what they depend on is the
    module that reads them, the spec schema and the recipe files, not every file of the core.
    ``versions`` is an :func:`installed_versions` result shared by the plugins of one listing."""
    if ep.value.split(":")[0] == CORE_MODULE:
        from .builtin import recipe_files

        here = Path(__file__).parent
        files = [here / "builtin.py", here / "specs.py", *recipe_files()]
        return plugin_fingerprint(ep, files, own_source=False, versions=versions)
    return plugin_fingerprint(ep, versions=versions)


def _key(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:24]


# -- the shipped registry -----------------------------------------------------------------------
def shipped_registry_path() -> Path | None:
    """``registry.json`` as installed with the core (package data of ``modelzoo_registry``)."""
    import importlib.util

    override = os.environ.get("MODELZOO_REGISTRY")
    if override is not None:
        return Path(override) if override else None
    spec = importlib.util.find_spec("modelzoo_registry")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "registry.json"
        if path.is_file():
            return path
    return None


def shipped_registry() -> dict[str, Any]:
    """``{plugin: {"fingerprint": ..., "entries": [...]}}`` from the shipped registry ({} if unreadable)."""
    path = shipped_registry_path()
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        plugins = {name: {"fingerprint": fp, "entries": []} for name, fp in data["plugins"].items()}
        for entry in data["entries"]:
            plugins[entry["plugin"]]["entries"].append(entry)
        return plugins
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # a damaged registry only costs speed: entries are enumerated live


# -- the user cache -----------------------------------------------------------------------------
def _read_cached(path: Path, fingerprint: dict[str, Any]) -> tuple[PluginInfo, list[Spec]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != CACHE_FORMAT or data.get("fingerprint") != fingerprint:
            return None
        info = PluginInfo(**data["plugin"])
        specs = [Spec.from_dict(s) for s in data["specs"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, corrupt or foreign: loaded again below
    info.source = "cache"
    return info, specs


def _write_cached(path: Path, fingerprint: dict[str, Any], info: PluginInfo, specs: list[Spec]) -> None:
    from ..util.files import atomic_write_text

    data = {
        "format": CACHE_FORMAT,
        "fingerprint": fingerprint,
        "plugin": {**asdict(info), "source": "live"},
        "specs": [s.to_dict() for s in specs],
    }
    try:
        for stale in path.parent.glob(f"{info.name}-*.json"):
            if stale != path:
                stale.unlink(missing_ok=True)
        atomic_write_text(path, json.dumps(data, separators=(",", ":")))
    except OSError:
        pass  # a read-only cache only costs speed


# -- live -----------------------------------------------------------------------------------------
def call_hook(ep, info: PluginInfo) -> list[Spec]:
    """Import one plugin and call its ``modelzoo_specs`` hook; each spec validated on its own."""
    import pluggy

    from .. import hookspecs

    module = load_plugin(ep, info)
    if module is None:
        return []
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(module, name=ep.name)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        info.status, info.error = "failed", f"cannot register: {type(exc).__name__}: {exc}".splitlines()[0]
        return []
    specs: list[Spec] = []
    for impl in pm.hook.modelzoo_specs.get_hookimpls():
        try:
            with stdout_to_stderr() as printed:  # stdout belongs to zoo (--json, --names)
                returned = list(run_plugin_code(impl.function, "its modelzoo_specs hook") or [])
            if printed.count:
                info.notes.append(
                    f"its modelzoo_specs hook printed {printed.count} characters to stdout (sent to stderr)"
                )
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            info.status = "failed"
            if isinstance(exc, (PluginTimeout, PluginExit)):
                info.error = f"modelzoo_specs stopped: {exc}".splitlines()[0]
            else:
                info.error = f"modelzoo_specs raised {type(exc).__name__}: {exc}".splitlines()[0]
            return []
        specs += _validated(returned, info)
    return specs


def _validated(returned: list[Any], info: PluginInfo) -> list[Spec]:
    seen: set[tuple[str, str]] = set()
    good: list[Spec] = []
    owners = _Owners()
    for raw in returned:
        try:
            spec = validate_spec(raw)
        except Exception as exc:
            info.problems.append(
                str(exc)
                if isinstance(exc, ZooError)
                else f"spec {getattr(raw, 'name', raw)!r}: {type(exc).__name__}: {exc}"
            )
            continue
        foreign = foreign_builder(spec.builder, info, owners)
        if foreign:
            info.problems.append(f"spec {spec.name!r}: {foreign}")
            continue
        key = (spec.kind, spec.name.lower())
        if key in seen:
            info.problems.append(f"duplicate {spec.kind} {spec.name!r}; the second was skipped")
            continue
        seen.add(key)
        spec.plugin = info.name
        good.append(spec)
    for spec in good:
        info.counts[spec.kind] = info.counts.get(spec.kind, 0) + 1
    if info.problems:
        info.status = "failed" if not good else "degraded"
        info.error = f"{len(info.problems)} invalid spec(s): {info.problems[0]}"
    return good


class _Owners(dict):
    """Top-level import names -> the installed distributions that provide them (normalized names), with
    the distributions that provide modelzoo plugins; read once per plugin load and only when a spec names
    a builder outside its plugin's package."""

    def __init__(self) -> None:
        super().__init__()
        self._read = False
        self.plugin_dists: set[str] = set()

    def get(self, top: str, default: Any = None) -> Any:
        if not self._read:
            from importlib import metadata

            self._read = True
            self.update(
                {t: [normalized_name(d) for d in dists] for t, dists in metadata.packages_distributions().items()}
            )
            dists = {ep.dist.metadata["Name"] for ep in entry_points() if ep.dist is not None}
            self.plugin_dists = {normalized_name(d) for d in dists} - {"modelzoo"}
        return super().get(top, default)


def foreign_builder(builder: str | None, info: PluginInfo, owners: dict[str, list[str]] | None = None) -> str | None:
    """Why a plugin's spec may not name ``builder`` (None when it may). A builder is plugin code: the
    plugin's own, or another installed plugin's (a plugin adding weights for timm architectures reuses
    ``zoo_timm.build:build``); never the standard library (``os:system``), never the core's ``modelzoo.``
    (except for the core's own entries), never a package of a distribution that is no plugin (a library:
    ``timm:create_model``, ``torch.hub:load``). A module that no distribution claims (an editable
    install, a helper module beside the plugin's) counts as the plugin's own."""
    if not builder:
        return None
    import sys

    top = builder.partition(":")[0].split(".")[0]
    own_top = info.module.split(":")[0].split(".")[0]
    core = info.module.split(":")[0] == CORE_MODULE
    if top == "modelzoo":
        return None if core else f"builder {builder!r} is the core's; a plugin's builders are its own code"
    if top == own_top:
        return None
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return f"builder {builder!r} is the standard library's, not code of plugin {info.name!r}"
    owners = owners if owners is not None else _Owners()
    claimed = owners.get(top, [])
    plugin_dists = getattr(owners, "plugin_dists", set()) | ({normalized_name(info.dist)} if info.dist else set())
    if claimed and not set(claimed) & plugin_dists:
        return f"builder {builder!r} belongs to {', '.join(sorted(set(claimed)))}, not to plugin {info.name!r}"
    return None


# -- putting it together --------------------------------------------------------------------------
def load_entries(
    read_cache: bool = True, write_cache: bool = True, use_registry: bool = True
) -> tuple[list[Spec], dict[str, PluginInfo]]:
    """Every allowed plugin's entries and status, each from the cheapest source that is still right."""
    plugin_timeout()  # a bad MODELZOO_PLUGIN_TIMEOUT is one line now, not a failure of every plugin later
    read_cache = read_cache and cache_enabled()
    write_cache = write_cache and cache_enabled()
    registry = shipped_registry() if use_registry else {}
    allowed = allowed_names()
    specs: list[Spec] = []
    infos: dict[str, PluginInfo] = {}
    folder = catalog_cache_dir()
    versions = installed_versions()
    for ep in entry_points():
        info = plugin_info(ep)
        infos[ep.name] = info
        if allowed is not None and ep.name not in allowed:
            info.status = "disabled"
            continue
        fingerprint = fingerprint_of(ep, versions)
        path = folder / f"{ep.name}-{_key(fingerprint)}.json"
        cached = _read_cached(path, fingerprint) if read_cache else None
        if cached is not None:
            infos[ep.name], found = cached
            specs += found
            continue
        shipped = registry.get(ep.name)
        if shipped is not None and shipped["fingerprint"] == fingerprint:
            found = [Spec.from_dict(e) for e in shipped["entries"]]
            info.source = "registry"
            for spec in found:
                info.counts[spec.kind] = info.counts.get(spec.kind, 0) + 1
        else:
            found = call_hook(ep, info)
            info.source = "live"
        specs += found
        if write_cache and info.status in ("ok", "degraded"):
            _write_cached(path, fingerprint, info, found)
    for name in sorted((allowed or set()) - set(infos)):  # a typo in MODELZOO_PLUGINS hides everything quietly
        infos[name] = PluginInfo(
            name=name, module="", dist=None, version=None, status="missing",
            error="named in MODELZOO_PLUGINS, but no installed plugin has that name",
        )  # fmt: skip
    return specs, infos
