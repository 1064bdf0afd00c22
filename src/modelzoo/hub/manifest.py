"""What makes pulls verifiable: the sha256 manifest (``modelzoo.sha256``, ``sha256sum`` format) that
``zoo push`` writes beside every other file, git blob ids for idempotent pushes, and the files a pull may take.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import ZooError
from ..model.folder import CONFIG, REQUIRED, RUN_EXTRAS, is_data_file_name, read_config, recorded_files
from ..util.files import sha256_file

MANIFEST = "modelzoo.sha256"
CARD = "README.md"
MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


#: the formats ``zoo push --export`` publishes, and the files each adds (the model file and its sidecar
#: JSON, as ``modelzoo.export.formats.FORMATS`` names them; listed here so that pulls need no torch).
#: Only ONNX: TorchScript and ExportedProgram archives hold pickles, which a pull never downloads.
PUSH_EXPORTS = {"onnx": ("model.onnx", "model.onnx.json")}
EXPORTED = tuple(name for names in PUSH_EXPORTS.values() for name in names)
#: what every pull downloads first; the data files a model's config.json records come next
BASE_PATTERNS = (*REQUIRED, *RUN_EXTRAS, CARD, MANIFEST, "*.png", *EXPORTED)


def pullable(name: str, recorded: Iterable[str] = ()) -> bool:
    """The only files a pull downloads: the model folder's own data and docs, and the plain-data files
    its config records; never code or pickles."""
    if name in REQUIRED or name in RUN_EXTRAS or name in (CARD, MANIFEST) or name in EXPORTED:
        return True
    if "/" not in name and name.endswith(".png"):
        return True
    return name in set(recorded) and is_data_file_name(name)


# -- hashing ----------------------------------------------------------------------------------
def _recorded(snapshot: Path) -> list[str]:
    """The extra files a downloaded config.json records (none if it is missing or not modelzoo's)."""
    if not (snapshot / CONFIG).is_file():
        return []
    try:
        return recorded_files(read_config(snapshot))
    except ZooError:
        return []


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


class NotModelzoo(ZooError):
    """A repo without a modelzoo manifest: not a modelzoo model (perhaps a Hub checkpoint a plugin builds)."""


class _Mismatch(ZooError):
    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


def verify_snapshot(folder: Path, repo_id: str, sha: str) -> dict[str, str]:
    """Check every allowlisted file of a snapshot against its manifest; ``{name: sha256}`` incl. the manifest."""
    where = f"{repo_id}@{sha[:12]}"
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise NotModelzoo(f"file {MANIFEST} not found in {where}: it is not a modelzoo model (publish with zoo push)")
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
