"""``registry.json``: the committed catalog of the first-party plugins and the zoo/ recipes.

It is generated (``zoo registry build``), stably ordered, and a test fails when it is stale, so the
published catalog never drifts from the code that defines it.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ZooError

FIRST_PARTY = ("core", "timm", "torchvision", "text", "detection")
FORMAT = 1


def build_registry() -> dict[str, Any]:
    """Build the registry from the installed first-party plugins (all must load cleanly)."""
    from .catalog import build_catalog

    cat = build_catalog()
    plugins = {}
    for name in FIRST_PARTY:
        info = cat.plugins.get(name)
        if info is None:
            continue
        if info.status != "ok":
            raise ZooError(
                f"first-party plugin {name!r} is {info.status}: {info.error}; fix it before building the registry"
            )
        plugins[name] = {"distribution": info.dist, "version": info.version}
    libraries = {}
    for lib in ("timm", "torchvision", "transformers"):
        try:
            libraries[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    entries = [s.to_dict() for s in cat.specs if s.plugin in plugins]
    entries.sort(key=lambda e: (e["kind"], e["plugin"], e["name"]))
    return {
        "format": FORMAT,
        "generated_by": "zoo registry build",
        "plugins": plugins,
        "libraries": libraries,
        "entries": entries,
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def write_registry(data: dict[str, Any], path: str | Path) -> None:
    from .fsutil import atomic_write_text

    atomic_write_text(path, render(data))


def check_registry(path: str | Path) -> str | None:
    """None when ``path`` matches a fresh build, else a short description of the difference."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    fresh = build_registry()
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
    header = (
        ""
        if current.get("plugins") == fresh["plugins"] and current.get("libraries") == fresh["libraries"]
        else ", versions differ"
    )
    return f"{added} added, {removed} removed, {changed} changed{header}"
