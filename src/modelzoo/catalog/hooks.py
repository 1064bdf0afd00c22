"""Asking the installed plugins a question at run time (a hook other than the catalog's).

``modelzoo_specs`` is called once per plugin and cached; other hooks (``modelzoo_hub_backbone``) are
asked when a user names something no catalog lists. Each allowed plugin is imported and asked in
isolation, in entry-point order: a plugin that fails to import or raises something other than a
:class:`ZooError` is recorded (its reason ends up in the caller's error) and the others still answer;
a :class:`ZooError` is the plugin's own one-line answer ("this is mine, but it cannot be built") and
goes to the user as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ZooError
from .plugins import allowed_names, entry_points, load_plugin, plugin_info, stdout_to_stderr


@dataclass
class Answers:
    """What the plugins said: the first non-None answer and which plugin gave it, and who failed."""

    plugin: str | None = None
    value: Any = None
    failures: list[str] = field(default_factory=list)


def first_answer(hook: str, **kwargs: Any) -> Answers:
    """Call ``hook(**kwargs)`` on each allowed plugin that implements it until one returns non-None."""
    import pluggy

    from .. import hookspecs

    allowed = allowed_names()
    answers = Answers()
    for ep in entry_points():
        if allowed is not None and ep.name not in allowed:
            continue
        info = plugin_info(ep)
        module = load_plugin(ep, info)
        if module is None:
            answers.failures.append(f"{ep.name}: {info.error}")
            continue
        if not callable(getattr(module, hook, None)):
            continue
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        try:
            pm.register(module, name=ep.name)
            impls = getattr(pm.hook, hook).get_hookimpls()
            with stdout_to_stderr():
                value = next((v for v in (impl.function(**kwargs) for impl in impls) if v is not None), None)
        except ZooError:
            raise
        except Exception as exc:
            answers.failures.append(f"{ep.name}: {hook} raised {type(exc).__name__}: {exc}".splitlines()[0][:200])
            continue
        if value is not None:
            answers.plugin, answers.value = ep.name, value
            return answers
    return answers
