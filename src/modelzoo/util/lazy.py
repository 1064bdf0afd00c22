"""Lazy re-exports: a package's surface, imported on first use.

pluggy and pytest keep their code in private modules behind one short public module; here each
subpackage's ``__init__`` names its surface the same way, but imports a name only when it is first
asked for, so ``import modelzoo.catalog`` stays free of torch and a package can list names from
modules that need it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose surface is ``exports``: public name -> the module
    (relative to ``package``, e.g. ``".lookup"``) that defines it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
