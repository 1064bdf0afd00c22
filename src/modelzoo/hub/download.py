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
from ..model.folder import CONFIG
from ..util.env import env_number
from ..util.files import sha256_file
from ..util.names import path_name_problem
from .client import (
    COMMIT_RE,
    HUB_TIMEOUT,
    _is_connection_error,
    _offline,
    _offline_miss,
    _timed_out,
    check_commit,
    endpoint,
    hub_errors,
    parse_ref,
    remember_refs,
    request_timeout,
    within_deadline,
)
from .lockfile import LockEntry, check_locked, lock_path, read_lock, write_lock
from .manifest import MANIFEST, NotModelzoo, _Mismatch, _recorded, parse_manifest, pullable, verify_snapshot


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
    from huggingface_hub import HfApi

    cached = _cached_sha(repo_id, revision)
    if cached and COMMIT_RE.match(revision):
        return cached, _cache_folder(repo_id) / "snapshots" / cached, True
    if _offline():
        if cached:
            return cached, _cache_folder(repo_id) / "snapshots" / cached, True
        raise _offline_miss(f"{repo_id}@{revision}")
    with hub_errors(repo_id, revision):
        try:
            info = HfApi(token=token).repo_info(repo_id, revision=revision, timeout=request_timeout())
            sha = check_commit(info.sha, revision, repo_id)
        except Exception as exc:
            if cached and _is_connection_error(exc):
                state = "did not answer in time" if _timed_out(exc) else "is unreachable"
                print(
                    f"warning: the Hub at {endpoint()} {state}; using the cached {repo_id}@{revision} = {cached[:12]}",
                    file=sys.stderr,
                )
                return cached, _cache_folder(repo_id) / "snapshots" / cached, True
            raise
        if _cached_sha(repo_id, sha):
            remember_refs(repo_id, revision, sha, token)
            return sha, _cache_folder(repo_id) / "snapshots" / sha, True
        snapshot = _download_listed(repo_id, sha, token)
    remember_refs(repo_id, revision, sha, token)
    return sha, snapshot, False


#: the largest manifest and config.json a pull reads (they are kilobytes; a hostile repo's may not be)
SMALL_FILE = 4 << 20
#: the largest model file a pull takes unless MODELZOO_PULL_MAX_GB says otherwise
MAX_PULL_GB = 100.0


def _download_listed(repo_id: str, sha: str, token: str | None) -> Path:
    """Download exactly the files the repo's manifest lists that a pull may take (never an unlisted
    file, never a nested picture), each bounded in size, all within one overall deadline."""
    cap = int(env_number("MODELZOO_PULL_MAX_GB", MAX_PULL_GB, "GB") * 1e9)
    what = f"downloading {repo_id}@{sha[:12]}"
    return within_deadline(lambda: _listed_files(repo_id, sha, token, cap), what, "try again later")


def _listed_files(repo_id: str, sha: str, token: str | None, cap: int) -> Path:
    from huggingface_hub import HfApi, snapshot_download

    with hub_errors(repo_id, sha):
        info = HfApi(token=token).repo_info(repo_id, revision=sha, files_metadata=True, timeout=request_timeout())
        sizes = {s.rfilename: s.size for s in info.siblings or []}
        if MANIFEST not in sizes:
            raise NotModelzoo(
                f"file {MANIFEST} not found in {repo_id}@{sha[:12]}: it is not a modelzoo model (publish with zoo push)"
            )
        head = [n for n in (MANIFEST, CONFIG) if n in sizes]
        _check_sizes(repo_id, {n: sizes[n] for n in head}, SMALL_FILE)
        snapshot = Path(snapshot_download(repo_id, revision=sha, allow_patterns=head, token=token))
        listed = parse_manifest((snapshot / MANIFEST).read_text(encoding="utf-8", errors="replace"))
        recorded = _recorded(snapshot)
        wanted = [n for n in listed if n not in head and pullable(n, recorded) and path_name_problem(n) is None]
        _check_sizes(repo_id, {n: sizes.get(n) for n in wanted}, cap)
        if wanted:
            snapshot_download(repo_id, revision=sha, allow_patterns=wanted, token=token)
    return snapshot


def _check_sizes(repo_id: str, sizes: dict[str, int | None], cap: int) -> None:
    for name, size in sizes.items():
        if size is not None and size > cap:
            raise ZooError(
                f"{repo_id}: {name} is {size / 1e9:.2f} GB, over the {cap / 1e9:.2f} GB a pull takes"
                " (MODELZOO_PULL_MAX_GB raises it for a model you trust)"
            )


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
    theirs = _user_files(to, files) if to.exists() else []
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.{os.getpid()}-{os.urandom(4).hex()}.partial")
    tmp.mkdir()  # not mkdtemp: the final directory should get the usual (umask) permissions
    old = None
    try:
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(snapshot / name, tmp / name)
        (tmp / ".zoo-pull.json").write_text(json.dumps({"repo": repo_id, "sha": sha}) + "\n", encoding="utf-8")
        if to.exists():
            old = to.with_name(f".{to.name}.old-{os.getpid()}")
            os.replace(to, old)
            for name in theirs:  # what the user added beside an earlier pull moves into the new one
                os.replace(old / name, tmp / name)
        os.replace(tmp, to)
    except BaseException:
        if old is not None and not to.exists():
            for name in theirs:
                if (tmp / name).exists() and not (old / name).exists():
                    os.replace(tmp / name, old / name)
            os.replace(old, to)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return to


def _user_files(to: Path, files: dict[str, str]) -> list[str]:
    """The entries of an earlier pull's folder that zoo pull did not write, or that were changed since
    (its manifest says what it wrote, with each file's sha256): they are the user's and are kept. One
    that a new file would replace is a one-line error."""
    old_manifest = to / MANIFEST
    try:
        written = parse_manifest(old_manifest.read_text(encoding="utf-8")) if old_manifest.is_file() else {}
    except (OSError, UnicodeDecodeError, ZooError):
        written = {}

    def ours(entry: Path) -> bool:
        if entry.name in (MANIFEST, ".zoo-pull.json"):
            return True
        paths = [entry] if entry.is_file() and not entry.is_symlink() else None
        if entry.is_dir() and not entry.is_symlink():
            paths = [p for p in entry.rglob("*") if not p.is_dir()]
        if not paths:
            return False
        return all(p.is_file() and written.get(p.relative_to(to).as_posix()) == sha256_file(p) for p in paths)

    theirs = sorted(entry.name for entry in to.iterdir() if not ours(entry))
    clash = [name for name in theirs if name in files or any(f.startswith(f"{name}/") for f in files)]
    if clash:
        raise ZooError(
            f"{to / clash[0]} was not written by zoo pull (or was changed since) and the new pull would replace"
            " it; move it, or pull into another --to directory"
        )
    return theirs


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
    env_number("MODELZOO_HUB_TIMEOUT", HUB_TIMEOUT, "seconds")  # a bad setting is one line, cache or not
    env_number("MODELZOO_PULL_MAX_GB", MAX_PULL_GB, "GB")
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
    _fetch_base_checkpoint(snapshot)
    return PullResult(repo_id, revision or (entry.revision if entry else "main"), sha, dest, files, from_cache)


def _fetch_base_checkpoint(snapshot: Path) -> None:
    """A model fine-tuned from a Hub checkpoint (``backbone.name = "hf-hub:ORG/NAME@SHA"``) rebuilds from that
    commit's config.json: fetch it with the model (while online), so the model loads offline as well."""
    from ..model.folder import read_config
    from .backbones import is_hub_name, resolve_checkpoint

    try:
        name = read_config(snapshot)["backbone"].get("name")
        if is_hub_name(name) and not _offline():
            resolve_checkpoint(name)
    except ZooError as exc:  # the model itself is fine; loading will say what is missing
        print(f"warning: the model's base checkpoint was not fetched: {exc}", file=sys.stderr)


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
        sha, files = _lock_files(repo_id, revision or "main", token)
        entries[repo_id] = LockEntry(repo_id, revision or "main", sha, files)
    for repo_id, entry in list(entries.items()):
        if repo_id in named:
            continue
        if update:
            sha, files = _lock_files(repo_id, entry.revision, token)
            entries[repo_id] = LockEntry(repo_id, entry.revision, sha, files)
        elif MANIFEST not in entry.files:  # a Hub checkpoint (no modelzoo manifest)
            from .backbones import checkpoint_files

            check_locked(entry, checkpoint_files(f"hf-hub:{repo_id}@{entry.sha}")[1], path)
        else:
            check_locked(entry, _lock_files(repo_id, entry.sha, token)[1], path)
    write_lock(entries.values(), path)
    return sorted(entries.values(), key=lambda e: e.repo)


def _lock_files(repo_id: str, revision: str, token: str | None) -> tuple[str, dict[str, str]]:
    """``(sha, {file: sha256})`` of a modelzoo repo (pulled and verified against its manifest), or of a Hub
    checkpoint a plugin builds as a backbone (its config and data files, hashed; see :mod:`.backbones`)."""
    try:
        result = pull(f"{repo_id}@{revision}", locked=False, token=token)
    except NotModelzoo:
        from .backbones import checkpoint_files

        ckpt, files = checkpoint_files(f"hf-hub:{repo_id}@{revision}")
        return ckpt.sha, files
    return result.sha, result.files


def pull_locked(lockfile: str | os.PathLike | None = None, token: str | None = None) -> list[PullResult]:
    """Pull every model in the lock at its locked sha, failing on any file mismatch (a locked Hub checkpoint's
    files are fetched into the HF cache and checked the same way)."""
    entries = read_lock(lockfile, must_exist=True)
    results = []
    for repo_id, entry in sorted(entries.items()):
        if MANIFEST in entry.files:  # a modelzoo model: its manifest is locked with it
            results.append(pull(repo_id, locked=True, lockfile=lockfile, token=token))
            continue
        from .backbones import checkpoint_files

        ckpt, files = checkpoint_files(f"hf-hub:{repo_id}@{entry.sha}")
        check_locked(entry, files, lock_path(lockfile))
        results.append(PullResult(repo_id, entry.revision, ckpt.sha, ckpt.folder, files, True))
    return results
