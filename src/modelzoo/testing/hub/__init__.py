"""A small Hugging Face Hub-compatible HTTP server, so the REAL ``huggingface_hub`` client can be tested offline.

No pip-installable Hub server accepts uploads, and tests must not touch the network, so the suite runs
this server on 127.0.0.1 (random port) and points the client at it with ``HF_ENDPOINT``. It implements
what ``huggingface_hub`` 2.4 calls for repo creation, commits (inline base64 files and plain Git LFS),
branches, tags, refs, trees, repo info, model listing and downloads (``resolve`` with ETag,
X-Repo-Commit and Range), and answers errors with the ``X-Error-Code`` headers the client turns into
its typed exceptions. Each answer follows what the client was checked to need (endpoints, headers, error codes).

Storage: file contents live on disk, content-addressed by sha256 (``<root>/objects``); commits,
branches and tags live in memory. Blob ids are real git blob sha1s (of the content for regular files,
of the LFS pointer for LFS files, as on the Hub), commit ids are 40-hex sha1s.

Deliberate simplifications: any valid token may write to any namespace and read private repos
(``role="read"`` tokens may only read); no pull requests, no Xet (``preupload`` answers ``"regular"``
unless ``lfs_threshold`` is set, which is for clients run with ``HF_HUB_DISABLE_XET=1``).

Faults, for tests of what the client side does when the network or the server misbehaves
(:meth:`HubServer.fault`): drop the connection after N bytes of a request body (a push cut off
mid-upload) or of a response body (a pull cut off mid-download), serve a file's bytes damaged in
transit (same length, one bit flipped) or one byte at a time (``trickle``), or take a request and never
answer it (``silent``).

Run it by hand with ``python -m modelzoo.testing.hubserver [--port N]``.

The parts, one job each (:class:`HubServer` is composed of their mixins):

- ``store``: Blob/Commit/Repo, content-addressed objects, git blob sha1s, commits, branches, tags;
- ``auth``: the test tokens, authentication and the write check;
- ``api``: the JSON API routes (``/api/...``), with ``info`` for repo info, listing, tree and refs;
- ``lfs``: the Git LFS batch, upload and verify endpoints;
- ``files``: ``resolve`` downloads (ETag, Range);
- ``faults``: the :class:`Fault` mechanism;
- ``answer``: :class:`Answer` and :class:`HubError`, what routes hand back;
- ``http``: the request handler that reads requests and sends answers;
- ``server``: :class:`HubServer` (start/stop, routing) and :func:`main`.
"""

from .answer import Answer, FileBody, HubError
from .auth import READ_TOKEN, TEST_TOKEN
from .faults import Fault
from .server import HubServer, main
from .store import Blob, Commit, Repo, git_blob_sha1

__all__ = [
    "READ_TOKEN",
    "TEST_TOKEN",
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
