"""Where modelzoo keeps what it caches (catalog entries, converted weights, datasets, features)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$MODELZOO_CACHE``, else the platform's user cache folder (``~/.cache/modelzoo`` on Linux)."""
    override = os.environ.get("MODELZOO_CACHE")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("modelzoo"))
