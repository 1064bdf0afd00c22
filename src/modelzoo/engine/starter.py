"""``zoo recipe new``: a commented starter recipe for the user's own data, that ``zoo finetune`` runs.

The task is the one whose plugin recognises the data (``Task.starter_data``) unless named; the
backbone, head and schedule come from the task's first registered recipe (``zoo list --kind recipe``)
unless named. Every field written carries its meaning from the schema (:mod:`.recipedoc`), and the
result is validated as ``zoo finetune`` would before it is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..model.task import DataConfig, task_class
from .recipedoc import field_comments

#: the schedule when no registered recipe of the task gives one: the head on cached features, then all
DEFAULT_STAGES = [
    {"name": "head", "train": "head", "epochs": 5, "lr": 3e-3},
    {"name": "finetune", "train": "all", "epochs": 5, "lr": 1e-3, "warmup_epochs": 0.5},
]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _table(lines: list[str], header: str | None, values: dict[str, Any], comments: dict[str, str]) -> None:
    if header:
        lines += ["", header]
    for key, value in values.items():
        if comments.get(key):
            lines.append(f"# {comments[key]}".replace("``", "`"))
        lines.append(f"{key} = {_value(value)}")


def pick_task(data: Path, task: str | None) -> tuple[str, dict[str, Any]]:
    """The task for ``data`` and its data fields: the named one, or the one installed task that recognises it."""
    from ..catalog.lookup import catalog

    if task is not None:
        spec, cls = task_class(task)
        fields = cls.starter_data(data)
        if fields is None:
            if "path" not in {f for f in cls.Data.__dataclass_fields__}:
                raise ZooError(f"task {spec.name} cannot read {data}; see docs/recipes.md for its [data] fields")
            fields = {"path": str(data)}
        return spec.name, fields
    found = []
    for spec in catalog().filter(kind="task"):
        try:
            _, cls = task_class(spec.name)
            fields = cls.starter_data(data)
        except ZooError:
            continue
        if fields is not None:
            found.append((spec.name, fields))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ZooError(f"no installed task recognises {data}; name one with --task (zoo list --kind task)")
    raise ZooError(f"{data} could be data of {', '.join(n for n, _ in found)}; pick one with --task")


def _template(task: str) -> dict[str, Any]:
    """The model, optimizer and stages of the task's first registered recipe ({} when it has none)."""
    from ..catalog.lookup import catalog
    from .recipe import read_recipe_file, recipe_path

    for spec in sorted(catalog().filter(kind="recipe"), key=lambda s: s.name):
        if task in spec.tasks:
            try:
                return read_recipe_file(recipe_path(spec.name))
            except ZooError:
                continue
    return {}


def starter_recipe(
    data: str | Path, task: str | None = None, backbone: str | None = None, name: str | None = None
) -> str:
    """The text of a commented starter recipe for the data at ``data`` (validated, not yet written)."""
    from .recipe import ModelCfg, OptimizerCfg, Recipe, StageCfg

    path = Path(data).expanduser()
    if not path.exists():
        raise ZooError(f"--data {data}: no such file or folder")
    path = path.resolve()
    task, data_fields = pick_task(path, task)
    template = _template(task)
    model = dict(template.get("model") or {})
    if backbone is not None:
        if backbone != model.get("backbone"):
            template.pop("stages", None)  # its schedule names another backbone's layer groups
        model = {"backbone": backbone, **({"head": model["head"]} if "head" in model else {})}
    if "backbone" not in model:
        raise ZooError(f"task {task} has no registered recipe to start from; name a backbone with --backbone")
    name = name or re.sub(r"[^A-Za-z0-9_\-]+", "-", path.stem).strip("-") or "my-recipe"
    _, cls = task_class(task)
    lines = [
        f"# A starter recipe for {path} (written by zoo recipe new); run it with: zoo finetune THIS_FILE",
        "# Every field, its type and default: docs/recipes.md (or zoo recipe fields). Paths here are absolute;",
        "# relative ones resolve against the working directory zoo finetune runs in.",
    ]
    _table(lines, None, {"name": name, "task": task}, field_comments(Recipe))
    model = {"backbone": model.pop("backbone"), "head": model.pop("head", "linear"), **model}
    _table(lines, "[model]", model, field_comments(ModelCfg))
    data_table = {**data_fields, "batch_size": (template.get("data") or {}).get("batch_size", 32)}
    _table(lines, "[data]", data_table, {**field_comments(DataConfig), **field_comments(cls.Data)})
    optimizer = template.get("optimizer") or {"lr": 1e-3}
    _table(lines, "[optimizer]", optimizer, field_comments(OptimizerCfg))
    comments = field_comments(StageCfg)
    for stage in template.get("stages") or DEFAULT_STAGES:
        _table(lines, "[[stages]]", stage, comments)
        comments = {}  # said once
    text = "\n".join(lines) + "\n"
    _check(text)
    return text


def _check(text: str) -> None:
    """The starter validated exactly as ``zoo finetune`` validates a recipe."""
    import tomllib

    from ..errors import RecipeError
    from .recipe import validate

    try:
        validate(tomllib.loads(text), source="the starter recipe")
    except RecipeError as exc:
        raise ZooError(f"the starter recipe does not validate ({exc}); pass other --backbone / --task values") from None
