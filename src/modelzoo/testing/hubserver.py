"""A small Hugging Face Hub-compatible HTTP server, so the REAL ``huggingface_hub`` client can be tested offline.

Backwards-compatible home of the names now in :mod:`modelzoo.testing.hub` (see there); run the server
by hand with ``python -m modelzoo.testing.hubserver [--port N]``.
"""

from __future__ import annotations

from .hub.answer import Answer, FileBody, HubError
from .hub.auth import READ_TOKEN, TEST_TOKEN
from .hub.faults import Fault
from .hub.server import HubServer, main
from .hub.store import (
    COMMIT_RE,
    GITATTRIBUTES,
    LFS_POINTER,
    TYPE_PLURAL,
    URL_PREFIX,
    Blob,
    Commit,
    Repo,
    git_blob_sha1,
)

__all__ = [
    "COMMIT_RE",
    "GITATTRIBUTES",
    "LFS_POINTER",
    "READ_TOKEN",
    "TEST_TOKEN",
    "TYPE_PLURAL",
    "URL_PREFIX",
    "Answer",
    "Blob",
    "Commit",
    "Fault",
    "FileBody",
    "HubError",
    "HubServer",
    "Repo",
    "git_blob_sha1",
    "main",
]

if __name__ == "__main__":
    main()
