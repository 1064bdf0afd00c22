"""``zoo.lock``: per Hub repo, the requested revision, the commit sha and every file's sha256.

``pull`` without an explicit revision uses the locked sha when the project's lock (``./zoo.lock`` or
``$ZOO_LOCK``) lists the repo, so a project's code can name models by repo and still be reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ZooError
from ..util.files import atomic_write_text
from .client import COMMIT_RE

LOCKFILE = "zoo.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class LockEntry:
    repo: str
    revision: str
    sha: str
    files: dict[str, str]


# -- lock -------------------------------------------------------------------------------------
def lock_path(lockfile: str | os.PathLike | None = None) -> Path:
    return Path(lockfile or os.environ.get("ZOO_LOCK") or LOCKFILE)


def read_lock(lockfile: str | os.PathLike | None = None, must_exist: bool = False) -> dict[str, LockEntry]:
    import tomllib

    path = lock_path(lockfile)
    if not path.is_file():
        if must_exist:
            raise ZooError(f"no {path}: create it with `zoo lock ORG/NAME[@REVISION] ...`")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != LOCK_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {LOCK_VERSION}")
        entries = {}
        for item in data.get("model", []):
            entry = LockEntry(str(item["repo"]), str(item["revision"]), str(item["sha"]), dict(item["files"]))
            if not COMMIT_RE.match(entry.sha):
                raise ValueError(f"{entry.repo}: sha {entry.sha!r} is not a 40-hex commit")
            entries[entry.repo] = entry
    except (ValueError, KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise ZooError(f"{path} is not a valid zoo.lock ({exc}); regenerate it with `zoo lock`") from None
    return entries


def write_lock(entries: Iterable[LockEntry], lockfile: str | os.PathLike | None = None) -> Path:
    import tomli_w

    doc = {
        "version": LOCK_VERSION,
        "model": [
            {"repo": e.repo, "revision": e.revision, "sha": e.sha, "files": dict(sorted(e.files.items()))}
            for e in sorted(entries, key=lambda e: e.repo)
        ],
    }
    header = (
        "# zoo.lock: the Hugging Face Hub models this project uses, pinned to commits and file sha256s.\n"
        "# Written by `zoo lock`; `zoo pull --locked` fetches exactly these. Commit it; do not edit by hand.\n"
    )
    return atomic_write_text(lock_path(lockfile), header + tomli_w.dumps(doc))


def check_locked(entry: LockEntry, files: dict[str, str], lockfile: Path) -> None:
    """Fail unless the pulled files are exactly the locked ones."""
    for name in sorted(set(entry.files) | set(files)):
        want, got = entry.files.get(name), files.get(name)
        if want != got:
            detail = (
                f"{name} is not in the lock"
                if want is None
                else f"{name} is missing"
                if got is None
                else f"{name} has sha256 {got[:16]}… but the lock records {want[:16]}…"
            )
            raise ZooError(f"{entry.repo}@{entry.sha[:12]} does not match {lockfile}: {detail}")
