"""``zoo recipe``: start a recipe for your own data (``new``) and list every recipe field (``fields``)."""

from __future__ import annotations

import argparse

from ..errors import ZooError
from .output import note, out, out_table


def cmd_recipe_new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..engine.starter import starter_recipe
    from ..util.files import atomic_write_text

    text = starter_recipe(args.data, task=args.task, backbone=args.backbone, name=args.name)
    if args.out in (None, "-"):
        out(text.rstrip("\n"))
        return 0
    target = Path(args.out)
    if target.exists() and not args.force:
        raise ZooError(f"{target} exists; pick another --out or add --force to replace it")
    atomic_write_text(target, text)
    note(f"wrote {target}; run it with: zoo finetune {target}")
    return 0


def cmd_recipe_fields(args: argparse.Namespace) -> int:
    from ..engine.recipedoc import recipe_fields, recipes_markdown

    if args.markdown:
        out(recipes_markdown().rstrip("\n"))
        return 0
    for title, rows in recipe_fields().items():
        out(f"[{title}]")
        out_table(["FIELD", "TYPE", "DEFAULT", "MEANING"], [[r.name, r.type, r.default, r.meaning] for r in rows])
        out("")
    return 0


def add_commands(sub: argparse._SubParsersAction, command: str | None = None) -> None:
    p = sub.add_parser("recipe", help="write a starter recipe for your data; list every recipe field")
    rsub = p.add_subparsers(dest="recipe_command", metavar="SUBCOMMAND", required=True)
    q = rsub.add_parser(
        "new",
        help="a commented starter recipe for your own data (e.g. an ImageFolder), ready for zoo finetune",
        description="Write a commented TOML recipe for the data at --data; zoo finetune runs it as written."
        " Every field is documented in docs/recipes.md (zoo recipe fields).",
    )
    q.add_argument(
        "--data", required=True, metavar="PATH", help="your data: a folder (e.g. DIR/<class>/<image>) or file"
    )
    q.add_argument("--task", help="the task (default: the installed task that recognises the data)")
    q.add_argument("--backbone", help="the backbone (default: that of the task's first registered recipe)")
    q.add_argument("--name", help="the recipe's name (default: from the data's folder name)")
    q.add_argument("--out", metavar="FILE", help="where to write it (default: stdout)")
    q.add_argument("--force", action="store_true", help="replace --out if it exists")
    q.set_defaults(func=cmd_recipe_new)
    q = rsub.add_parser("fields", help="every recipe field: type, default, meaning (the installed tasks' [data] too)")
    q.add_argument("--markdown", action="store_true", help="as docs/recipes.md")
    q.set_defaults(func=cmd_recipe_fields)
