"""``registry.json``: the committed catalog of the first-party plugins and the zoo/ recipes.

It is generated (``zoo registry build``), stably ordered, and a test fails when it is stale, so the
published catalog never drifts from the code that defines it. Which plugins it covers is the
repository's choice, read from ``[tool.modelzoo] registry-plugins`` in the ``pyproject.toml`` beside
it. Each plugin is recorded with its fingerprint (distribution, version, the versions of what it
requires, a digest of its source; :mod:`modelzoo.catalog.plugins`), which is what makes its entries valid:
it ships with the core, and a cold ``zoo list`` uses a plugin's shipped entries exactly when the
installed plugin has the same fingerprint (:mod:`modelzoo.catalog.load`).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ZooError

FORMAT = 2


def registry_plugins(root: str | Path) -> list[str]:
    """The plugin names ``root/pyproject.toml`` lists under ``[tool.modelzoo] registry-plugins``."""
    path = Path(root) / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        names = data["tool"]["modelzoo"]["registry-plugins"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        raise ZooError(
            f"{path} has no [tool.modelzoo] registry-plugins list; run zoo registry build in the repository root"
        ) from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ZooError(f"{path}: [tool.modelzoo] registry-plugins must be a list of plugin names")
    return names


def build_registry(plugins: list[str]) -> dict[str, Any]:
    """Build the registry from the named installed plugins (all must load cleanly)."""
    from .load import fingerprint_of
    from .lookup import build_catalog
    from .plugins import entry_points

    cat = build_catalog()
    eps = {ep.name: ep for ep in entry_points()}
    recorded = {}
    for name in plugins:
        info = cat.plugins.get(name)
        if info is None or name not in eps:
            raise ZooError(f"plugin {name!r} is not installed; install it before building the registry")
        if info.status != "ok":
            raise ZooError(f"plugin {name!r} is {info.status}: {info.error}; fix it before building the registry")
        recorded[name] = fingerprint_of(eps[name])
    entries = [s.to_dict() for s in cat.specs if s.plugin in recorded]
    entries.sort(key=lambda e: (e["kind"], e["plugin"], e["name"]))
    return {"format": FORMAT, "generated_by": "zoo registry build", "plugins": recorded, "entries": entries}


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def write_registry(data: dict[str, Any], path: str | Path) -> None:
    from ..util.files import atomic_write_text

    atomic_write_text(path, render(data))


def check_registry(path: str | Path) -> str | None:
    """None when ``path`` matches a fresh build, else a short description of the difference."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    fresh = build_registry(registry_plugins(path.parent))
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return "not valid JSON"
    if current == json.loads(render(fresh)):
        return None
    old = {(e["kind"], e["plugin"], e["name"]): e for e in current.get("entries", [])}
    new = {(e["kind"], e["plugin"], e["name"]): e for e in fresh["entries"]}
    added, removed = len(new.keys() - old.keys()), len(old.keys() - new.keys())
    changed = sum(1 for k in new.keys() & old.keys() if new[k] != old[k])
    header = "" if current.get("plugins") == fresh["plugins"] else ", versions differ"
    return f"{added} added, {removed} removed, {changed} changed{header}"
