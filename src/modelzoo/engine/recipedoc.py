"""Every recipe field with its type, default and meaning, read from the schema itself.

The schema is the recipe's dataclasses (:mod:`.recipe`) and each installed task's ``Data`` class; a
field's meaning is its ``#:`` comment in the source. ``zoo recipe fields`` prints the table and
``zoo recipe fields --markdown`` writes ``docs/recipes.md``, which a test compares with this output, so
the reference cannot drift from the code.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any

from ..model.task import DataConfig
from ..util.typecheck import field_types, type_text

_FIELD = re.compile(r"^\s+(\w+)\s*:")


@dataclass
class FieldDoc:
    """One recipe field: its dotted name (``stages[].lr``), type, default as TOML writes it, and meaning."""

    name: str
    type: str
    default: str
    meaning: str


def field_comments(cls: type) -> dict[str, str]:
    """``{field: meaning}`` from the ``#:`` comments above each field of ``cls`` and its bases."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not is_dataclass(klass):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("#:"):
                pending.append(stripped[2:].strip())
                continue
            match = _FIELD.match(line)
            if match and pending:
                found[match.group(1)] = " ".join(pending)
            pending = []
    return found


def toml_value(value: Any) -> str:
    """A default as a recipe writes it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{}" if not value else "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def _default(f) -> str:
    if f.default is not MISSING:
        return toml_value(f.default)
    if f.default_factory is not MISSING:
        made = f.default_factory()
        return "(table)" if is_dataclass(made) else toml_value(made)
    return "required"


def _nested(hint: Any) -> tuple[type | None, str]:
    """The dataclass a field holds (a table) or holds a list of (an array of tables), if any."""
    if is_dataclass(hint):
        return hint, "."
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint) or (None,)
        if is_dataclass(item):
            return item, "[]."
    return None, ""


def section_fields(cls: type, prefix: str = "", skip: tuple[str, ...] = ()) -> list[FieldDoc]:
    """The fields of dataclass ``cls`` (those of nested tables after their parent), dotted under ``prefix``."""
    hints = field_types(cls)
    comments = field_comments(cls)
    rows: list[FieldDoc] = []
    nested: list[tuple[type, str]] = []
    for f in fields(cls):
        if f.name in skip or not f.compare:
            continue
        inner, sep = _nested(hints[f.name])
        if inner is not None and inner is not DataConfig and not issubclass(inner, DataConfig):
            nested.append((inner, f"{prefix}{f.name}{sep}"))
            kind = "table" if sep == "." else "array of tables"
        elif inner is not None:
            kind = "table"
        else:
            kind = type_text(hints[f.name], none="unset")
        rows.append(FieldDoc(f"{prefix}{f.name}", kind, _default(f), comments.get(f.name, "")))
    for inner, sub in nested:
        rows += section_fields(inner, sub)
    return rows


def task_data_classes() -> list[tuple[str, str, type]]:
    """``(task, plugin, Data class)`` of every installed task whose class imports."""
    from ..catalog.lookup import catalog
    from ..errors import ZooError
    from ..model.task import task_class

    found = []
    for spec in sorted(catalog().filter(kind="task"), key=lambda s: s.name):
        try:
            _, cls = task_class(spec.name)
        except ZooError:
            continue
        found.append((spec.name, spec.plugin or "?", cls.Data))
    return found


def recipe_fields(tasks: list[tuple[str, str, type]] | None = None) -> dict[str, list[FieldDoc]]:
    """``{section title: fields}``: the core's sections, the ``[data]`` fields every task has, then each task's own."""
    from .recipe import Recipe

    sections = {"recipe": section_fields(Recipe)}
    sections["data (every task)"] = section_fields(DataConfig, "data.")
    base = {f.name for f in fields(DataConfig)}
    for task, plugin, data_cls in task_data_classes() if tasks is None else tasks:
        own = [row for row in section_fields(data_cls, "data.") if row.name[len("data.") :] not in base]
        sections[f"data ({task}, plugin {plugin})"] = own
    return sections


def _cell(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|").replace("\n", " ")


def recipes_markdown(tasks: list[tuple[str, str, type]] | None = None) -> str:
    """``docs/recipes.md``: every recipe field as a Markdown table per section."""
    out = [
        "# Recipe fields",
        "",
        "<!-- generated by `zoo recipe fields --markdown > docs/recipes.md`; tests/engine/test_recipe_docs.py",
        "     fails when it differs from the code: edit the `#:` comments in the source, then regenerate -->",
        "",
        "A recipe is a TOML file (`zoo finetune RECIPE`); `zoo recipe new --data DIR` writes a starter one for",
        "your own data. Any field can be overridden on the command line: `--set stages.1.epochs=5`,",
        "`--set data.batch_size=64`. Relative paths in `[data]` resolve against the working directory.",
        "`stages[].x` is field `x` of each `[[stages]]` table. `unset` means the field has no value",
        "unless you give one; `required` fields must be given.",
    ]
    for title, rows in recipe_fields(tasks).items():
        out += ["", f"## {title}", ""]
        if not rows:
            out.append("No fields of its own.")
            continue
        out += ["| field | type | default | meaning |", "|---|---|---|---|"]
        out += [
            f"| `{r.name}` | {_cell(r.type)} | `{_cell(r.default)}` | {_cell(r.meaning)} |"
            if r.default not in ("required", "(table)")
            else f"| `{r.name}` | {_cell(r.type)} | {r.default} | {_cell(r.meaning)} |"
            for r in rows
        ]
    return "\n".join(out) + "\n"
