"""One line for an exception nobody anticipated: whose bug it is, and how to see the traceback.

Every failure a user can act on is a :class:`~modelzoo.errors.ZooError`. Anything else is a bug, in
modelzoo or in a plugin, and the user's next step is to report it to the right people: so the line
names the package whose code raised (the innermost frame in modelzoo or in a distribution that
registers ``modelzoo`` plugins), the file and line, and ``MODELZOO_TRACEBACK=1``, which re-raises
with the whole traceback for the report.
"""

from __future__ import annotations

import os
from importlib import metadata

TRACEBACK_ENV = "MODELZOO_TRACEBACK"


def traceback_wanted() -> bool:
    return os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0")


def _plugin_packages() -> dict[str, str]:
    """Top-level package -> distribution name, for modelzoo and every distribution with a plugin."""
    from .plugins import GROUP

    owners = {"modelzoo": "modelzoo"}
    for ep in metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        top = ep.value.split(":")[0].split(".")[0]
        owners.setdefault(top, dist.name if dist is not None else top)
    return owners


def describe_bug(exc: BaseException) -> str:
    """``a bug in zoo-detection (zoo_detection/task.py:88): TypeError: ...; ...`` on one line."""
    try:
        owners = _plugin_packages()
    except Exception:  # a broken environment must not hide the bug being reported
        owners = {"modelzoo": "modelzoo"}
    owner, where = "modelzoo", ""
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        top = module.split(".")[0]
        if top in owners:
            path = tb.tb_frame.f_code.co_filename
            parts = path.replace("\\", "/").split("/")
            short = "/".join(parts[parts.index(top) :]) if top in parts else os.path.basename(path)
            owner, where = owners[top], f" ({short}:{tb.tb_lineno})"
        tb = tb.tb_next
    detail = " ".join(str(exc).split())[:200]
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"a bug in {owner}{where}: {what}; rerun with {TRACEBACK_ENV}=1 for the traceback and report it to {owner}"
