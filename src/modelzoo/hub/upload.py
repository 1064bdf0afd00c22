"""``zoo push``: a run folder (or a TaskModel) to a Hub model repo, with card and manifest, committed
only when something changed (``parent_commit`` guards a branch that moved meanwhile).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..model.folder import model_files, read_config
from ..util.files import read_json_object
from .client import _token, hub_errors, parse_ref, within_deadline
from .manifest import (
    CARD,
    MANIFEST,
    PUSH_EXPORTS,
    _check_safetensors,
    _sha256_all,
    git_blob_sha1,
    parse_manifest,
    render_manifest,
)


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
    #: what the push measured on the way (the parity of an exported file)
    notes: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[str]:
        yield self.url
        yield self.sha


@contextmanager
def _as_folder(source: Any) -> Iterator[Path]:
    """A run folder as is (under its run lock: never while ``zoo finetune --resume`` trains it), or a
    TaskModel saved (by :mod:`modelzoo.model.folder`) to a temporary folder."""
    if isinstance(source, (str, os.PathLike)):
        from ..engine.runlock import RunLock

        folder = Path(source)
        if not folder.is_dir():
            raise ZooError(f"{folder} is not a run folder (no such directory)")
        with RunLock(folder, for_push=True):
            yield folder
        return
    from ..model.folder import save_model
    from ..model.task import TaskModel

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
    export: str | None = None,
) -> PushResult:
    """Publish a run folder (or a TaskModel) as a Hub model repo; returns the repo URL and commit sha.

    The repo gets ``config.json``, ``model.safetensors``, ``recipe.toml``, ``metrics.jsonl``, the
    plots, a generated ``README.md`` card and the ``modelzoo.sha256`` manifest. An unchanged run makes
    no commit (``changed=False``, ``sha`` = the branch head). ``tag`` pins the resulting commit; an
    existing tag on another commit is an error, not a move. ``license`` only applies when the
    pretrained weights have none. ``export`` (``"onnx"``...) adds the model exported in that format
    and its sidecar JSON (``zoo export``, parity-checked). When the backbone offers another library's form
    (``Backbone.hub_export``), the repo also carries that library's config keys and weights file.
    """
    from huggingface_hub import HfApi

    repo_id, rev = parse_ref(repo_id)
    if rev:
        raise ZooError(f"push to {repo_id} with --branch {rev}, not {repo_id}@{rev}")
    token = _token(token)
    label = f"run {Path(source).name}" if isinstance(source, (str, os.PathLike)) else "model"
    if export is not None:
        from ..export.formats import get_format

        get_format(export)  # an unknown format or a missing runtime fails before any work
        if export not in PUSH_EXPORTS:
            raise ZooError(
                f"push --export {export}: only {', '.join(PUSH_EXPORTS)} is published (TorchScript and ExportedProgram"
                f" archives hold pickles, which pulls never download); share it with zoo export {export} instead"
            )
    with _as_folder(source) as folder, tempfile.TemporaryDirectory(prefix="zoo-push-files-") as work:
        notes: list[str] = []
        contents, hashes, summary = _publishable(folder, repo_id, license, export, Path(work), notes, tag or branch)
        api = HfApi(token=token)
        args = (api, repo_id, branch, private, tag, contents, hashes, summary, message, label, token)
        retry = "run zoo push again later (it uploads only what the repo lacks)"
        url, sha, changed = within_deadline(lambda: _commit(*args), f"pushing to {repo_id}", retry)
    return PushResult(repo_id, url, sha, branch, changed, tag, hashes, tuple(notes))


def _commit(api, repo_id, branch, private, tag, contents, hashes, summary, message, label, token):
    """The push's talk with the Hub: the repo, what differs, one commit, the tag; ``(url, sha, changed)``."""
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
        stale = _stale_files(api, repo_id, head.sha, remote, contents, token)
        tags = {}
        if tag:
            tags = {t.name: t.target_commit for t in api.list_repo_refs(repo_id).tags}
            if tag in tags and (changed or stale or tags[tag] != head.sha):
                raise ZooError(
                    f"tag {tag!r} already points to {tags[tag][:12]} in {repo_id}; tags pin releases, pick a new one"
                )
        sha = head.sha
        if changed or stale:
            metrics = (summary or {}).get("metrics") or {}
            described = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
            info = api.create_commit(
                repo_id,
                operations=_operations(changed, stale, contents, hashes),
                commit_message=message or f"Push {label} with modelzoo",
                commit_description=described or None,
                revision=branch,
                parent_commit=head.sha,
            )
            sha = info.oid
        if tag and tag not in tags:
            api.create_tag(repo_id, tag=tag, revision=sha)
    return url, sha, bool(changed or stale)


def _publishable(
    folder: Path,
    repo_id: str,
    license: str | None,
    export: str | None = None,
    work: Path | None = None,
    notes: list[str] | None = None,
    revision: str = "main",
) -> tuple[dict[str, Path | bytes], dict[str, str], dict[str, Any] | None]:
    """What a push uploads from a model folder: its files (with another library's form where the
    backbone offers one, and the ``export`` format's file), the generated card and the manifest, with
    every file's sha256 (the card and manifest are pure functions of the run, so an unchanged run
    hashes the same and makes no commit)."""
    from ..export.interop import interop_files
    from .card import build_card

    files = model_files(folder)
    config = read_config(folder)
    work = work or Path(tempfile.mkdtemp(prefix="zoo-push-files-"))
    notes = [] if notes is None else notes
    try:
        interop, usage = interop_files(folder, work / "interop")
    except ZooError as exc:  # the extra form is optional: a model this machine cannot build is pushed as it is
        interop, usage = {}, []
        notes.append(f"note: pushed without another library's form of the model ({exc})")
    files.update(interop)
    if export is not None:
        from ..export.exporter import export as export_model

        result = export_model(folder, export, out=work / "export")
        notes.append(result.line())
        files.update({result.path.name: result.path, result.sidecar.name: result.sidecar})
    _check_safetensors(files["model.safetensors"])
    summary = read_json_object(folder / "summary.json", "summary") if (folder / "summary.json").is_file() else None
    contents: dict[str, Path | bytes] = dict(files)
    contents[CARD] = build_card(repo_id, config, files, summary, license, revision, elsewhere=usage).encode()
    hashes = _sha256_all(files)
    hashes[CARD] = hashlib.sha256(contents[CARD]).hexdigest()
    contents[MANIFEST] = render_manifest(hashes)
    hashes[MANIFEST] = hashlib.sha256(contents[MANIFEST]).hexdigest()
    return contents, hashes, summary


def _stale_files(api: Any, repo_id: str, sha: str, remote: dict[str, Any], contents: dict, token: str) -> list[str]:
    """Files on the branch this push no longer has; only those a previous push published (its manifest
    lists them) are deleted, never a file someone else added."""
    from huggingface_hub import hf_hub_download

    extra = [n for n in remote if n not in contents and n != ".gitattributes"]
    if not extra or MANIFEST not in remote:
        return []
    old = Path(hf_hub_download(repo_id, MANIFEST, revision=sha, token=token))
    return [n for n in extra if n in parse_manifest(old.read_text(encoding="utf-8"))]


def _operations(
    changed: list[str], stale: list[str], contents: dict[str, Path | bytes], hashes: dict[str, str]
) -> list:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

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
    return ops + [CommitOperationDelete(path_in_repo=name) for name in stale]
