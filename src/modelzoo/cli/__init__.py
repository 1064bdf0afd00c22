"""The ``zoo`` command: a list of command groups, each adding its sub-commands.

:mod:`.main` builds the parser from :data:`~modelzoo.cli.main.COMMAND_GROUPS` (the catalog commands,
the engine's, the Hub's, selection) and turns every error into one line; :mod:`.output` is the one
place that prints (tables, JSON, notes, escaped text); :mod:`.scaffold` writes plugin skeletons and
:mod:`.bugreport` says whose bug an unexpected exception is.
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "build_parser": ".main",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
