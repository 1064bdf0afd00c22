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
mid-upload) or of a response body (a pull cut off mid-download), or serve a file's bytes damaged in
transit (same length, one bit flipped).

Run it by hand with ``python -m modelzoo.testing.hubserver [--port N]``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TEST_TOKEN = "hf_test_write_token_0123456789"
READ_TOKEN = "hf_test_read_token_0123456789"
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
TYPE_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as ``oid``/``blobId`` and regular-file ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class Blob:
    size: int
    sha256: str
    oid: str  # git sha1 of the content (regular) or of the LFS pointer (lfs)
    lfs: bool

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid

    def pointer_size(self) -> int:
        return len(LFS_POINTER.format(sha=self.sha256, size=self.size))


@dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict[str, Blob]
    title: str
    message: str
    date: str


@dataclass
class Repo:
    id: str
    type: str
    private: bool
    created: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class HubError(Exception):
    """An HTTP error answer: status, optional X-Error-Code, and a message (X-Error-Message + JSON)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


@dataclass
class FileBody:
    path: Path
    offset: int
    length: int


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes, FileBody, or None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """One injected fault: for requests whose method is ``method`` and whose path contains ``path``.

    ``kind``: ``"drop-request"`` (read ``after`` bytes of the request body, then close the connection
    without answering), ``"drop-response"`` (send the headers and ``after`` bytes of the body, then
    close) or ``"corrupt"`` (send the whole body with one bit flipped). ``times``: how many matching
    requests it hits (None: all); ``hits`` counts them.
    """

    kind: str
    method: str
    path: str
    after: int = 0
    times: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and self.path in path and (self.times is None or self.hits < self.times)


class HubServer:
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
        handler = type("BoundHandler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
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

    # -- inspection helpers for tests -----------------------------------------------------
    def history(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> list[str]:
        """Commit shas reachable from ``branch``, newest first."""
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            out, sha = [], repo.branches.get(branch)
            while sha:
                out.append(sha)
                sha = repo.commits[sha].parent
            return out

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, Blob]:
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            return dict(repo.commits[self._resolve(repo, revision)].files)

    def commit(self, repo_id: str, changes: dict[str, bytes | None], branch: str = "main", title: str = "edit") -> str:
        """Commit directly (bypassing HTTP): ``None`` deletes a path. Creates the repo if needed."""
        with self.lock:
            repo = self.repos.get(("model", repo_id)) or self.create_repo(repo_id)
            head = repo.branches[branch]
            files = dict(repo.commits[head].files)
            for path, data in changes.items():
                if data is None:
                    files.pop(path, None)
                else:
                    files[path] = self.store(
                        data, lfs=self.lfs_threshold is not None and len(data) >= self.lfs_threshold
                    )
            repo.branches[branch] = self._new_commit(repo, head, files, title, "")
            return repo.branches[branch]

    def read(self, blob: Blob) -> bytes:
        return (self.objects / blob.sha256).read_bytes()

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, p in self.requests if m == method and fragment in p)

    @contextmanager
    def fault(self, kind: str, method: str, path: str, after: int = 0, times: int | None = None) -> Iterator[Fault]:
        """Inject a :class:`Fault` while the ``with`` block runs (see there for ``kind``)."""
        if kind not in ("drop-request", "drop-response", "corrupt"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, method, path, after, times)
        with self.lock:
            self.faults.append(fault)
        try:
            yield fault
        finally:
            with self.lock:
                self.faults.remove(fault)

    def _take_fault(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    # -- storage --------------------------------------------------------------------------
    def store(self, data: bytes, lfs: bool = False) -> Blob:
        sha = hashlib.sha256(data).hexdigest()
        target = self.objects / sha
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=self.objects)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        oid = git_blob_sha1(LFS_POINTER.format(sha=sha, size=len(data)).encode()) if lfs else git_blob_sha1(data)
        return Blob(len(data), sha, oid, lfs)

    def _new_commit(self, repo: Repo, parent: str | None, files: dict[str, Blob], title: str, message: str) -> str:
        self._counter += 1
        digest = hashlib.sha1()
        digest.update(f"{repo.id}\n{parent}\n{title}\n{self._counter}\n".encode())
        for path in sorted(files):
            digest.update(f"{path} {files[path].oid}\n".encode())
        sha = digest.hexdigest()
        repo.commits[sha] = Commit(sha, parent, files, title, message, _now())
        return sha

    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False) -> Repo:
        with self.lock:
            repo = Repo(repo_id, repo_type, private, _now())
            blob = self.store(GITATTRIBUTES)
            repo.branches["main"] = self._new_commit(repo, None, {".gitattributes": blob}, "initial commit", "")
            self.repos[(repo_type, repo_id)] = repo
            return repo

    # -- request handling -----------------------------------------------------------------
    def _repo(self, repo_type: str, repo_id: str, user: tuple[str, str] | None) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user is None):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> str:
        if revision in repo.branches:
            return repo.branches[revision]
        if revision in repo.tags:
            return repo.tags[revision]
        if COMMIT_RE.match(revision) and revision in repo.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _require_write(self, user: tuple[str, str] | None) -> None:
        if user is None:
            raise HubError(401, "You must be authenticated to access this endpoint")
        if user[1] != "write":
            raise HubError(403, "You don't have the rights to write to this repository (read-only token)")

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

    def _authenticate(self, header: str | None) -> tuple[str, str] | None:
        if not header:
            return None
        token = header.split(" ", 1)[1].strip() if " " in header else header.strip()
        if token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def _api(self, method: str, segs: list[str], query: dict, body: bytes, user, base: str) -> Answer:
        if segs == ["whoami-v2"] and method == "GET":
            if user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            role = user[1]
            return Answer(
                body={
                    "type": "user",
                    "name": user[0],
                    "fullname": user[0],
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": role}},
                }
            )
        if segs == ["validate-yaml"] and method == "POST":
            return self._validate_yaml(body)
        if segs == ["repos", "create"] and method == "POST":
            return self._create(json.loads(body or b"{}"), user, base)
        if segs == ["repos", "delete"] and method == "DELETE":
            data = json.loads(body or b"{}")
            self._require_write(user)
            repo_id = f"{data.get('organization') or user[0]}/{data['name']}"
            with self.lock:
                self._repo(data.get("type") or "model", repo_id, user)
                del self.repos[(data.get("type") or "model", repo_id)]
            return Answer(body={})
        if len(segs) == 1 and segs[0] in TYPE_PLURAL and method == "GET":
            return self._list(TYPE_PLURAL[segs[0]], query, user)
        if len(segs) >= 3 and segs[0] in TYPE_PLURAL:
            kind, repo_id, rest = TYPE_PLURAL[segs[0]], f"{segs[1]}/{segs[2]}", segs[3:]
            with self.lock:
                repo = self._repo(kind, repo_id, user)
                return self._repo_api(method, repo, rest, query, body, user, base)
        raise HubError(404, f"no route for {method} /api/{'/'.join(segs)}")

    def _repo_api(self, method: str, repo: Repo, rest: list[str], query, body: bytes, user, base: str) -> Answer:
        if method == "GET" and (not rest or rest[0] == "revision"):
            revision = rest[1] if len(rest) > 1 else "main"
            return Answer(body=self._info(repo, self._resolve(repo, revision)))
        if method == "GET" and rest[:1] == ["tree"] and len(rest) >= 2:
            return Answer(body=self._tree(repo, rest[1], "/".join(rest[2:]), query))
        if method == "GET" and rest == ["refs"]:
            return Answer(body=self._refs(repo))
        if method == "GET" and rest[:1] == ["commits"] and len(rest) == 2:
            sha = self._resolve(repo, rest[1])
            out = []
            while sha:
                c = repo.commits[sha]
                out.append(
                    {
                        "id": c.sha,
                        "title": c.title,
                        "message": c.message,
                        "date": c.date,
                        "authors": [{"user": "tester"}],
                    }
                )
                sha = c.parent
            return Answer(body=out)
        if method == "POST" and rest[:1] == ["preupload"] and len(rest) == 2:
            return self._preupload(repo, rest[1], json.loads(body or b"{}"), user)
        if method == "POST" and rest[:1] == ["commit"] and len(rest) == 2:
            return self._commit(repo, rest[1], body, user, base)
        if rest[:1] == ["tag"] and len(rest) == 2:
            self._require_write(user)
            if method == "POST":
                tag = json.loads(body or b"{}")["tag"]
                if tag in repo.tags or tag in repo.branches:
                    raise HubError(409, f"Tag {tag} already exists")
                repo.tags[tag] = self._resolve(repo, rest[1])
                return Answer(body={})
            if method == "DELETE":
                if repo.tags.pop(rest[1], None) is None:
                    raise HubError(404, f"Invalid rev id: {rest[1]}", "RevisionNotFound")
                return Answer(body={})
        if rest[:1] == ["branch"] and len(rest) == 2:
            self._require_write(user)
            name = rest[1]
            if method == "POST":
                if name in repo.branches:
                    raise HubError(409, f"Branch {name} already exists")
                start = json.loads(body or b"{}").get("startingPoint") or "main"
                repo.branches[name] = self._resolve(repo, start)
                return Answer(body={})
            if method == "DELETE":
                if name == "main" or repo.branches.pop(name, None) is None:
                    raise HubError(404 if name != "main" else 403, f"cannot delete branch {name}", "RevisionNotFound")
                return Answer(body={})
        raise HubError(404, f"no route for {method} .../{'/'.join(rest)}")

    # -- repo endpoints -------------------------------------------------------------------
    def _create(self, data: dict, user, base: str) -> Answer:
        self._require_write(user)
        kind = data.get("type") or "model"
        repo_id = f"{data.get('organization') or user[0]}/{data['name']}"
        url = f"{base}/{URL_PREFIX[kind]}{repo_id}"
        with self.lock:
            if (kind, repo_id) in self.repos:
                return Answer(409, {"error": "You already created this model repo", "url": url})
            private = data.get("visibility") == "private" or bool(data.get("private"))
            self.create_repo(repo_id, kind, private)
        return Answer(200, {"url": url, "name": repo_id})

    def _card(self, files: dict[str, Blob]) -> dict | None:
        blob = files.get("README.md")
        if blob is None:
            return None
        text = self.read(blob).decode("utf-8", "replace")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
        if not match:
            return None
        import yaml

        data = yaml.safe_load(match.group(1))
        return data if isinstance(data, dict) else None

    def _info(self, repo: Repo, sha: str) -> dict:
        commit = repo.commits[sha]
        card = self._card(commit.files) or {}
        tags = list(card.get("tags") or [])
        for key, prefix in (("library_name", ""), ("pipeline_tag", ""), ("license", "license:")):
            if card.get(key):
                tags.append(f"{prefix}{card[key]}")
        for key, prefix in (("datasets", "dataset:"), ("base_model", "base_model:")):
            values = card.get(key) or []
            tags += [f"{prefix}{v}" for v in ([values] if isinstance(values, str) else values)]
        siblings = []
        for path, blob in sorted(commit.files.items()):
            entry: dict[str, Any] = {"rfilename": path, "size": blob.size, "blobId": blob.oid}
            if blob.lfs:
                entry["lfs"] = {"size": blob.size, "sha256": blob.sha256, "pointerSize": blob.pointer_size()}
            siblings.append(entry)
        return {
            "_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24],
            "id": repo.id,
            "modelId": repo.id,
            "author": repo.id.split("/")[0],
            "sha": sha,
            "lastModified": commit.date,
            "createdAt": repo.created,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "library_name": card.get("library_name"),
            "pipeline_tag": card.get("pipeline_tag"),
            "tags": list(dict.fromkeys(tags)),
            "cardData": card or None,
            "siblings": siblings,
            "spaces": [],
        }

    def _list(self, kind: str, query: dict, user) -> Answer:
        author = (query.get("author") or [None])[0]
        filters = query.get("filter") or []
        search = (query.get("search") or [""])[0]
        limit = int((query.get("limit") or [0])[0] or 0)
        out = []
        with self.lock:
            for (rtype, repo_id), repo in sorted(self.repos.items()):
                if rtype != kind or (repo.private and user is None):
                    continue
                if author and repo_id.split("/")[0] != author:
                    continue
                if search and search.lower() not in repo_id.lower():
                    continue
                info = self._info(repo, repo.branches["main"])
                if any(f not in info["tags"] for f in filters):
                    continue
                info.pop("siblings")
                out.append(info)
        return Answer(body=out[:limit] if limit else out)

    def _tree(self, repo: Repo, revision: str, path: str, query: dict) -> list[dict]:
        commit = repo.commits[self._resolve(repo, revision)]
        recursive = (query.get("recursive") or ["false"])[0].lower() in ("true", "1")
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in commit.files):
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        entries, dirs = [], set()
        for p, blob in sorted(commit.files.items()):
            if not p.startswith(prefix):
                continue
            rel = p[len(prefix) :]
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    dirs.add(prefix + "/".join(parts[:depth]))
            if not recursive and len(parts) > 1:
                continue
            entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": blob.size, "path": p}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size()}
            entries.append(entry)
        folders = [
            {"type": "directory", "oid": hashlib.sha1(f"{commit.sha}:{d}".encode()).hexdigest(), "size": 0, "path": d}
            for d in sorted(dirs)
        ]
        return folders + entries

    def _refs(self, repo: Repo) -> dict:
        return {
            "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo.branches.items()],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo.tags.items()],
            "converts": [],
        }

    def _validate_yaml(self, body: bytes) -> Answer:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
        if match:
            import yaml

            try:
                yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                return Answer(400, {"errors": [{"message": str(exc).splitlines()[0]}], "warnings": []})
        return Answer(body={"errors": [], "warnings": []})

    def _preupload(self, repo: Repo, revision: str, data: dict, user) -> Answer:
        self._require_write(user)
        commit = repo.commits[self._resolve(repo, revision)]
        files = []
        for item in data.get("files", []):
            lfs = self.lfs_threshold is not None and int(item.get("size", 0)) >= self.lfs_threshold
            existing = commit.files.get(item["path"])
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
            files.append(
                {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return Answer(body={"files": files, "commitOid": commit.sha})

    def _commit(self, repo: Repo, revision: str, body: bytes, user, base: str) -> Answer:
        self._require_write(user)
        if revision not in repo.branches:
            if revision in repo.tags or revision in repo.commits:
                raise HubError(400, f"cannot commit to {revision}: not a branch")
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        head = repo.branches[revision]
        files = dict(repo.commits[head].files)
        header: dict = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                data = (
                    base64.b64decode(value["content"])
                    if value.get("encoding") == "base64"
                    else value["content"].encode()
                )
                files[value["path"]] = self.store(data)
            elif key == "lfsFile":
                sha = value["oid"]
                obj = self.objects / sha
                if not obj.exists():
                    raise HubError(400, f"LFS object {sha} for {value['path']} was never uploaded")
                size = obj.stat().st_size
                oid = git_blob_sha1(LFS_POINTER.format(sha=sha, size=size).encode())
                files[value["path"]] = Blob(size, sha, oid, True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for p in [p for p in files if p.startswith(prefix)]:
                    del files[p]
            else:
                raise HubError(400, f"unknown commit operation {key}")
        parent = header.get("parentCommit")
        if parent and parent != head:
            raise HubError(412, f"A commit has happened since {parent[:12]}: the branch is now at {head[:12]}")
        sha = self._new_commit(repo, head, files, header.get("summary") or "update", header.get("description") or "")
        repo.branches[revision] = sha
        url = f"{base}/{URL_PREFIX[repo.type]}{repo.id}/commit/{sha}"
        return Answer(body={"success": True, "commitOid": sha, "commitUrl": url, "hookOutput": ""})

    # -- LFS ------------------------------------------------------------------------------
    def _lfs_batch(self, kind: str, repo_id: str, body: bytes, user, base: str) -> Answer:
        with self.lock:
            self._repo(kind, repo_id, user)
        self._require_write(user)
        data = json.loads(body or b"{}")
        objects = []
        for obj in data.get("objects", []):
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not (self.objects / obj["oid"]).exists():
                entry["actions"] = {
                    "upload": {"href": f"{base}/lfs-upload/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{base}/lfs-verify/{URL_PREFIX[kind]}{repo_id}", "header": {}},
                }
            objects.append(entry)
        return Answer(
            body={"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"}
        )

    def _lfs_put(self, oid: str, body: bytes) -> Answer:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256 oid")
        self.store(body, lfs=True)
        return Answer(body=b"")

    def _lfs_verify(self, body: bytes) -> Answer:
        data = json.loads(body or b"{}")
        obj = self.objects / str(data.get("oid"))
        if not obj.exists() or obj.stat().st_size != data.get("size"):
            raise HubError(404, "LFS object not found or wrong size")
        return Answer(body={})

    # -- downloads ------------------------------------------------------------------------
    def _resolve_file(self, kind: str, repo_id: str, revision: str, path: str, user, headers) -> Answer:
        with self.lock:
            repo = self._repo(kind, repo_id, user)
            sha = self._resolve(repo, revision)
            blob = repo.commits[sha].files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        out = {
            "ETag": f'"{blob.etag}"',
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if blob.lfs:
            out.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)})
        start, end, status = 0, blob.size - 1, 200
        match = re.match(r"bytes=(\d*)-(\d*)$", headers.get("Range") or "")
        if match and blob.size:
            start = int(match.group(1) or 0)
            end = min(int(match.group(2)) if match.group(2) else blob.size - 1, blob.size - 1)
            if start > end:
                raise HubError(416, "Range not satisfiable", headers={"Content-Range": f"bytes */{blob.size}"})
            status = 206
            out["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        return Answer(status, FileBody(self.objects / blob.sha256, start, max(0, end - start + 1)), out)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler: always reads the whole body and always sends Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    hub: HubServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _hang_up(self) -> None:
        """Close the connection now, as a network failure would (no answer, no orderly end)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        parts = urlsplit(self.path)
        segs = [unquote(s) for s in parts.path.split("/")[1:] if s != ""]
        query = parse_qs(parts.query)
        cut = hub._take_fault(method, parts.path, ("drop-request",))
        if cut is not None:  # a push cut off mid-upload: part of the body arrives, then nothing
            hub.requests.append((method, parts.path))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(cut.after, length) if length else 0)
            self._hang_up()
            return
        body = self._read_body()
        hub.requests.append((method, parts.path))
        try:
            answer = hub.handle(method, segs, query, body, self.headers)
        except HubError as exc:
            if exc.status == 404 and exc.message.startswith("no route"):
                hub.unknown.append((method, self.path))
            headers = {"X-Error-Message": exc.message, **exc.headers}
            if exc.code:
                headers["X-Error-Code"] = exc.code
            answer = Answer(exc.status, {"error": exc.message}, headers)
        except Exception as exc:  # a server bug: answer 400 (never 5xx: the client would retry for ~23 s)
            answer = Answer(
                400, {"error": f"hubserver bug: {type(exc).__name__}: {exc}"}, {"X-Error-Message": str(exc)}
            )
        fault = None
        if 200 <= answer.status < 300 and method == "GET":
            fault = hub._take_fault(method, parts.path, ("drop-response", "corrupt"))
        self._send(method, answer, fault)

    def _send(self, method: str, answer: Answer, fault: Fault | None = None) -> None:
        body = answer.body
        headers = dict(answer.headers)
        if isinstance(body, FileBody):
            length = body.length
        else:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers.setdefault("Content-Type", "application/json")
            body = body or b""
            length = len(body)
        self.send_response(answer.status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if method == "HEAD" or length == 0:
            return
        if fault is not None:  # the body as a faulty network delivers it
            if isinstance(body, FileBody):
                with open(body.path, "rb") as fh:
                    fh.seek(body.offset)
                    body = fh.read(body.length)
            if fault.kind == "corrupt":
                flipped = bytearray(body)
                flipped[len(flipped) // 2] ^= 0x01
                self.wfile.write(bytes(flipped))
            else:
                self.wfile.write(body[: fault.after])
                self._hang_up()
            return
        if isinstance(body, FileBody):
            with open(body.path, "rb") as fh:
                self.connection.sendfile(fh, body.offset, body.length)
        else:
            self.wfile.write(body)


def main() -> None:
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lfs-threshold", type=int, default=None)
    args = parser.parse_args()
    server = HubServer(lfs_threshold=args.lfs_threshold)
    if args.port:
        server._httpd = ThreadingHTTPServer(("127.0.0.1", args.port), type("H", (_Handler,), {"hub": server}))
        threading.Thread(target=server._httpd.serve_forever, daemon=True).start()
    else:
        server.start()
    print(f"HF_ENDPOINT={server.url} HF_TOKEN={TEST_TOKEN}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
