"""Small mechanisms every subsystem uses: atomic files and bounded JSON reads (:mod:`.files`), the
cache paths (:mod:`.paths`), the cores a process may use (:mod:`.cores`), plots (:mod:`.plots`),
images read safely (:mod:`.images`), the one dataclass type-checker (:mod:`.typecheck`) and lazy
package surfaces (:mod:`.lazy`).
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
    "usable_cores": ".cores",
    "LoadWatch": ".cores",
    "pyplot": ".plots",
    "save_figure": ".plots",
    "read_image": ".images",
    "lazy_exports": ".lazy",
    "map_nest": ".nest",
    "check_nest": ".nest",
    "cat_nests": ".nest",
    "index_nest": ".nest",
    "nest_rows": ".nest",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
