"""``zoo pull``: a Hub repo pinned to a commit, every file checked against the manifest, usable offline
from the HF cache; ``zoo lock`` pins the repos a project uses in ``zoo.lock``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ZooError
from ..util.files import atomic_write_text
from .client import COMMIT_RE, _is_connection_error, _offline, _offline_miss, endpoint, hub_errors, parse_ref
from .lockfile import LockEntry, check_locked, lock_path, read_lock, write_lock
from .manifest import BASE_PATTERNS, MANIFEST, _Mismatch, _recorded, verify_snapshot


@dataclass(frozen=True)
class PullResult:
    """A verified local copy of ``repo_id`` at commit ``sha`` (``path``: HF cache snapshot or --to dir)."""

    repo_id: str
    revision: str
    sha: str
    path: Path
    files: dict[str, str]
    from_cache: bool = False


# -- pull -------------------------------------------------------------------------------------
def _cache_folder(repo_id: str) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"


def _cached_sha(repo_id: str, revision: str) -> str | None:
    """The commit a revision resolves to in the HF cache, if that snapshot holds a manifest."""
    folder = _cache_folder(repo_id)
    sha = revision
    if not COMMIT_RE.match(revision):
        ref = folder / "refs" / revision
        if not ref.is_file():
            return None
        sha = ref.read_text(encoding="utf-8").strip()
    return sha if (folder / "snapshots" / sha / MANIFEST).is_file() else None


def _fetch(repo_id: str, revision: str, token: str | None) -> tuple[str, Path, bool]:
    """Resolve ``revision`` to a commit and make sure its allowlisted files are in the HF cache.

    Returns ``(sha, snapshot folder, from_cache)``. A cached commit costs no network; a branch or tag
    costs one metadata request (and falls back to the cached ref when the Hub is unreachable).
    """
    from huggingface_hub import HfApi, snapshot_download

    cached = _cached_sha(repo_id, revision)
    if cached and COMMIT_RE.match(revision):
        return cached, _cache_folder(repo_id) / "snapshots" / cached, True
    if _offline():
        if cached:
            return cached, _cache_folder(repo_id) / "snapshots" / cached, True
        raise _offline_miss(f"{repo_id}@{revision}")
    with hub_errors(repo_id, revision):
        try:
            sha = HfApi(token=token).repo_info(repo_id, revision=revision).sha
        except Exception as exc:
            if cached and _is_connection_error(exc):
                print(
                    f"warning: the Hub at {endpoint()} is unreachable; using the cached {repo_id}@{revision}"
                    f" = {cached[:12]}",
                    file=sys.stderr,
                )
                return cached, _cache_folder(repo_id) / "snapshots" / cached, True
            raise
        if _cached_sha(repo_id, sha):
            _remember_ref(repo_id, revision, sha)
            return sha, _cache_folder(repo_id) / "snapshots" / sha, True
        # one listing + parallel downloads of the allowlist only; the manifest check comes after
        snapshot = Path(snapshot_download(repo_id, revision=sha, allow_patterns=list(BASE_PATTERNS), token=token))
        extra = [n for n in _recorded(snapshot) if not (snapshot / n).is_file()]
        if extra:  # the data files the model's config records (a vocabulary), and only those
            snapshot_download(repo_id, revision=sha, allow_patterns=extra, token=token)
    _remember_ref(repo_id, revision, sha)
    return sha, snapshot, False


def _remember_ref(repo_id: str, revision: str, sha: str) -> None:
    """Record branch/tag → sha in the HF cache layout (``refs/<name>``) so offline pulls can resolve it."""
    if not COMMIT_RE.match(revision):
        atomic_write_text(_cache_folder(repo_id) / "refs" / revision, sha)


def _verified(repo_id: str, sha: str, folder: Path, token: str | None) -> dict[str, str]:
    """Verify; if cached copies are corrupt or missing and the Hub is reachable, download them once more."""
    try:
        return verify_snapshot(folder, repo_id, sha)
    except _Mismatch as exc:
        if _offline():
            raise ZooError(f"{exc}; the cached copy is incomplete or corrupt: pull again while online") from None
        from huggingface_hub import hf_hub_download

        with hub_errors(repo_id, sha):
            for name in exc.names:
                hf_hub_download(repo_id, name, revision=sha, token=token, force_download=True)
        try:
            return verify_snapshot(folder, repo_id, sha)
        except _Mismatch as again:
            raise ZooError(f"{again}; the repo's files do not match its manifest, do not use this commit") from None


def _materialize(snapshot: Path, files: dict[str, str], to: Path, repo_id: str, sha: str) -> Path:
    """Copy a verified snapshot into ``to`` via a temporary sibling and a rename: all or nothing."""
    to = to.expanduser().absolute()
    if to.exists() and (not to.is_dir() or (any(to.iterdir()) and not (to / MANIFEST).is_file())):
        raise ZooError(f"{to} exists and is not an earlier zoo pull; choose a new or empty --to directory")
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.{os.getpid()}-{os.urandom(4).hex()}.partial")
    tmp.mkdir()  # not mkdtemp: the final directory should get the usual (umask) permissions
    old = None
    try:
        for name in files:
            shutil.copyfile(snapshot / name, tmp / name)
        (tmp / ".zoo-pull.json").write_text(json.dumps({"repo": repo_id, "sha": sha}) + "\n", encoding="utf-8")
        if to.exists():
            old = to.with_name(f".{to.name}.old-{os.getpid()}")
            os.replace(to, old)
        os.replace(tmp, to)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not to.exists():
            os.replace(old, to)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return to


def pull(
    ref: str,
    *,
    to: str | os.PathLike | None = None,
    locked: bool | None = None,
    lockfile: str | os.PathLike | None = None,
    token: str | None = None,
) -> PullResult:
    """Fetch ``org/name[@revision]`` into the HF cache (or a copy into ``to``), verified, pinned to a sha.

    ``locked=True`` fetches exactly the sha in the lock and fails unless every file's sha256 matches
    it; ``None`` (default) does that only when no revision is given and the lock lists the repo;
    ``False`` ignores the lock.
    """
    repo_id, revision = parse_ref(ref)
    entry = None
    path = lock_path(lockfile)
    if locked or (locked is None and revision is None and path.is_file()):
        entries = read_lock(path, must_exist=bool(locked))
        entry = entries.get(repo_id)
        if locked and entry is None:
            raise ZooError(f"{repo_id} is not in {path}; add it with `zoo lock {repo_id}`")
        if entry and revision and revision not in (entry.sha, entry.revision):
            raise ZooError(
                f"{repo_id}@{revision} conflicts with {path}, which locks {entry.revision} = {entry.sha[:12]};"
                f" move the lock with `zoo lock {repo_id}@{revision}`"
            )
    target = entry.sha if entry else (revision or "main")
    sha, snapshot, from_cache = _fetch(repo_id, target, token)
    files = _verified(repo_id, sha, snapshot, token)
    if entry:
        check_locked(entry, files, path)
    dest = _materialize(snapshot, files, Path(to), repo_id, sha) if to is not None else snapshot
    return PullResult(repo_id, revision or (entry.revision if entry else "main"), sha, dest, files, from_cache)


def lock(
    refs: Iterable[str] = (),
    *,
    update: bool = False,
    lockfile: str | os.PathLike | None = None,
    token: str | None = None,
) -> list[LockEntry]:
    """Write ``zoo.lock``: the named refs (resolved now) plus the entries already locked.

    Existing entries keep their sha and are re-verified against the Hub (``update=True`` re-resolves
    their recorded revision instead). Every entry is pulled and verified before it is written.
    """
    path = lock_path(lockfile)
    entries = read_lock(path)
    named = dict(parse_ref(r) for r in refs)
    if not named and not entries:
        raise ZooError(f"nothing to lock: no {path} yet; name the models: zoo lock ORG/NAME[@REVISION] ...")
    for repo_id, revision in named.items():
        result = pull(f"{repo_id}@{revision or 'main'}", locked=False, token=token)
        entries[repo_id] = LockEntry(repo_id, revision or "main", result.sha, result.files)
    for repo_id, entry in list(entries.items()):
        if repo_id in named:
            continue
        if update:
            result = pull(f"{repo_id}@{entry.revision}", locked=False, token=token)
            entries[repo_id] = LockEntry(repo_id, entry.revision, result.sha, result.files)
        else:
            check_locked(entry, pull(f"{repo_id}@{entry.sha}", locked=False, token=token).files, path)
    write_lock(entries.values(), path)
    return sorted(entries.values(), key=lambda e: e.repo)


def pull_locked(lockfile: str | os.PathLike | None = None, token: str | None = None) -> list[PullResult]:
    """Pull every model in the lock at its locked sha, failing on any file mismatch."""
    entries = read_lock(lockfile, must_exist=True)
    return [pull(repo_id, locked=True, lockfile=lockfile, token=token) for repo_id in sorted(entries)]
