"""The catalog: every spec the installed plugins provide, with name resolution and filters.

Building the catalog calls each plugin's hook in its own ``try`` and validates each spec, so a
plugin that raises or returns junk is reported and skipped. The result is cached on disk keyed by
the installed plugin distributions (name, version, install time) and the versions of what they
depend on (timm, torchvision...), so a warm ``zoo list`` reads one JSON file and imports no torch.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import ZooError, did_you_mean
from .plugins import PluginInfo, allowed_names
from .specs import Spec, validate_spec

CACHE_FORMAT = 1


@dataclass
class Catalog:
    specs: list[Spec]
    plugins: dict[str, PluginInfo]
    collisions: dict[str, list[str]] = field(default_factory=dict)
    from_cache: bool = False

    def __post_init__(self) -> None:
        if not self.from_cache:  # cached catalogs are stored already sorted
            self.specs.sort(key=lambda s: (_KIND_ORDER.get(s.kind, 9), _natural_key(s.name), s.plugin))
        self._by_name: dict[str, list[Spec]] = {}
        for spec in self.specs:
            self._by_name.setdefault(spec.name.lower(), []).append(spec)
        # tasks are catalog entries too: their names and aliases map to the canonical task name,
        # and every other entry's `tasks` are written canonically (a head may say "classification")
        self._task_names: dict[str, str] = {}
        for spec in self.specs:
            if spec.kind == "task":
                for alias in [spec.name, *spec.meta.get("aliases", [])]:
                    self._task_names.setdefault(alias.lower(), spec.name)
        if self._task_names:
            for spec in self.specs:
                if spec.kind != "task" and spec.tasks:
                    spec.tasks = sorted({self._task_names.get(t.lower(), t) for t in spec.tasks})
        self.collisions = {
            group[0].name: sorted(s.qualified_name for s in group)
            for group in self._by_name.values()
            if len({s.kind for s in group}) < len(group)
        }

    # -- resolution -------------------------------------------------------------------------
    def resolve(self, name: str, kind: str | None = None) -> tuple[Spec, str | None]:
        """Resolve ``name``, ``plugin:name`` or ``arch.tag`` to ``(spec, tag or None)``.

        Exact names win; a name two plugins both provide must be qualified (the error lists the
        qualified names); a miss suggests close names of the same kind.
        """
        plugin, _, bare = name.rpartition(":") if ":" in name else ("", "", name)
        tag = None
        if kind == "task" and bare.lower() in self._task_names:  # an alias names its task
            bare = self._task_names[bare.lower()]
        candidates = self.lookup(plugin, bare, kind)
        if not candidates and "." in bare:
            arch, _, tag = bare.partition(".")
            candidates = self.lookup(plugin, arch, kind)
        if not candidates:
            pool = list(dict.fromkeys(s.name for s in self.specs if kind is None or s.kind == kind))
            what = kind or "model"
            where = f" in plugin {plugin!r}" if plugin else ""
            raise ZooError(f"unknown {what} {name!r}{where}{did_you_mean(bare, pool)} (see: zoo list)")
        if len(candidates) > 1:
            options = ", ".join(s.qualified_name for s in candidates)
            raise ZooError(f"{name!r} is provided by several plugins; name one of: {options}")
        spec = candidates[0]
        if tag is not None:
            spec.tag(tag)  # raises a did-you-mean error for unknown tags
        return spec, tag

    def get(self, name: str, kind: str | None = None) -> Spec:
        return self.resolve(name, kind)[0]

    # -- tasks ------------------------------------------------------------------------------------
    def task(self, name: str) -> Spec:
        """The task spec for a task name or alias (an alias -> the canonical task name), did-you-mean on a miss."""
        plugin, _, bare = name.strip().rpartition(":")
        canonical = self._task_names.get(bare.lower())
        if canonical is None:
            known = sorted(self._task_names)
            if not known:
                raise ZooError(
                    f"unknown task {name!r}: no task plugin is installed (zoo plugins install zoo-classification)"
                )
            tasks = ", ".join(s.name for s in self.specs if s.kind == "task")
            raise ZooError(f"unknown task {name!r}{did_you_mean(bare.lower(), known)} (tasks: {tasks})")
        return self.resolve(f"{plugin}:{canonical}" if plugin else canonical, kind="task")[0]

    def task_label(self, name: str) -> str:
        """The short name ``zoo list`` shows for a task (its first alias), or the name itself."""
        found = self.lookup("", name, "task")
        aliases = found[0].meta.get("aliases") if found else None
        return aliases[0] if aliases else name

    def lookup(self, plugin: str, name: str, kind: str | None) -> list[Spec]:
        found = self._by_name.get(name.lower(), [])
        return [s for s in found if (not plugin or s.plugin == plugin) and (kind is None or s.kind == kind)]

    # -- filtering --------------------------------------------------------------------------
    def filter(
        self,
        include: Iterable[str] | str | None = None,
        exclude: Iterable[str] | str | None = None,
        kind: str | None = None,
        task: str | None = None,
        plugin: str | None = None,
        license: str | None = None,
        pretrained: bool = False,
    ) -> list[Spec]:
        """timm-style wildcard include/exclude plus attribute filters; sorted by kind then name."""
        inc = [include] if isinstance(include, str) else list(include or [])
        exc = [exclude] if isinstance(exclude, str) else list(exclude or [])
        task = self.task(task).name if task else None
        out = []
        for spec in self.specs:
            if kind and spec.kind != kind:
                continue
            if task and task not in spec.tasks:
                continue
            if plugin and spec.plugin != plugin:
                continue
            if pretrained and not spec.pretrained:
                continue
            if license and not _has_license(spec, license):
                continue
            names = [spec.name] + [f"{spec.name}.{t.tag}" for t in spec.pretrained]
            if inc and not any(_match(n, p) for p in inc for n in names):
                continue
            if exc and any(_match(spec.name, p) for p in exc):
                continue
            out.append(spec)
        return out  # self.specs is kept in display order


_KIND_ORDER = {"backbone": 0, "head": 1, "dataset": 2, "recipe": 3, "task": 4}


def _match(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def _has_license(spec: Spec, license: str) -> bool:
    wanted = license.lower()
    licenses = {(spec.license or "").lower()} | {(t.license or "").lower() for t in spec.pretrained}
    return any(fnmatch.fnmatchcase(lic, wanted) for lic in licenses if lic)


def _natural_key(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name.lower())]


# -- building ---------------------------------------------------------------------------------
def build_catalog() -> Catalog:
    """Load the plugins and call each hook implementation in isolation."""
    pm, infos = load_plugins_for_catalog()
    specs: list[Spec] = []
    for impl in pm.hook.modelzoo_specs.get_hookimpls():
        info = infos.get(impl.plugin_name)
        try:
            returned = list(impl.function() or [])
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            if info:
                info.status = "failed"
                info.error = f"modelzoo_specs raised {type(exc).__name__}: {exc}".splitlines()[0]
            continue
        seen: set[tuple[str, str]] = set()
        good = 0
        for raw in returned:
            try:
                spec = validate_spec(raw)
            except Exception as exc:
                if info:
                    reason = (
                        str(exc)
                        if isinstance(exc, ZooError)
                        else f"spec {getattr(raw, 'name', raw)!r}: {type(exc).__name__}: {exc}"
                    )
                    info.problems.append(reason)
                continue
            key = (spec.kind, spec.name.lower())
            if key in seen:
                if info:
                    info.problems.append(f"duplicate {spec.kind} {spec.name!r}; the second was skipped")
                continue
            seen.add(key)
            spec.plugin = impl.plugin_name
            specs.append(spec)
            good += 1
            if info:
                info.counts[spec.kind] = info.counts.get(spec.kind, 0) + 1
        if info and info.problems:
            info.status = "failed" if good == 0 else "degraded"
            info.error = f"{len(info.problems)} invalid spec(s): {info.problems[0]}"
    return Catalog(specs=specs, plugins=infos)


def load_plugins_for_catalog():
    from .plugins import load_plugins

    return load_plugins()


# -- cache ------------------------------------------------------------------------------------
def cache_dir() -> Path:
    override = os.environ.get("MODELZOO_CACHE")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("modelzoo"))


def cache_key() -> str:
    """A key that changes whenever the environment's installed distributions change.

    Installing, upgrading or removing any distribution (a plugin, or timm under it) rewrites an
    entry of a ``sys.path`` directory and so changes that directory's mtime; hashing those mtimes
    costs a few ``stat`` calls, where reading every plugin's metadata would cost tens of ms.
    Editable plugins whose code changes in place need ``zoo list --refresh``.
    """
    from . import __version__

    allow = allowed_names()
    parts = [
        f"format={CACHE_FORMAT}",
        f"modelzoo={__version__}",
        f"allow={'*' if allow is None else ','.join(sorted(allow))}",
    ]
    parts.append(f"python={sys.prefix}")
    for entry in sys.path:
        if not entry.rstrip("/\\").endswith(("site-packages", "dist-packages")):
            continue  # the script dir, cwd or test dirs would make the key depend on where zoo runs
        try:
            parts.append(f"{entry}={os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}=-")
    # the core's own entries (built-in heads, datasets, zoo/ recipes) can change in a source checkout
    from .builtin import recipe_files

    for path in [Path(__file__).with_name("builtin.py"), *recipe_files()]:
        parts.append(f"{path}={path.stat().st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _serialize(catalog: Catalog, key: str) -> str:
    return json.dumps(
        {
            "format": CACHE_FORMAT,
            "key": key,
            "plugins": [asdict(p) for p in catalog.plugins.values()],
            "specs": [s.to_dict() for s in catalog.specs],
        },
        separators=(",", ":"),
    )


def load_catalog(refresh: bool = False) -> Catalog:
    """The catalog, from the on-disk cache when its key still matches, else rebuilt and cached."""
    use_cache = os.environ.get("MODELZOO_NO_CACHE", "") in ("", "0")
    key = cache_key()
    path = cache_dir() / f"catalog-{key}.json"
    if use_cache and not refresh and path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            plugins = {p["name"]: PluginInfo(**p) for p in data["plugins"]}
            specs = [Spec.from_dict(s) for s in data["specs"]]
            return Catalog(specs=specs, plugins=plugins, from_cache=True)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a corrupt or foreign cache file is rebuilt below
    catalog = build_catalog()
    if use_cache:
        from .fsutil import atomic_write_text

        try:
            for stale in path.parent.glob("catalog-*.json"):
                stale.unlink(missing_ok=True)
            atomic_write_text(path, _serialize(catalog, key))
        except OSError:
            pass  # a read-only cache dir only costs speed
    return catalog


_CATALOG: Catalog | None = None


def catalog(refresh: bool = False) -> Catalog:
    """The process-wide catalog (loaded once)."""
    global _CATALOG
    if _CATALOG is None or refresh:
        _CATALOG = load_catalog(refresh=refresh)
    return _CATALOG


def reset() -> None:
    """Forget the in-process catalog (after installing or removing a plugin)."""
    global _CATALOG
    _CATALOG = None


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
    return [s.name for s in catalog().filter(include, exclude, kind, task, plugin, license, pretrained)]


def get(name: str, kind: str | None = None) -> Spec:
    """The spec for ``name`` (``arch``, ``arch.tag`` or ``plugin:name``); did-you-mean on a miss."""
    return catalog().get(name, kind)
