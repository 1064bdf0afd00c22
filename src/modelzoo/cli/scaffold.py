"""``zoo plugins new``: a working plugin skeleton, from the templates in ``modelzoo/cli/templates``.

``backbone`` (the default) registers one tiny backbone; ``--task NAME`` writes a complete task plugin
(a Task subclass with its data, loss, metric, predict and card, a head and a demo backbone) that
fine-tunes, evaluates, predicts and publishes as it is, to be edited into the task you need. Each
skeleton has a pyproject with its entry point and a test that passes once it is installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from ..errors import ZooError
from ..util.files import atomic_write_text

TEMPLATES = Path(__file__).with_name("templates")
_DIST = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_TASK = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def new_plugin(dist: str, parent: str | Path = ".", task: str | None = None) -> Path:
    """Write the skeleton of plugin ``dist`` into ``parent/dist``; ``task`` makes it a task plugin."""
    if not _DIST.fullmatch(dist) or dist in ("zoo", "zoo-"):
        raise ZooError(f"plugin name {dist!r} must be lowercase letters, digits and '-', e.g. zoo-myplugin")
    if task is not None and not _TASK.fullmatch(task):
        raise ZooError(f"task name {task!r} must be lowercase letters, digits and '-', e.g. image-regression")
    plugin = re.sub(r"^zoo-", "", dist).replace("-", "_")
    module = dist.replace("-", "_")
    root = Path(parent) / dist
    if root.exists():
        raise ZooError(f"{root} already exists; choose another name or --dir")
    fields = {
        "dist": dist,
        "plugin": plugin,
        "module": module,
        "task": task or "",
        "task_class": "".join(part.capitalize() for part in (task or "").split("-")),
    }
    template = TEMPLATES / ("task" if task else "backbone")
    for source in sorted(template.rglob("*.tmpl")):
        rel = Template(str(source.relative_to(template))[: -len(".tmpl")]).substitute(fields)
        atomic_write_text(root / rel, Template(source.read_text(encoding="utf-8")).substitute(fields))
    return root
