"""File helpers: atomic writes (a crash or kill -9 never leaves a half-written file behind), checked reads."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ZooError


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file over ``path`` (same directory, fsync'd)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp_path, path)
    except BaseException as exc:
        full = disk_full_error(path, exc, tmp_path)
        tmp_path.unlink(missing_ok=True)
        if full is not None:
            raise full from None
        raise
    return path


#: below this much free space, a failed write is taken for a full disk (whatever the writer's own error says:
#: torch.save reports ``enforce fail at inline_container.cc``, safetensors ``os error 28``)
FULL_BELOW = 1 << 20


def disk_full_error(path: Path, exc: BaseException, partial: Path | None = None) -> DiskFull | None:
    """A one-line ZooError when ``exc`` (raised while writing ``path``) means its file system is full,
    naming the file system, its free space and what the write needed; None for any other failure."""
    import errno
    import shutil

    if not isinstance(exc, Exception) or isinstance(exc, ZooError):
        return None
    try:
        free = shutil.disk_usage(path.parent).free
        written = partial.stat().st_size if partial is not None and partial.exists() else 0
    except OSError:
        return None
    if not (getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or free < FULL_BELOW):
        return None
    mount = path.parent.resolve()
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    return DiskFull(path, mount, free, written)


class DiskFull(ZooError):
    """A write failed because its file system is full; ``reason`` is the short form for callers that
    go on to say what to do next themselves."""

    def __init__(self, path: Path, mount: Path, free: int, written: int) -> None:
        self.path, self.mount, self.free, self.written = path, mount, free, written
        need = f"more than {_size(written)}" if written else "more space"
        self.reason = f"disk full: the file system at {mount} has {_size(free)} free and it needs {need}"
        super().__init__(
            f"cannot write {path} ({self.reason}); free some space there (or write elsewhere) and rerun;"
            " nothing was half-written"
        )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


#: the largest JSON file read whole (configs, summaries, manifests are kilobytes; a hostile one may not be)
MAX_JSON_BYTES = 64 << 20


def read_json_object(path: str | os.PathLike, what: str = "", max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """A JSON file that must hold an object; a missing, unreadable, malformed, oversized or absurdly
    nested file is one clear ZooError."""
    from ..errors import ZooError

    label = f"{what} {path}" if what else str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ZooError(f"cannot read {label} ({exc})") from None
    if len(raw) > max_bytes:
        raise ZooError(f"{label} is over {max_bytes >> 20} MiB; not a file modelzoo wrote")
    data = parse_json(raw, label)
    if not isinstance(data, dict):
        raise ZooError(f"{label} is not a JSON object")
    return data


def parse_json(raw: bytes | str, label: str) -> Any:
    """``json.loads`` whose every failure (bad syntax, bad encoding, nesting past Python's recursion
    limit) is one ZooError naming ``label``."""
    import json

    from ..errors import ZooError

    try:
        return json.loads(raw)
    except RecursionError:
        raise ZooError(f"cannot read {label} (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ZooError(f"cannot read {label} ({exc})") from None
