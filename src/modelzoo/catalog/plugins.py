"""Discovering plugins, knowing when their entries change, and loading each one in isolation.

Every entry point in the ``modelzoo`` group is loaded in its own ``try``; a plugin that fails to
import is recorded with its reason and the rest keep working (DESIGN principle 3). The core's own
recipes come in through the same entry-point path (``core = modelzoo.catalog.builtin``), as pytest and llm do.
``MODELZOO_PLUGINS=a,b`` restricts loading to those names; ``MODELZOO_PLUGINS=`` loads none.

A plugin's catalog entries are a function of its code and of what it enumerates, so each plugin has
a **fingerprint** that covers exactly that, computed without importing it: its distribution and
version, the installed versions of what that distribution requires (the library it enumerates), and a
digest of its own source files (editable installs change in place). Equal fingerprints, equal entries.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GROUP = "modelzoo"
#: an import slower than this (seconds) is noted in ``zoo plugins``
SLOW_IMPORT = 1.0
#: seconds a plugin's import or hook may take before zoo goes on without it (MODELZOO_PLUGIN_TIMEOUT)
PLUGIN_TIMEOUT = 120.0


@dataclass
class PluginInfo:
    """What ``zoo plugins`` shows for one entry point."""

    name: str
    module: str
    dist: str | None
    version: str | None
    status: str = "ok"  # ok | degraded | failed | disabled | missing (named in MODELZOO_PLUGINS, not installed)
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: where its entries came from this time: "cache", "registry" (the shipped registry.json) or "live"
    source: str = "live"
    #: what a working plugin does that it should not, seen when it was loaded live (slow import, prints)
    notes: list[str] = field(default_factory=list)


def entry_points() -> list:
    """The ``modelzoo`` entry points, sorted, de-duplicated by name (first distribution wins)."""
    from importlib import metadata  # imported here: only what needs it pays for it

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


def plugin_info(ep) -> PluginInfo:
    dist = ep.dist.metadata["Name"] if ep.dist is not None else None
    version = ep.dist.version if ep.dist is not None else None
    return PluginInfo(name=ep.name, module=ep.value, dist=dist, version=version)


class Printed:
    """What plugin code printed while :func:`stdout_to_stderr` held stdout, in characters and bytes."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.count = 0

    def write(self, text: str) -> int:  # sys.stdout's role: counted, then written to stderr
        self.count += len(text)
        return self.target.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, encoding, isatty...: stderr's
        return getattr(self.target, name)


@contextmanager
def stdout_to_stderr() -> Iterator[Printed]:
    """Send whatever plugin code prints to stderr: stdout belongs to ``zoo`` (``--json``, ``--names``).

    Both levels: ``sys.stdout`` (``print``) and file descriptor 1 (``os.write(1, ...)``, C extensions,
    ``sys.__stdout__``), so a plugin cannot corrupt ``zoo``'s output however it writes. What it wrote is
    counted (``Printed.count``), so the plugin can be told about it."""
    import contextlib
    import sys
    import tempfile

    def flush() -> None:
        for stream in (sys.stdout, sys.__stdout__, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()

    flush()
    spool, saved = None, None
    try:
        os.fstat(1)
        spool = tempfile.TemporaryFile()
        saved = os.dup(1)
        os.dup2(spool.fileno(), 1)
    except OSError:  # no descriptor 1 (a daemon), no temp dir: redirecting sys.stdout is all there is to do
        if saved is not None:
            os.close(saved)
        if spool is not None:
            spool.close()
        spool, saved = None, None
    printed = Printed(sys.stderr)
    try:
        with contextlib.redirect_stdout(printed):  # type: ignore[type-var]
            yield printed
    finally:
        flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
        if spool is not None:
            spool.seek(0)
            data = spool.read()
            spool.close()
            if data:
                printed.count += len(data)
                with contextlib.suppress(OSError):
                    os.write(2, data)


class PluginExit(BaseException):
    """Plugin code called ``os._exit``: stopped there, so the plugin is reported and zoo goes on."""


class PluginTimeout(Exception):
    """Plugin code did not return within the deadline."""


_plugin_threads: set[int] = set()
_real_exit = os._exit


def _guarded_exit(code: int) -> None:
    import threading

    if threading.get_ident() in _plugin_threads:
        raise PluginExit(f"it called os._exit({code})")
    _real_exit(code)


def plugin_timeout() -> float:
    """The deadline for one plugin's import or hook, in seconds (``MODELZOO_PLUGIN_TIMEOUT``)."""
    from ..util.env import env_number

    return env_number("MODELZOO_PLUGIN_TIMEOUT", PLUGIN_TIMEOUT, "seconds, e.g. 120")


def run_plugin_code(fn: Any, what: str) -> Any:
    """``fn()`` (a plugin's import or hook) in a thread of its own, under a deadline.

    A plugin that never returns cannot hang ``zoo``: after :func:`plugin_timeout` seconds it is left
    behind (a daemon thread) and :class:`PluginTimeout` says so. ``sys.exit`` raises as usual and
    ``os._exit`` in that thread raises :class:`PluginExit`, so neither ends ``zoo`` (whose ``--json``
    output would then be empty while it exits 0). Whatever ``fn`` raises is raised here."""
    from ..util.deadline import DeadlinePassed, call_with_deadline

    timeout = plugin_timeout()
    if os._exit is not _guarded_exit:
        os._exit = _guarded_exit
    try:
        return call_with_deadline(fn, timeout, f"modelzoo-plugin {what}", threads=_plugin_threads)
    except DeadlinePassed:
        raise PluginTimeout(f"{what} did not finish within {timeout:g} s (MODELZOO_PLUGIN_TIMEOUT)") from None


def load_plugin(ep, info: PluginInfo) -> Any | None:
    """Import one entry point's module; on any failure record why in ``info`` and return None.

    Whatever the plugin prints goes to stderr (:func:`stdout_to_stderr`)."""
    import time

    started = time.perf_counter()
    try:
        with stdout_to_stderr() as printed:
            module = run_plugin_code(ep.load, "its import")
        seconds = time.perf_counter() - started
        if seconds >= SLOW_IMPORT:
            info.notes.append(f"importing it took {seconds:.1f} s (each listing that is not cached waits for it)")
        if printed.count:
            info.notes.append(f"it printed {printed.count} characters to stdout while importing (sent to stderr)")
        return module
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        info.status = "failed"
        if isinstance(exc, (PluginTimeout, PluginExit)):
            info.error = f"import stopped: {exc}".splitlines()[0]
        else:
            info.error = f"import failed: {type(exc).__name__}: {exc}".splitlines()[0]
        return None


# -- fingerprints -------------------------------------------------------------------------------
def requirement_name(requirement: str) -> str | None:
    """The distribution a ``Requires-Dist`` line names, or None for an extra's optional dependency."""
    if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
        return None
    name = re.split(r"[<>=!~\[ ;(]", requirement.strip(), maxsplit=1)[0]
    return name or None


def normalized_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """Every installed distribution's version by normalised name, first on ``sys.path`` winning (as
    ``importlib.metadata.version`` does). Read from the ``name-version.dist-info`` folder names, so one
    directory listing per path entry replaces a metadata parse per lookup (``zoo list`` runs this on
    every call: it is how a warm listing notices an upgraded library)."""
    from importlib import metadata

    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        folder = getattr(dist, "_path", None)
        stem = folder.name[: -len(".dist-info")] if folder is not None and folder.name.endswith(".dist-info") else ""
        if "-" in stem:
            name, version = stem.split("-", 1)
        else:  # an egg-info or an unusual installer: ask the metadata
            name, version = dist.metadata["Name"] or "", dist.version
        versions.setdefault(normalized_name(name), version)
    return versions


def dist_fingerprint(dist, versions: dict[str, str] | None = None) -> dict[str, Any]:
    """An installed distribution's (``importlib.metadata.Distribution``) name, version and the installed
    versions of its direct requirements (timm under a timm plugin...); ``versions`` is an
    :func:`installed_versions` result to reuse."""
    versions = installed_versions() if versions is None else versions
    requires: dict[str, str | None] = {}
    for line in dist.requires or []:
        name = requirement_name(line)
        if name is not None:
            requires[name.lower()] = versions.get(normalized_name(name))
    return {"distribution": dist.metadata["Name"], "version": dist.version, "requires": dict(sorted(requires.items()))}


def source_files(module: str) -> list[Path]:
    """The Python files of ``module``'s top-level package (or the module file), found without importing it."""
    import importlib.util

    top = module.split(":", 1)[0].split(".", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        files: list[Path] = []
        for location in spec.submodule_search_locations:
            root = Path(location)
            if root.is_dir():
                files += sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
        return files
    return [Path(spec.origin)] if spec.origin and os.path.isfile(spec.origin) else []


def files_digest(files: list[Path]) -> str:
    """sha256 over file names and contents (a file that vanished meanwhile counts as empty)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            pass
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def code_fingerprint(cls: type, plugin: str | None = None) -> dict[str, Any]:
    """What decides how ``cls`` (a plugin's class, e.g. a task) behaves, as plain data: the
    distribution and version of ``plugin`` (an entry-point name) and a digest of the source of every
    non-core package in ``cls``'s MRO (editable installs change in place). Every cache of results
    that plugin code computes (cached features, transfer scores) puts this in its key, so editing or
    upgrading the plugin invalidates them."""
    dist = version = None
    for ep in entry_points() if plugin else []:
        if ep.name == plugin and ep.dist is not None:
            dist, version = ep.dist.metadata["Name"], ep.dist.version
            break
    tops = sorted({k.__module__.split(".")[0] for k in cls.__mro__} - {"builtins", "modelzoo"})
    files = [p for top in tops for p in source_files(top)]
    return {
        "distribution": dist,
        "version": version,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "source": files_digest(files),
    }


def plugin_fingerprint(
    ep, extra_files: list[Path] | None = None, own_source: bool = True, versions: dict[str, str] | None = None
) -> dict[str, Any]:
    """Everything a plugin's catalog entries depend on, as plain data (see the module docstring):
    the digest covers its package's source (``own_source``) and ``extra_files``."""
    dist = ep.dist.metadata["Name"] if ep.dist is not None else None
    base = dist_fingerprint(ep.dist, versions) if dist else {"distribution": dist, "version": None, "requires": {}}
    files = (source_files(ep.value) if own_source else []) + list(extra_files or [])
    return {**base, "entry_point": ep.value, "source": files_digest(files)}
