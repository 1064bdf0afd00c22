"""The core's built-in plugin: the zoo's recipes (``zoo/*.toml``, shipped as package data), loaded
through the same entry-point path as any third-party plugin (``core = "modelzoo.catalog.builtin"``).

It provides no backbone, head, dataset or task: those come from plugins, first-party ones included.
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

from ..hookspecs import hookimpl
from .specs import Spec


def recipe_files() -> list[Path]:
    """The recipe TOML files of the installed ``modelzoo_recipes`` package (the repo's zoo/ folder)."""
    spec = importlib.util.find_spec("modelzoo_recipes")
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(p for loc in spec.submodule_search_locations for p in Path(loc).glob("*.toml"))


def _bare(name: object) -> object:
    """``plugin:name`` -> ``name``: the zoo's recipes name every entry with its plugin, so that no other
    plugin providing the same name can make them ambiguous; ``hf-hub:`` references are kept whole."""
    if isinstance(name, str) and ":" in name and not name.startswith("hf-hub:"):
        return name.rpartition(":")[2]
    return name


def _recipes() -> list[Spec]:
    """The zoo/ recipes, shipped in the core distribution as package data (``modelzoo_recipes``)."""
    specs = []
    for f in recipe_files():
        if not f.name.endswith(".toml"):
            continue
        data = tomllib.loads(f.read_text(encoding="utf-8"))
        model, dataset = data.get("model", {}), data.get("data", {})
        specs.append(
            Spec(
                name=data.get("name", f.name[: -len(".toml")]),
                kind="recipe",
                tasks=[data["task"]] if isinstance(data.get("task"), str) else [],
                description=data.get("description", ""),
                meta={  # the entries as zoo list names them; the file qualifies them (docs/plugins.md)
                    "backbone": _bare(model.get("backbone")),
                    "head": _bare(model.get("head", "linear")),
                    "pretrained": model.get("pretrained", True),
                    "dataset": _bare(dataset.get("dataset")) or dataset.get("path"),
                    "stages": [s.get("train", "head") for s in data.get("stages", [])],
                    "reference": data.get("reference", {}),
                    "file": f"zoo/{f.name}",
                },
            )
        )
    return specs


@hookimpl
def modelzoo_specs() -> list[Spec]:
    return _recipes()
