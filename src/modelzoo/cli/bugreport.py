"""One line for an exception nobody anticipated: whose bug it is, and how to see the traceback.

Every failure a user can act on is a :class:`~modelzoo.errors.ZooError`. Anything else is a bug, in
modelzoo or in a plugin, and the user's next step is to report it to the right people: so the line
names the package whose code raised (the innermost frame in modelzoo or in a distribution that
registers ``modelzoo`` plugins, looking through chained exceptions and through the "Original
Traceback" that torch's data loader copies from a worker process), the file and line, and
``MODELZOO_TRACEBACK=1``, which re-raises with the whole traceback for the report.
"""

from __future__ import annotations

import os
import re
from importlib import metadata

TRACEBACK_ENV = "MODELZOO_TRACEBACK"
_WORKER_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def traceback_wanted() -> bool:
    return os.environ.get(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def _plugin_packages() -> dict[str, str]:
    """Top-level package -> distribution name, for modelzoo and every distribution with a plugin."""
    from ..catalog.plugins import GROUP

    owners = {"modelzoo": "modelzoo"}
    for ep in metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        top = ep.value.split(":")[0].split(".")[0]
        owners.setdefault(top, dist.name if dist is not None else top)
    return owners


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not hide the bug being reported
        return ""


def _owned_frame(exc: BaseException, owners: dict[str, str]) -> tuple[str, str] | None:
    """(owner, "package/file.py:line") of the innermost owned frame of this one exception."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        top = module.split(".")[0]
        if top in owners:
            package = tb.tb_frame.f_code.co_filename.endswith("__init__.py")
            path = module.replace(".", "/") + ("/__init__.py" if package else ".py")
            found = (owners[top], f"{path}:{tb.tb_lineno}")
        tb = tb.tb_next
    for filename, line in _WORKER_FRAME.findall(_text(exc)):  # a worker's traceback, copied as text
        parts = filename.replace("\\", "/").split("/")
        tops = [i for i, part in enumerate(parts) if part in owners]
        if tops:
            i = tops[-1]
            found = (owners[parts[i]], f"{'/'.join(parts[i:])}:{line}")
    return found


def describe_bug(exc: BaseException) -> str:
    """``a bug in DISTRIBUTION (package/file.py:LINE): TYPE: MESSAGE; ...`` on one line."""
    try:
        owners = _plugin_packages()
    except Exception:  # a broken environment must not hide the bug being reported
        owners = {"modelzoo": "modelzoo"}
    chain, seen = [], set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:  # the exception, then what it was raised from
        seen.add(id(link))
        chain.append(link)
        link = link.__cause__ or link.__context__
    owner, where = "modelzoo", ""
    for link in reversed(chain):  # the original exception first: its frames are where things broke
        found = _owned_frame(link, owners)
        if found:
            owner, where = found[0], f" ({found[1]})"
            break
    detail = " ".join(_text(exc).split("Original Traceback")[0].split())[:200]
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"a bug in {owner}{where}: {what}; rerun with {TRACEBACK_ENV}=1 for the traceback and report it to {owner}"
