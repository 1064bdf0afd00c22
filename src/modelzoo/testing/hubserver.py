"""A small Hugging Face Hub-compatible HTTP server, so the REAL ``huggingface_hub`` client can be tested offline.

Backwards-compatible home of the names now in :mod:`modelzoo.testing.hub` (see there); run the server
by hand with ``python -m modelzoo.testing.hubserver [--port N]``.
"""

from __future__ import annotations

from .hub import *  # noqa: F403  (the package's surface is this module's)
from .hub import __all__ as _SURFACE
from .hub.server import main
from .hub.store import COMMIT_RE, GITATTRIBUTES, LFS_POINTER, TYPE_PLURAL, URL_PREFIX

__all__ = [*_SURFACE, "COMMIT_RE", "GITATTRIBUTES", "LFS_POINTER", "TYPE_PLURAL", "URL_PREFIX"]

if __name__ == "__main__":
    main()
