"""Finding a task's class through the catalog: tasks are plugins, like backbones and heads.

The catalog answers which tasks exist, their aliases and metrics (plain data, no import); this
module imports the :class:`~modelzoo.task.Task` class a task spec names, checks it, and creates it.
"""

from __future__ import annotations

from typing import Any

from .builders import import_builder
from .errors import ZooError
from .specs import Spec
from .task import Task


def task_spec(name: str) -> Spec:
    """The catalog entry of a task name or alias; did-you-mean on a miss."""
    from .catalog import catalog

    return catalog().task(name)


def task_class(name: str) -> tuple[Spec, type[Task]]:
    """The spec and the imported :class:`Task` subclass of a task name or alias."""
    spec = task_spec(name)
    cls = import_builder(spec.builder or "")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ZooError(
            f"task {spec.name!r} (plugin {spec.plugin}): builder {spec.builder} is not a modelzoo.Task subclass;"
            " fix or reinstall that plugin"
        )
    return spec, cls


def create_task(name: str, recipe: Any = None, device: Any = None, amp_dtype: Any = None) -> Task:
    """An instance of the task ``name`` (for a recipe's run, or with no recipe to use a model)."""
    spec, cls = task_class(name)
    try:
        return cls(spec, recipe=recipe, device=device, amp_dtype=amp_dtype)
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(
            f"task {spec.name!r} (plugin {spec.plugin}) failed to start: {type(exc).__name__}: {exc}"
        ) from None


def infer_task(backbone: Spec, head: Spec) -> str:
    """The one task both a backbone and a head are for (a recipe that names no task)."""
    shared = sorted(set(head.tasks) & set(backbone.tasks)) if backbone.tasks else sorted(head.tasks)
    if len(shared) == 1:
        return shared[0]
    if not shared:
        raise ZooError(
            f"head {head.name!r} is for {', '.join(head.tasks) or 'no task'} but backbone {backbone.name!r} is for"
            f" {', '.join(backbone.tasks) or 'no task'}; pick a head for the backbone's task (zoo list --kind head)"
        )
    raise ZooError(f"backbone {backbone.name!r} + head {head.name!r} fit several tasks; set task = one of {shared}")
