"""Hugging Face Hub: push run folders, pull models pinned to commits, lock them in ``zoo.lock``.

Why it looks like this:

* **The real client does the protocol.** ``huggingface_hub`` (HfApi, create_commit, snapshot_download,
  the HF cache) talks to the Hub; this module decides *what* goes up and *what* is trusted coming down.
* **A manifest makes pulls verifiable.** ``zoo push`` writes ``modelzoo.sha256`` (``sha256sum`` format)
  listing every other pushed file; ``zoo pull`` re-hashes each downloaded file against it. Only data
  files are ever downloaded: the model folder's own (config, safetensors, recipe, metrics, card, plots)
  plus the plain-data files its ``config.json`` records (a vocabulary; see :mod:`modelzoo.runfolder`),
  so nothing executable comes down.
* **Shas, not names, are the identity.** Every pull resolves its revision (branch, tag or sha) to a
  40-hex commit once; a cached commit needs no network at all, so ``HF_HUB_OFFLINE=1`` just works.
* **Idempotent pushes.** Before committing, the local files (and the generated card and manifest,
  which are pure functions of the run) are compared with the branch head's blob ids / LFS sha256s;
  an unchanged run makes no commit, and ``parent_commit`` guards against a branch that moved meanwhile.
* **One line per failure.** Client exceptions become :class:`ZooError` messages that say what to do;
  the token never appears in them.

``zoo.lock`` records, per Hub repo, the requested revision, the commit sha and every file's sha256.
"Used" means: the repos named to ``zoo lock`` plus those already in the lock. ``pull`` (and so
``modelzoo.load("hf-hub:org/name")``) without an explicit revision uses the locked sha when the
project's lock (``./zoo.lock`` or ``$ZOO_LOCK``) lists the repo, so a project's code can name models
by repo and still be reproducible.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ZooError
from .fsutil import atomic_write_text, read_json_object, sha256_file
from .runfolder import CONFIG, REQUIRED, RUN_EXTRAS, is_data_file_name, model_files, read_config, recorded_files

MANIFEST = "modelzoo.sha256"
CARD = "README.md"
LOCKFILE = "zoo.lock"
LOCK_VERSION = 1
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


#: what every pull downloads first; the data files a model's config.json records come next
BASE_PATTERNS = (*REQUIRED, *RUN_EXTRAS, CARD, MANIFEST, "*.png")


def pullable(name: str, recorded: Iterable[str] = ()) -> bool:
    """The only files a pull downloads: the model folder's own data and docs, and the plain-data files
    its config records; never code or pickles."""
    if name in REQUIRED or name in RUN_EXTRAS or name in (CARD, MANIFEST):
        return True
    if "/" not in name and name.endswith(".png"):
        return True
    return name in set(recorded) and is_data_file_name(name)


# -- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PushResult:
    """What a push did. Unpacks as ``url, sha = push(...)``."""

    repo_id: str
    url: str
    sha: str
    branch: str
    changed: bool
    tag: str | None = None
    files: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[str]:
        yield self.url
        yield self.sha


@dataclass(frozen=True)
class PullResult:
    """A verified local copy of ``repo_id`` at commit ``sha`` (``path``: HF cache snapshot or --to dir)."""

    repo_id: str
    revision: str
    sha: str
    path: Path
    files: dict[str, str]
    from_cache: bool = False


@dataclass(frozen=True)
class LockEntry:
    repo: str
    revision: str
    sha: str
    files: dict[str, str]


# -- references and errors --------------------------------------------------------------------
def parse_ref(ref: str) -> tuple[str, str | None]:
    """``[hf-hub:]org/name[@revision]`` → ``(repo_id, revision or None)``."""
    text = ref[len("hf-hub:") :] if ref.startswith("hf-hub:") else ref
    repo, sep, rev = text.partition("@")
    if not REPO_RE.match(repo) or (sep and not rev):
        raise ZooError(f"{ref!r} is not a Hub model reference; expected ORG/NAME[@BRANCH|TAG|SHA]")
    return repo, rev or None


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def _offline() -> bool:
    from huggingface_hub import constants

    check = getattr(constants, "is_offline_mode", None)
    return bool(check() if check else constants.HF_HUB_OFFLINE)


def _is_connection_error(exc: BaseException | None) -> bool:
    names = ("ConnectError", "ConnectTimeout", "TimeoutException", "ReadTimeout", "NetworkError", "ConnectionError")
    seen = 0
    while exc is not None and seen < 10:
        if type(exc).__name__ == "OfflineModeIsEnabled":
            return False
        if any(c.__name__ in names for c in type(exc).__mro__):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


#: what a connection that opened and then broke looks like (httpx, urllib3, the OS), and the client's own
#: "Consistency check failed" when a download ended short of its size
_DROPPED = (
    "RemoteProtocolError",
    "ReadError",
    "WriteError",
    "ConnectionResetError",
    "BrokenPipeError",
    "IncompleteRead",
)


def _dropped(exc: BaseException | None) -> BaseException | None:
    """The exception in ``exc``'s chain that says the connection was cut off mid-transfer, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if any(c.__name__ in _DROPPED for c in type(exc).__mro__):
            return exc
        if isinstance(exc, OSError) and str(exc).startswith("Consistency check failed"):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _cut_off(exc: BaseException) -> ZooError:
    detail = (str(exc).splitlines() or [""])[0][:100] or "no details"
    return ZooError(
        f"the connection to the Hub at {endpoint()} was cut off mid-transfer ({type(exc).__name__}: {detail});"
        " nothing partial was kept: run the command again"
    )


def _unreachable() -> ZooError:
    return ZooError(
        f"cannot reach the Hub at {endpoint()}; check the network (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use"
        " models already in the cache"
    )


def _offline_miss(what: str) -> ZooError:
    from huggingface_hub import constants

    return ZooError(
        f"{what} is not in the local HF cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE=1 forbids downloading;"
        " pull it once while online"
    )


@contextmanager
def hub_errors(repo_id: str, revision: str | None = None) -> Iterator[None]:
    """Turn ``huggingface_hub`` exceptions into one-line :class:`ZooError` messages (never with the token)."""
    from huggingface_hub import errors

    remote_entry = getattr(errors, "RemoteEntryNotFoundError", errors.EntryNotFoundError)
    where = f"{repo_id}@{revision}" if revision else repo_id
    client_log = logging.getLogger("huggingface_hub")
    level = client_log.level
    client_log.setLevel(logging.ERROR)  # its retry warnings ("Trying to resume download...") are ours to say
    try:
        _check_token()
        yield
    except ZooError:
        raise
    except errors.OfflineModeIsEnabled:
        raise _offline_miss(where) from None
    except errors.LocalEntryNotFoundError as exc:
        if _offline():
            raise _offline_miss(where) from None
        if (cut := _dropped(exc)) is not None:
            raise _cut_off(cut) from None
        if _is_connection_error(exc):
            raise _unreachable() from None
        raise ZooError(f"{where} could not be fetched and is not cached ({str(exc).splitlines()[0]})") from None
    except errors.RevisionNotFoundError:
        raise ZooError(
            f"revision {revision!r} not found in {repo_id} on {endpoint()}; use a branch, tag or full commit sha"
        ) from None
    except remote_entry as exc:
        name = str(getattr(exc, "response", None) and exc.response.url).rsplit("/", 1)[-1]
        raise ZooError(f"file {name} not found in {where} on {endpoint()}") from None
    except errors.RepositoryNotFoundError:
        raise ZooError(
            f"repo {repo_id} not found on {endpoint()} (or it is private and your token cannot read it)"
        ) from None
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise ZooError(
                f"the Hub at {endpoint()} rejected your token (from HF_TOKEN or `hf auth login`); create a new"
                " access token and set it again"
            ) from None
        if status == 403:
            raise ZooError(
                f"your token may not write to {repo_id}; use a token with write access to its namespace"
            ) from None
        if status in (409, 412):
            raise ZooError(f"{where} changed on the Hub while pushing; run the push again") from None
        text = (getattr(exc, "server_message", None) or str(exc)).strip()
        detail = text.splitlines()[0] if text else "no details"
        raise ZooError(f"the Hub at {endpoint()} answered {status} for {where}: {detail}") from None
    except Exception as exc:
        if (cut := _dropped(exc)) is not None:
            raise _cut_off(cut) from None
        if _is_connection_error(exc):
            raise _unreachable() from None
        raise
    finally:
        client_log.setLevel(level)


# -- hashing ----------------------------------------------------------------------------------
def _sha256_all(paths: dict[str, Path]) -> dict[str, str]:
    """sha256 of several files at once (hashlib releases the GIL on big buffers)."""
    if not paths:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(paths))) as pool:
        return dict(zip(paths, pool.map(sha256_file, paths.values())))


def git_blob_sha1(content: Path | bytes) -> str:
    """The git blob id the Hub reports for a regular (non-LFS) file."""
    digest = hashlib.sha1()
    if isinstance(content, bytes):
        digest.update(b"blob %d\0" % len(content) + content)
        return digest.hexdigest()
    digest.update(b"blob %d\0" % content.stat().st_size)
    with open(content, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def parse_manifest(text: str) -> dict[str, str]:
    """``modelzoo.sha256`` (``sha256sum`` format) → ``{name: sha256}``."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = MANIFEST_LINE.match(line.strip())
        if not match or ".." in match.group(2).split("/"):
            raise ZooError(f"malformed {MANIFEST} line {line[:80]!r}")
        out[match.group(2)] = match.group(1)
    return out


def render_manifest(hashes: dict[str, str]) -> bytes:
    return "".join(f"{hashes[name]}  {name}\n" for name in sorted(hashes)).encode()


# -- push -------------------------------------------------------------------------------------
def _check_safetensors(path: Path) -> None:
    """A cheap structural check (no torch): an 8-byte length, then a JSON header naming tensors."""
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 2 <= size <= 100_000_000:
                raise ValueError("bad header length")
            header = json.loads(fh.read(size))
        if not any(k != "__metadata__" for k in header):
            raise ValueError("no tensors")
    except (OSError, ValueError) as exc:
        raise ZooError(f"{path} is not a valid safetensors file ({exc}); re-run or resume the fine-tune") from None


@contextmanager
def _as_folder(source: Any) -> Iterator[Path]:
    """A run folder as is, or a TaskModel saved (by :mod:`modelzoo.runfolder`) to a temporary folder."""
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise ZooError(f"{folder} is not a run folder (no such directory)")
        yield folder
        return
    from .model import TaskModel
    from .runfolder import save_model

    if not isinstance(source, TaskModel):
        raise ZooError(f"push needs a run folder or a modelzoo TaskModel, not {type(source).__name__}")
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        save_model(source, tmp)
        yield Path(tmp)


def _same(remote: Any, content: Path | bytes, sha256: str) -> bool:
    """Whether the remote sibling already holds exactly this content (LFS sha256 or git blob id)."""
    if remote is None:
        return False
    size = len(content) if isinstance(content, bytes) else content.stat().st_size
    if remote.size is not None and remote.size != size:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256
    return remote.blob_id == git_blob_sha1(content)


def _check_token(token: str | None = None) -> None:
    """A token that cannot go into an HTTP header (non-ASCII, a line break) is one line that never shows it."""
    from huggingface_hub import get_token

    token = token or get_token()
    if token and not (token.isascii() and token.isprintable() and " " not in token):
        raise ZooError(
            "the Hugging Face token (from HF_TOKEN or `hf auth login`) holds characters no token has"
            " (spaces, line breaks or non-ASCII); copy it again from your Hub settings"
        )


def _token(token: str | None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise ZooError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    return token


def push(
    source: Any,
    repo_id: str,
    *,
    private: bool = False,
    branch: str = "main",
    tag: str | None = None,
    message: str | None = None,
    license: str | None = None,
    token: str | None = None,
) -> PushResult:
    """Publish a run folder (or a TaskModel) as a Hub model repo; returns the repo URL and commit sha.

    The repo gets ``config.json``, ``model.safetensors``, ``recipe.toml``, ``metrics.jsonl``, the
    plots, a generated ``README.md`` card and the ``modelzoo.sha256`` manifest. An unchanged run makes
    no commit (``changed=False``, ``sha`` = the branch head). ``tag`` pins the resulting commit; an
    existing tag on another commit is an error, not a move. ``license`` only applies when the
    pretrained weights have none.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download

    from .modelcard import build_card

    repo_id, rev = parse_ref(repo_id)
    if rev:
        raise ZooError(f"push to {repo_id} with --branch {rev}, not {repo_id}@{rev}")
    token = _token(token)
    label = f"run {Path(source).name}" if isinstance(source, (str, os.PathLike)) else "model"
    with _as_folder(source) as folder:
        files = model_files(folder)
        config = read_config(folder)
        _check_safetensors(files["model.safetensors"])
        summary = read_json_object(folder / "summary.json", "summary") if (folder / "summary.json").is_file() else None
        contents: dict[str, Path | bytes] = dict(files)
        contents[CARD] = build_card(repo_id, config, files, summary, license).encode()
        hashes = _sha256_all(files)
        hashes[CARD] = hashlib.sha256(contents[CARD]).hexdigest()
        contents[MANIFEST] = render_manifest(hashes)
        hashes[MANIFEST] = hashlib.sha256(contents[MANIFEST]).hexdigest()

        api = HfApi(token=token)
        with hub_errors(repo_id, branch):
            url = str(api.create_repo(repo_id, private=private, exist_ok=True))
            if branch != "main":
                api.create_branch(repo_id, branch=branch, exist_ok=True)
            head = api.repo_info(repo_id, revision=branch, files_metadata=True)
            if private and not head.private:
                print(
                    f"warning: {repo_id} already exists and is public; --private only applies to new repos",
                    file=sys.stderr,
                )
            remote = {s.rfilename: s for s in head.siblings or []}
            changed = [n for n in sorted(contents) if not _same(remote.get(n), contents[n], hashes[n])]
            extra = [n for n in remote if n not in contents and n != ".gitattributes"]
            stale: list[str] = []
            if extra and MANIFEST in remote:  # only delete files a previous push published
                old = Path(hf_hub_download(repo_id, MANIFEST, revision=head.sha, token=token))
                stale = [n for n in extra if n in parse_manifest(old.read_text(encoding="utf-8"))]
            tags = {}
            if tag:
                tags = {t.name: t.target_commit for t in api.list_repo_refs(repo_id).tags}
                if tag in tags and (changed or stale or tags[tag] != head.sha):
                    raise ZooError(
                        f"tag {tag!r} already points to {tags[tag][:12]} in {repo_id}; tags pin releases, pick a new one"
                    )
            sha = head.sha
            if changed or stale:
                ops: list[Any] = []
                for name in changed:
                    content = contents[name]
                    op = CommitOperationAdd(
                        path_in_repo=name, path_or_fileobj=content if isinstance(content, bytes) else str(content)
                    )
                    try:  # we hashed already; spare the client a second pass (LFS path)
                        op.upload_info.sha256 = bytes.fromhex(hashes[name])
                    except AttributeError:
                        pass
                    ops.append(op)
                ops += [CommitOperationDelete(path_in_repo=name) for name in stale]
                metrics = (summary or {}).get("metrics") or {}
                described = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
                info = api.create_commit(
                    repo_id,
                    operations=ops,
                    commit_message=message or f"Push {label} with modelzoo",
                    commit_description=described or None,
                    revision=branch,
                    parent_commit=head.sha,
                )
                sha = info.oid
            if tag and tag not in tags:
                api.create_tag(repo_id, tag=tag, revision=sha)
    return PushResult(repo_id, url, sha, branch, bool(changed or stale), tag, hashes)


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


def _recorded(snapshot: Path) -> list[str]:
    """The extra files a downloaded config.json records (none if it is missing or not modelzoo's)."""
    if not (snapshot / CONFIG).is_file():
        return []
    try:
        return recorded_files(read_config(snapshot))
    except ZooError:
        return []


def _remember_ref(repo_id: str, revision: str, sha: str) -> None:
    """Record branch/tag → sha in the HF cache layout (``refs/<name>``) so offline pulls can resolve it."""
    if not COMMIT_RE.match(revision):
        atomic_write_text(_cache_folder(repo_id) / "refs" / revision, sha)


class _Mismatch(ZooError):
    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


def verify_snapshot(folder: Path, repo_id: str, sha: str) -> dict[str, str]:
    """Check every allowlisted file of a snapshot against its manifest; ``{name: sha256}`` incl. the manifest."""
    where = f"{repo_id}@{sha[:12]}"
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ZooError(f"file {MANIFEST} not found in {where}: it is not a modelzoo model (publish with zoo push)")
    recorded = _recorded(folder)
    expected = {n: h for n, h in parse_manifest(manifest.read_text(encoding="utf-8")).items() if pullable(n, recorded)}
    for name in REQUIRED:
        if name not in expected:
            raise ZooError(f"{where}: {MANIFEST} lists no {name}, so it is not a loadable modelzoo model")
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise _Mismatch(f"file {missing[0]} not found in {where} although its {MANIFEST} lists it", missing)
    actual = _sha256_all({name: folder / name for name in expected})
    bad = [name for name in expected if actual[name] != expected[name]]
    if bad:
        name = bad[0]
        raise _Mismatch(
            f"{where}: {name} has sha256 {actual[name][:16]}… but {MANIFEST} records {expected[name][:16]}…",
            bad,
        )
    actual[MANIFEST] = sha256_file(manifest)
    return actual


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


# -- listing ----------------------------------------------------------------------------------
def _check_reachable() -> None:
    """One request without retries: listing retries connection errors with backoff for ~23 s."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint(), timeout=10)
    except Exception as exc:
        if _is_connection_error(exc):
            raise _unreachable() from None
        raise


def list_hub_models(org: str, token: str | None = None) -> list[dict[str, Any]]:
    """The modelzoo models that ``org`` publishes: id, sha, task, license, metrics, last update."""
    from huggingface_hub import HfApi

    if not re.match(r"^[A-Za-z0-9][\w.-]*$", org):
        raise ZooError(f"{org!r} is not a Hub user or organization name")
    if _offline():
        raise ZooError("listing Hub models needs the Hub, but HF_HUB_OFFLINE=1 is set")
    _check_reachable()
    with hub_errors(org):
        models = list(HfApi(token=token).list_models(author=org, filter="modelzoo", cardData=True))
    out = []
    for m in models:
        card = m.card_data
        library = m.library_name or (getattr(card, "library_name", None) if card is not None else None)
        if library != "modelzoo":
            continue
        metrics = {r.metric_type: r.metric_value for r in (getattr(card, "eval_results", None) or [])}
        out.append(
            {
                "id": m.id,
                "sha": m.sha,
                "task": m.pipeline_tag,
                "license": getattr(card, "license", None),
                "private": bool(m.private),
                "updated": m.last_modified.isoformat() if m.last_modified else None,
                "metrics": metrics,
            }
        )
    return sorted(out, key=lambda d: d["id"])
