"""Small mechanisms every subsystem uses: atomic files and bounded JSON reads (:mod:`.files`), the
cache paths (:mod:`.paths`), plots (:mod:`.plots`), images read safely (:mod:`.images`), the one
dataclass type-checker (:mod:`.typecheck`) and lazy package surfaces (:mod:`.lazy`).
"""

from __future__ import annotations

from .lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "atomic_write": ".files",
    "atomic_write_text": ".files",
    "atomic_write_bytes": ".files",
    "read_json_object": ".files",
    "sha256_file": ".files",
    "cache_dir": ".paths",
    "pyplot": ".plots",
    "save_figure": ".plots",
    "read_image": ".images",
    "lazy_exports": ".lazy",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
