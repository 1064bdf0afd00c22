"""Any Hub checkpoint as a backbone: ``model.backbone = "hf-hub:ORG/NAME[@REV]"`` for repos that are not modelzoo's.

Why it looks like this:

* **The core knows no format.** It resolves the name to a commit, downloads that commit's
  ``config.json`` (plain data) and asks the installed plugins, through the ``modelzoo_hub_backbone``
  hook, which one builds it; the plugin answers with an ordinary backbone ``Spec`` whose pretrained tag
  points at the repo's weights at that very commit. Everything after that (weights fetched and
  sha256-checked, assembly, training, saving) is the path every catalog backbone takes.
* **Pinned to a sha, usable offline.** The revision (a branch, a tag, a sha, the project's ``zoo.lock``
  entry, else ``main``) resolves to a 40-hex commit once; the spec's name records it, so a run folder's
  ``config.json`` rebuilds exactly that commit. What the Hub said about the commit (its file list and
  LFS sha256s, its library) is kept beside the HF cache, and the branch or tag is recorded as an HF cache
  ref, so ``HF_HUB_OFFLINE=1`` resolves the same name without the network.
* **Data only.** A repo whose weights exist only as pickles is refused before any plugin is asked; no
  code from a repo is ever run.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..catalog.specs import Spec, validate_spec
from ..errors import ZooError
from ..util.files import atomic_write_text, read_json_object
from .client import (
    COMMIT_RE,
    _offline,
    _offline_miss,
    cache_folder,
    endpoint,
    hub_errors,
    parse_ref,
    remember_refs,
    request_timeout,
)

PREFIX = "hf-hub:"
CONFIG = "config.json"
#: weight files only pickle can read: a repo with nothing else is refused
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".pkl", ".pickle")
#: a config.json larger than this is not a model config
MAX_CONFIG_BYTES = 4 << 20
#: the spec meta key holding the pinned ``hf-hub:ORG/NAME@SHA`` (a run folder records it as the backbone name)
HUB_REF = "hub_ref"


@dataclass(frozen=True)
class HubCheckpoint:
    """One commit of a Hub repo: its ``config.json`` data, its files (name -> sha256 or None) and library."""

    repo: str
    revision: str
    sha: str
    config: dict[str, Any]
    files: dict[str, str | None]
    library: str | None = None

    @property
    def ref(self) -> str:
        return f"{PREFIX}{self.repo}@{self.sha}"

    @property
    def folder(self) -> Path:
        """The commit's snapshot folder in the HF cache."""
        return cache_folder(self.repo) / "snapshots" / self.sha


def is_hub_name(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


# -- resolving a name to a commit ------------------------------------------------------------------
def _record_path(repo: str, sha: str) -> Path:
    from ..util.paths import cache_dir

    return cache_dir() / "hub-checkpoints" / f"{repo.replace('/', '--')}@{sha}.json"


def _read_config(path: Path, where: str) -> dict[str, Any]:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ZooError(f"{where}: config.json is over {MAX_CONFIG_BYTES >> 20} MB; that is not a model config")
    return read_json_object(path, f"{where} config.json")


def _cached(repo: str, revision: str) -> HubCheckpoint | None:
    """The commit ``revision`` names in the local caches, if both its record and its config.json are there."""
    sha = revision
    if not COMMIT_RE.match(revision):
        if "/" in revision or revision.startswith("."):  # refs/pr/1 and the like are never cached here
            return None
        ref = cache_folder(repo) / "refs" / revision
        if not ref.is_file():
            return None
        sha = ref.read_text(encoding="utf-8").strip()
    record, config = _record_path(repo, sha), cache_folder(repo) / "snapshots" / sha / CONFIG
    if not (COMMIT_RE.match(sha) and record.is_file() and config.is_file()):
        return None
    try:
        data = read_json_object(record, "cached Hub record")
    except ZooError:  # a damaged record is a cache miss: online, it is written again
        return None
    files = data.get("files") if isinstance(data.get("files"), dict) else {}
    return HubCheckpoint(repo, revision, sha, _read_config(config, f"{PREFIX}{repo}"), files, data.get("library"))


def _online(repo: str, revision: str) -> HubCheckpoint:
    """One metadata request (commit, files with their LFS sha256s, library) and the commit's config.json."""
    from huggingface_hub import HfApi, hf_hub_download

    with hub_errors(repo, revision):
        info = HfApi().model_info(repo, revision=revision, files_metadata=True, timeout=request_timeout())
        sha = str(info.sha)
        files = {s.rfilename: (s.lfs.sha256 if s.lfs else None) for s in info.siblings or []}
        if CONFIG not in files:
            raise ZooError(
                f"{PREFIX}{repo}@{revision} has no config.json; modelzoo builds a Hub checkpoint from the config its"
                " library wrote (and never from code)"
            )
        path = Path(hf_hub_download(repo, CONFIG, revision=sha))
    card = getattr(info, "card_data", None)
    library = info.library_name or (getattr(card, "library_name", None) if card is not None else None)
    config = _read_config(path, f"{PREFIX}{repo}")
    library = library or _library_of(config)
    atomic_write_text(_record_path(repo, sha), json.dumps({"repo": repo, "files": files, "library": library}) + "\n")
    remember_refs(repo, revision, sha)  # refs/<branch or tag> in the HF cache: offline resolution
    return HubCheckpoint(repo, revision, sha, config, files, library)


def _library_of(config: dict[str, Any]) -> str | None:
    """The library a config.json names: ``library_name``, else a ``<library>_version`` key it was saved with."""
    name = config.get("library_name")
    if isinstance(name, str):
        return name
    return next((k[: -len("_version")] for k in config if k.endswith("_version") and k != "_version"), None)


def _reachable() -> bool:
    from .client import _check_reachable

    try:
        _check_reachable()
    except ZooError:
        return False
    return True


def resolve_checkpoint(ref: str) -> HubCheckpoint:
    """``hf-hub:ORG/NAME[@REV]`` → the commit it names, with its config.json (from the cache when it can).

    No revision: the project's ``zoo.lock`` entry if it lists the repo, else ``main``. A full sha that is
    cached costs no network; a branch or tag costs one request, and the cached answer is used offline or
    when the Hub is unreachable.
    """
    from .lockfile import read_lock

    repo, revision = parse_ref(ref)
    entry = read_lock().get(repo) if revision is None else None  # as zoo pull: the lock pins unnamed revisions
    if revision is None:
        revision = entry.sha if entry else "main"
    ckpt = _resolve(repo, revision)
    if entry is not None and entry.sha == ckpt.sha:  # the lock's sha256s pin the files too: checked when fetched
        files = {**ckpt.files, **{n: h for n, h in entry.files.items() if n in ckpt.files}}
        return replace(ckpt, revision=entry.revision if ckpt.revision == entry.sha else ckpt.revision, files=files)
    return ckpt


def _resolve(repo: str, revision: str) -> HubCheckpoint:
    cached = _cached(repo, revision)
    if cached is not None and COMMIT_RE.match(revision):
        return cached
    if _offline():
        if cached is not None:
            return cached
        raise _offline_miss(f"{PREFIX}{repo}@{revision}")
    if cached is not None and not _reachable():
        print(f"warning: the Hub at {endpoint()} is unreachable; using the cached {repo}@{revision}", file=sys.stderr)
        return cached
    return _online(repo, revision)


# -- zoo.lock ----------------------------------------------------------------------------------------
#: the files of a checkpoint repo that ``zoo lock`` fetches and hashes: data only, never code or pickles
DATA_SUFFIXES = (".json", ".txt", ".safetensors", ".model")


def checkpoint_files(ref: str) -> tuple[HubCheckpoint, dict[str, str]]:
    """``(checkpoint, {file: sha256})`` of a Hub checkpoint's top-level data files (config, weights, vocabulary),
    fetched into the HF cache and hashed; a file whose Hub LFS sha256 disagrees is an error."""
    from ..model.weights import SourceUnavailable, locate_source
    from ..util.files import sha256_file

    ckpt = resolve_checkpoint(ref)
    _refuse_pickles(ckpt)
    out: dict[str, str] = {}
    for name in sorted(n for n in ckpt.files if "/" not in n and n.endswith(DATA_SUFFIXES)):
        try:
            path = locate_source(f"{ckpt.ref}::{name}")
        except SourceUnavailable as exc:
            raise ZooError(f"{ckpt.ref}: cannot fetch {name} ({exc})") from None
        digest = sha256_file(path)
        if ckpt.files.get(name) and ckpt.files[name] != digest:
            raise ZooError(f"{ckpt.ref}: {name} has sha256 {digest[:16]}… but the Hub records {ckpt.files[name][:16]}…")
        out[name] = digest
    return ckpt, out


# -- asking the plugins ------------------------------------------------------------------------------
_SPECS: dict[tuple[str, str], Spec] = {}


def hub_spec(ref: str) -> Spec:
    """The backbone ``Spec`` for ``hf-hub:ORG/NAME[@REV]``, from the installed plugin that builds its format."""
    from ..catalog.hooks import first_answer

    ckpt = resolve_checkpoint(ref)
    known = _SPECS.get((ckpt.repo, ckpt.sha))
    if known is not None:
        return known
    if ckpt.config.get("library") == "modelzoo" or ckpt.library == "modelzoo":
        base = ckpt.config.get("backbone")
        raise ZooError(
            f"{ckpt.ref} is a modelzoo model, not a backbone checkpoint: load it with"
            f' modelzoo.load("hf-hub:{ckpt.repo}") or zoo predict (its backbone is {base.get("name") if isinstance(base, dict) else None!r})'
        )
    _refuse_pickles(ckpt)
    answers = first_answer(
        "modelzoo_hub_backbone", repo=ckpt.repo, sha=ckpt.sha, config=dict(ckpt.config), files=dict(ckpt.files)
    )
    if answers.value is None:
        raise ZooError(_no_plugin(ckpt, answers.failures))
    try:
        spec = validate_spec(answers.value)
    except ZooError as exc:
        raise ZooError(f"plugin {answers.plugin!r} answered {ckpt.ref} with an invalid spec: {exc}") from None
    if spec.kind != "backbone":
        raise ZooError(f"plugin {answers.plugin!r} answered {ckpt.ref} with a {spec.kind}, not a backbone")
    spec.plugin = answers.plugin or ""
    spec.meta = {**spec.meta, HUB_REF: ckpt.ref, "hub_repo": ckpt.repo, "hub_revision": ckpt.revision}
    _SPECS[(ckpt.repo, ckpt.sha)] = spec
    return spec


def known_hub_spec(name: str) -> Spec | None:
    """A Hub checkpoint's spec resolved earlier in this process, by its ``plugin:name`` or name (code that
    re-resolves a spec by ``qualified_name`` finds it again)."""
    wanted = name.lower()
    for spec in reversed(_SPECS.values()):
        if wanted in (spec.qualified_name.lower(), spec.name.lower()):
            return spec
    return None


def _refuse_pickles(ckpt: HubCheckpoint) -> None:
    top = [name for name in ckpt.files if "/" not in name]
    pickles = sorted(n for n in top if n.endswith(PICKLE_SUFFIXES))
    if pickles and not any(n.endswith(".safetensors") for n in top):
        raise ZooError(
            f"{ckpt.ref} has its weights only as pickles ({', '.join(pickles[:3])}); modelzoo never unpickles files"
            " from a Hub repo: use a revision with model.safetensors (or convert the weights and push them)"
        )


def _describe(config: dict[str, Any]) -> str:
    for key in ("architecture", "model_type", "architectures"):
        value = config.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value[:2])
        if isinstance(value, str) and value.isprintable():
            return f"its config.json names {key} {value[:80]!r}"
    return "its config.json names no architecture"


def _no_plugin(ckpt: HubCheckpoint, failures: list[str]) -> str:
    """No plugin builds it: say what the repo is and which plugin distribution to install (from the registry)."""
    from ..catalog.load import shipped_registry

    library = ckpt.library
    offers: dict[str, set[str]] = {}  # distribution -> libraries its backbones come from
    for plugin in shipped_registry().values():
        dist = plugin["fingerprint"].get("distribution")
        libraries = {(e.get("meta") or {}).get("library") for e in plugin["entries"] if e.get("kind") == "backbone"}
        if dist and libraries - {None}:
            offers.setdefault(dist, set()).update(lib for lib in libraries if isinstance(lib, str))
    match = sorted(d for d, libs in offers.items() if library in libs)
    if match:
        fix = f"install the plugin for {library} models: zoo plugins install {match[0]}"
    elif offers:
        fix = "install a plugin for its library: " + ", ".join(
            f"{d} ({'/'.join(sorted(libs))})" for d, libs in sorted(offers.items())
        )
    else:
        fix = "install a plugin that builds its library's models"
    what = f"library {library}, " if library else ""
    broken = f"; plugins that failed to answer: {'; '.join(failures)}" if failures else ""
    return f"no installed plugin can build {ckpt.ref} ({what}{_describe(ckpt.config)}); {fix}{broken}"
