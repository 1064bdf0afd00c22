"""Storage: file contents on disk, content-addressed by sha256 (``<root>/objects``); commits, branches
and tags in memory. Blob ids are real git blob sha1s (of the content for regular files, of the LFS
pointer for LFS files, as on the Hub), commit ids are 40-hex sha1s."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .answer import HubError

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


class StoreMixin:
    """Objects, repos, commits, branches and tags of a :class:`~.server.HubServer`, plus the helpers
    tests use to inspect and change them without HTTP."""

    objects: Path
    repos: dict[tuple[str, str], Repo]
    lock: threading.RLock
    lfs_threshold: int | None
    _counter: int

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

    # -- lookups for request handling -----------------------------------------------------
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
