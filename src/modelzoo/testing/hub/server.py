"""A small Hugging Face Hub-compatible HTTP server, so the REAL ``huggingface_hub`` client can be tested offline.

This module holds :class:`HubServer`, which starts and stops the HTTP server, keeps the state, routes
each request to its part (JSON API, LFS, downloads) and is composed of the parts' mixins; and
:func:`main`, for ``python -m modelzoo.testing.hubserver [--port N]``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .answer import Answer, HubError
from .api import ApiMixin
from .auth import READ_TOKEN, TEST_TOKEN
from .faults import Fault, FaultsMixin
from .files import FilesMixin
from .http import bind
from .lfs import LfsMixin
from .store import TYPE_PLURAL, Repo


class HubServer(ApiMixin, LfsMixin, FilesMixin, FaultsMixin):
    """The server: start()/stop() or use as a context manager; ``url`` is the HF_ENDPOINT value."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        tokens: dict[str, tuple[str, str]] | None = None,
        lfs_threshold: int | None = None,
    ) -> None:
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="hubserver-"))
        self.objects = self.root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tokens = tokens or {TEST_TOKEN: ("tester", "write"), READ_TOKEN: ("reader", "read")}
        self.lfs_threshold = lfs_threshold
        self.repos: dict[tuple[str, str], Repo] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> HubServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), bind(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hubserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- inspection helpers for tests (more in StoreMixin and FaultsMixin) -----------------
    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, p in self.requests if m == method and fragment in p)

    # -- request handling -----------------------------------------------------------------
    def handle(self, method: str, segs: list[str], query: dict, body: bytes, headers: Any) -> Answer:
        base = f"http://{headers.get('Host') or self.url[len('http://') :]}"
        user = self._authenticate(headers.get("Authorization"))
        if segs and segs[0] == "lfs-upload" and method == "PUT":
            return self._lfs_put(segs[1], body)
        if segs and segs[0] == "lfs-verify" and method == "POST":
            return self._lfs_verify(body)
        if not segs and method in ("GET", "HEAD"):  # the home page: clients probe it for reachability
            return Answer(body=b"hubserver", headers={"Content-Type": "text/plain"})
        if segs and segs[0] == "api":
            return self._api(method, segs[1:], query, body, user, base)
        kind = "model"
        if segs and segs[0] in ("datasets", "spaces"):
            kind, segs = TYPE_PLURAL[segs[0]], segs[1:]
        if len(segs) >= 6 and segs[1].endswith(".git") and segs[2:] == ["info", "lfs", "objects", "batch"]:
            return self._lfs_batch(kind, f"{segs[0]}/{segs[1][:-4]}", body, user, base)
        if len(segs) >= 5 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve_file(kind, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]), user, headers)
        raise HubError(404, f"no route for {method} /{'/'.join(segs)}")


def main() -> None:
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lfs-threshold", type=int, default=None)
    args = parser.parse_args()
    server = HubServer(lfs_threshold=args.lfs_threshold)
    if args.port:
        server._httpd = ThreadingHTTPServer(("127.0.0.1", args.port), bind(server))
        threading.Thread(target=server._httpd.serve_forever, daemon=True).start()
    else:
        server.start()
    print(f"HF_ENDPOINT={server.url} HF_TOKEN={TEST_TOKEN}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
