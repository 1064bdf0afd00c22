"""Settings read from the environment: a bad value is one line naming the variable, never a crash later."""

from __future__ import annotations

import os


def env_number(name: str, default: float, unit: str) -> float:
    """The positive number ``$name`` holds (``default`` when unset or empty); anything else is a ZooError."""
    from ..errors import ZooError

    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:
        raise ZooError(f"{name}={raw!r}: give a positive number of {unit}")
    return value
