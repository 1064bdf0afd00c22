"""The catalog: what the installed plugins provide, as plain data.

Specs (backbones, heads, datasets, recipes, tasks) are dataclasses that listing never needs torch for;
this package owns their one validator (:mod:`.specs`), plugin discovery with per-plugin isolation
(:mod:`.plugins`), the per-plugin cache, the shipped ``registry.json`` and live loading (:mod:`.load`),
lookup, filters and task inference (:mod:`.lookup`), the core's own entries (:mod:`.builtin`), importing
a spec's builder (:mod:`.builders`), asking the plugins a run-time hook (:mod:`.hooks`) and building or
checking ``registry.json`` (:mod:`.registry_file`).
"""

from __future__ import annotations

from ..util.lazy import lazy_exports

EXPORTS: dict[str, str] = {
    "Spec": ".specs",
    "PretrainedTag": ".specs",
    "Level": ".specs",
    "TaskMeta": ".specs",
    "PredictOption": ".specs",
    "KINDS": ".specs",
    "OUTPUT_KINDS": ".specs",
    "catalog": ".lookup",
    "Catalog": ".lookup",
    "infer_task": ".lookup",
    "get": ".lookup",
    "list_models": ".lookup",
    "import_builder": ".builders",
    "recipe_files": ".builtin",
    "catalog_cache_dir": ".load",
    "GROUP": ".plugins",
    "first_answer": ".hooks",
    "code_fingerprint": ".plugins",
    "build_registry": ".registry_file",
    "check_registry": ".registry_file",
    "write_registry": ".registry_file",
    "registry_plugins": ".registry_file",
}

__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)
