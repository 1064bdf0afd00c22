"""Importing a plugin's builder from its ``"package.module:attribute"`` path.

Specs name builders as strings so listing never imports them (DESIGN principle 2); this is the one
place that turns such a path into the object, with a one-line error naming the plugin to fix.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ZooError
from .plugins import stdout_to_stderr


def import_builder(path: str) -> Any:
    """Import ``"package.module:attribute"``; a failure names the plugin to fix or reinstall."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ZooError(f"builder {path!r} must look like 'package.module:attribute'")
    try:
        with stdout_to_stderr():  # a plugin's prints must not corrupt zoo's stdout
            module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ZooError(f"cannot import builder {path!r} ({exc}); reinstall the plugin that provides it") from None
    except Exception as exc:  # a plugin module that raises while importing must not show a traceback
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise ZooError(
            f"importing builder {path!r} failed ({type(exc).__name__}: {detail}); fix or reinstall its plugin"
        ) from None
