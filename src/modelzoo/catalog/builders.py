"""Importing a plugin's builder from its ``"package.module:attribute"`` path.

Specs name builders as strings so listing never imports them (DESIGN principle 2); this is the one
place that turns such a path into the object, with a one-line error naming the plugin to fix.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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


#: a builder's rule for the options it forwards through ``**options``: name -> None (accepted) or why not
OptionRule = Callable[[str], "str | None"]


def option_rule(rule: OptionRule) -> Callable[[Any], Any]:
    """Declare which ``**options`` a builder forwards to code the core cannot see (a library's model
    constructor). Options come from recipes and from pulled ``config.json`` files, so a builder taking
    ``**options`` without this declaration accepts only its named parameters; ``rule(name)`` returns
    None for an accepted option or a few words saying why it is refused (it reads files, reaches the
    network). Use: ``@option_rule(my_rule)`` above ``def build(spec, output, pretrained, **options)``."""

    def mark(builder: Any) -> Any:
        builder.__zoo_option_rule__ = rule
        return builder

    return mark
