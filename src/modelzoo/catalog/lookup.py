"""The catalog: every spec the installed plugins provide, with name resolution and filters.

Building the catalog calls each plugin's hook in its own ``try`` and validates each spec, so a
plugin that raises or returns junk is reported and skipped. Where each plugin's entries come
from (the user cache, the shipped registry, or a live load) is :mod:`modelzoo.catalog.load`'s job:
a warm or cold ``zoo list`` of unchanged plugins imports no torch.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import ZooError, did_you_mean
from .plugins import PluginInfo
from .specs import Spec


@dataclass
class Catalog:
    specs: list[Spec]
    plugins: dict[str, PluginInfo]
    collisions: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.specs.sort(key=lambda s: (_KIND_ORDER.get(s.kind, 9), _natural_key(s.name), s.plugin))
        self._by_name: dict[str, list[Spec]] = {}
        for spec in self.specs:
            self._by_name.setdefault(spec.name.lower(), []).append(spec)
        # tasks are catalog entries too: their names and aliases map to the canonical task name,
        # and every other entry's `tasks` are written canonically (a head may say "classification").
        # A task's own name always wins over another task's alias, and an alias two tasks claim names
        # neither (so no plugin, whatever its sort order, can take over another task's name or alias).
        tasks = [s for s in self.specs if s.kind == "task"]
        self._task_names: dict[str, str] = {s.name.lower(): s.name for s in tasks}
        claims: dict[str, list[Spec]] = {}
        for spec in tasks:
            for alias in spec.task_meta.aliases:
                claims.setdefault(alias.lower(), []).append(spec)
        #: aliases several tasks claim (or that are another task's name): alias -> the claiming tasks
        self._alias_clashes: dict[str, list[Spec]] = {}
        for alias, claimants in claims.items():
            owner = self._task_names.get(alias)
            names = {s.name for s in claimants}
            if (owner is None and len(names) == 1) or names == {owner}:
                self._task_names.setdefault(alias, claimants[0].name)
            else:
                others = [s for s in claimants if s.name != owner]
                self._alias_clashes[alias] = [*self.lookup("", owner, "task"), *others] if owner else claimants
        if self._task_names:
            for spec in self.specs:
                if spec.kind != "task" and spec.tasks:
                    spec.tasks = sorted({self._task_names.get(t.lower(), t) for t in spec.tasks})
        self._inputs: dict[str, tuple[set[str], str | None]] | None = None
        self.collisions = {
            group[0].name: sorted(s.qualified_name for s in group)
            for group in self._by_name.values()
            if len({s.kind for s in group}) < len(group)
        }
        for alias, claimants in self._alias_clashes.items():
            if alias not in self.collisions:
                self.collisions[alias] = sorted({s.qualified_name for s in claimants})

    @property
    def from_cache(self) -> bool:
        """True when no enabled plugin had to be imported (every entry came from the cache)."""
        return all(p.source == "cache" for p in self.plugins.values() if p.status != "disabled")

    # -- resolution -------------------------------------------------------------------------
    def resolve(self, name: str, kind: str | None = None) -> tuple[Spec, str | None]:
        """Resolve ``name``, ``plugin:name`` or ``arch.tag`` to ``(spec, tag or None)``.

        Exact names win; a name two plugins both provide must be qualified (the error lists the
        qualified names); a miss suggests close names of the same kind. ``hf-hub:ORG/NAME[@REV]`` is a
        Hub checkpoint that is not modelzoo's: the plugin that builds its format describes it
        (:mod:`modelzoo.hub.backbones`).
        """
        if name.startswith("hf-hub:") and kind in (None, "backbone"):
            from ..hub.backbones import hub_spec

            return hub_spec(name), None
        plugin, _, bare = name.rpartition(":") if ":" in name else ("", "", name)
        tag = None
        if kind == "task" and bare.lower() in self._task_names:  # an alias names its task
            bare = self._task_names[bare.lower()]
        candidates = self.lookup(plugin, bare, kind)
        if not candidates and "." in bare:
            arch, _, tag = bare.partition(".")
            candidates = self.lookup(plugin, arch, kind)
        if not candidates and kind in (None, "task") and not plugin:
            self._check_alias_clash(bare)
        if not candidates and kind in (None, "backbone"):
            from ..hub.backbones import known_hub_spec

            known = known_hub_spec(name)  # a Hub checkpoint resolved earlier, named by its spec name
            if known is not None:
                return known, None
        if not candidates:
            pool = list(dict.fromkeys(s.name for s in self.specs if kind is None or s.kind == kind))
            what = kind or "model"
            where = f" in plugin {plugin!r}" if plugin else ""
            raise ZooError(f"unknown {what} {name!r}{where}{did_you_mean(bare, pool)} (see: zoo list){_restricted()}")
        if len(candidates) > 1:
            options = ", ".join(s.qualified_name for s in candidates)
            raise ZooError(f"{name!r} is provided by several plugins; name one of: {options}")
        spec = candidates[0]
        if tag is not None:
            if not tag.isprintable():  # never echo a line break into the one-line error
                raise ZooError(f"unknown pretrained tag {f'{spec.name}.{tag}'!r} (see: zoo info {spec.qualified_name})")
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
            self._check_alias_clash(bare)
            known = sorted(self._task_names)
            if not known:
                raise ZooError(
                    f"unknown task {name!r}: no task plugin is installed (zoo plugins install zoo-classification)"
                )
            tasks = ", ".join(s.name for s in self.specs if s.kind == "task")
            raise ZooError(f"unknown task {name!r}{did_you_mean(bare.lower(), known)} (tasks: {tasks})")
        return self.resolve(f"{plugin}:{canonical}" if plugin else canonical, kind="task")[0]

    def _check_alias_clash(self, alias: str) -> None:
        """An alias several tasks claim names none of them: say which, and to name the task instead."""
        claimants = self._alias_clashes.get(alias.lower())
        if claimants:
            which = ", ".join(f"{s.name} (plugin {s.plugin})" for s in claimants)
            raise ZooError(f"task alias {alias!r} is claimed by several tasks: {which}; name the task itself")

    def task_label(self, name: str) -> str:
        """The short name ``zoo list`` shows for a task (its first alias), or the name itself."""
        found = self.lookup("", name, "task")
        aliases = [a for a in found[0].task_meta.aliases if a.lower() not in self._alias_clashes] if found else []
        return aliases[0] if aliases else name

    # -- which backbones serve which task (heads decide, never the backbone's own list) -----------
    def serves(self, backbone: Spec, task: str) -> bool:
        """True when ``backbone`` can serve ``task`` (canonical name): a head the task accepts (one
        that lists it in ``tasks``) consumes an output kind the backbone emits, and the two do not
        name different modalities. A backbone's own ``tasks`` list restricts nothing, so a new task
        plugin reuses every backbone in the catalog."""
        consumed, modality = self._task_inputs().get(task, (set(), None))
        if backbone.modality and modality and backbone.modality != modality:
            return False
        return bool(consumed & set(backbone.outputs))

    def task_modality(self, task: str) -> str | None:
        """The modality a task declares (None: undeclared, or no such task installed)."""
        found = self.lookup("", task, "task")
        return found[0].modality if found else None

    def tasks_for(self, backbone: Spec) -> list[str]:
        """Every task ``backbone`` serves (see :meth:`serves`), sorted."""
        return sorted(t for t in self._task_inputs() if self.serves(backbone, t))

    def _task_inputs(self) -> dict[str, tuple[set[str], str | None]]:
        """task -> (output kinds its heads consume, its declared modality), built once."""
        if self._inputs is None:
            inputs: dict[str, tuple[set[str], str | None]] = {}
            for spec in self.specs:
                if spec.kind == "head":
                    for t in spec.tasks:
                        inputs.setdefault(t, (set(), self.task_modality(t)))[0].update(spec.consumes)
            self._inputs = inputs
        return self._inputs

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
            if task and not (self.serves(spec, task) if spec.kind == "backbone" else task in spec.tasks):
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


def _restricted() -> str:
    """A note for misses when ``MODELZOO_PLUGINS`` limits which plugins load."""
    from .plugins import allowed_names

    allowed = allowed_names()
    if allowed is None:
        return ""
    return f"; note MODELZOO_PLUGINS={','.join(sorted(allowed))} limits which plugins are loaded"


_KIND_ORDER = {"backbone": 0, "head": 1, "dataset": 2, "recipe": 3, "task": 4}


def _match(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def _has_license(spec: Spec, license: str) -> bool:
    wanted = license.lower()
    licenses = {(spec.license or "").lower()} | {(t.license or "").lower() for t in spec.pretrained}
    return any(fnmatch.fnmatchcase(lic, wanted) for lic in licenses if lic)


def _natural_key(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name.lower())]


# -- loading ------------------------------------------------------------------------------------
def build_catalog() -> Catalog:
    """Every installed plugin enumerated live (imports them all): the ground truth ``registry.json`` is
    built from, bypassing the cache and the shipped registry."""
    from .load import load_entries

    specs, plugins = load_entries(read_cache=False, write_cache=False, use_registry=False)
    return Catalog(specs=specs, plugins=plugins)


def load_catalog(refresh: bool = False) -> Catalog:
    """The catalog, each plugin's entries from the cache, the shipped registry or a live load
    (:mod:`modelzoo.catalog.load` says which is used when); ``refresh`` enumerates every plugin live."""
    from .load import load_entries

    if refresh:  # enumerate live, and cache what was found for the listings that follow
        specs, plugins = load_entries(read_cache=False, use_registry=False)
    else:
        specs, plugins = load_entries()
    return Catalog(specs=specs, plugins=plugins)


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


def infer_task(backbone: Spec, head: Spec) -> str:
    """The one task of the head's that the backbone serves (a recipe that names no task); when several
    fit, the one among the tasks the backbone's plugin lists for it (a new task never changes what an
    existing recipe or ``assemble`` call means)."""
    if not set(head.consumes) & set(backbone.outputs):
        raise ZooError(
            f"head {head.name!r} consumes {'/'.join(head.consumes)} features but backbone {backbone.name!r}"
            f" emits {'/'.join(backbone.outputs)}; pick a head for those (zoo list --kind head)"
        )
    cat = catalog()
    shared = [t for t in head.tasks if cat.serves(backbone, t)]
    if len(shared) == 1:
        return shared[0]
    if not shared:
        raise ZooError(
            f"head {head.name!r} is for {', '.join(head.tasks) or 'no task'}, none of which backbone"
            f" {backbone.name!r} ({backbone.modality} input) serves; pick a head for its tasks (zoo list --kind head)"
        )
    usual = [t for t in shared if t in backbone.tasks]  # the tasks its plugin lists for it break the tie
    if len(usual) == 1:
        return usual[0]
    raise ZooError(f"backbone {backbone.name!r} + head {head.name!r} fit several tasks; set task = one of {shared}")
