"""Errors a user can act on.

Every failure that reaches the CLI is a :class:`ZooError` whose message is one line that
names the fix; the CLI prints it and exits 2 instead of showing a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """A user-facing error: one line, naming what to do about it."""

    exit_code = 2


class SpecError(ZooError):
    """A plugin returned a spec that breaks the contract."""


class RecipeError(ZooError):
    """A recipe field is invalid; the message names the field and the fix."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``"; did you mean: a, b?"`` for close matches of ``name``, or ``""``."""
    pool = list(choices)
    close = difflib.get_close_matches(name, pool, n=n, cutoff=0.6)
    if not close:
        lowered = name.lower()
        close = [c for c in pool if lowered in c.lower()][:n]
    return f"; did you mean: {', '.join(close)}?" if close else ""
