"""CLI commands to choose a backbone: ``zoo compare`` (measured figures) and ``zoo select`` (ranked on
the user's data); registered into ``zoo``. Nothing is imported until a command runs.

Tables and the pick go to stdout (``--json``: one JSON document), progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from ..errors import ZooError
from .output import note, out

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1.5h`` -> seconds; anything else is a one-line error."""
    match = _DURATION.match(text or "")
    if not match or float(match.group(1)) <= 0:
        raise ZooError(f"--budget {text!r}: give a positive duration such as 90s, 5m or 1h")
    unit = (match.group(2) or "s").lower()
    return float(match.group(1)) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]


def cmd_compare(args: argparse.Namespace) -> int:
    from ..select.compare import compare, format_table

    rows = compare(args.names, args.image_size, args.seconds, args.batch_size, log=None if args.json else note)
    if args.json:
        out(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        out(format_table(rows))
        note(
            f"measured on this machine: MACs = FLOPs/2 of one {args.image_size}px forward; examples/s over"
            f" ~{args.seconds:g}s each at batch {args.batch_size} (random weights: they do not change speed)"
        )
        if rows and rows[0].busy:  # the machine was busier than its cores: the speeds are low
            note(rows[0].busy)
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from ..select.candidates import base_recipe
    from ..select.pipeline import select
    from ..select.report import format_selection, format_validation, selection_record, write_outputs

    budget = parse_duration(args.budget) if args.budget else None
    if args.seeds is not None and not args.validate:
        raise ZooError("--seeds N sets the fine-tunes per candidate of --validate K; add --validate K, or drop --seeds")
    seeds = 2 if args.seeds is None else args.seeds
    if seeds < 2:  # before the selection: it may take minutes
        raise ZooError("--seeds N needs N >= 2: seed-to-seed noise is what the ranking is judged against")
    first = next((c for c in args.candidates if not re.search(r"[*?\[]", c)), None)
    if first is None and args.recipe is None:
        from ..catalog.lookup import catalog

        matched = catalog().filter(include=args.candidates[0], kind="backbone")
        first = matched[0].qualified_name if matched else None
    base = base_recipe(args.recipe, args.data, args.task, args.head, args.set or [], backbone=first)
    log = None if args.quiet else note
    sel = select(
        base,
        args.candidates,
        budget_seconds=budget,
        samples=args.samples,
        draws=args.draws,
        prior_key=args.prior,
        reference=not args.no_reference,
        log=log,
    )
    out_dir = Path(args.out) if args.out else Path("runs") / f"select-{sel.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    paths = write_outputs(sel, out_dir)
    record = selection_record(sel, paths["recipe"])
    validation = None
    if args.validate:
        from ..select.validate import validate_selection

        validation = validate_selection(sel, args.validate, out_dir, seeds=seeds, log=log)
        record["validation"] = validation
        from ..util.files import atomic_write_text

        atomic_write_text(out_dir / "selection.json", json.dumps(record, indent=2, default=float) + "\n")
    if args.json:
        out(json.dumps(record, indent=2, default=float))
        return 0
    out(format_selection(record))
    if validation is not None:
        out(format_validation(validation, record))
    out(f"wrote {', '.join(str(p) for p in paths.values())}")
    out(f"next: zoo finetune {paths['recipe']}")
    return 0


def add_commands(sub: argparse._SubParsersAction, command: str | None = None) -> None:
    """Add ``compare`` and ``select`` to the ``zoo`` parser."""
    p = sub.add_parser("compare", help="backbones side by side: params, GMACs, measured speed, pretrained facts")
    p.add_argument(
        "names", nargs="+", metavar="BACKBONE", help="arch, arch.tag or plugin:arch (zoo list --kind backbone)"
    )
    p.add_argument("--image-size", type=int, default=224, help="input size for MACs and speed (default 224)")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds to measure each speed (0: skip speed)")
    p.add_argument("--batch-size", type=int, default=16, help="batch size for the speed measurements")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "select",
        help="rank pretrained backbones on your data by the task's transfer scores, and write a recipe for the best",
    )
    src = p.add_argument_group("data (one of)")
    src.add_argument("--data", metavar="DATASET", help="a registered dataset (zoo list --kind dataset)")
    src.add_argument("--recipe", help="a recipe whose data, schedule and seed to use (its backbone is replaced)")
    p.add_argument(
        "--candidates",
        nargs="+",
        required=True,
        metavar="BACKBONE",
        help="backbones to rank: arch, arch.tag, plugin:arch or wildcard patterns ('arch*')",
    )
    p.add_argument("--task", help="the task, when --data does not say it (zoo list --kind task)")
    p.add_argument("--head", help="head for the written recipe (default: the first that fits)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe field (repeatable)")
    p.add_argument("--budget", help="wall-time budget for the selection, e.g. 90s, 5m, 1h (default: none)")
    p.add_argument(
        "--samples", type=int, default=1000, help="training examples per subsample (at most half of them; default 1000)"
    )
    p.add_argument(
        "--draws",
        type=int,
        default=10,
        help="subsamples to score on: scores are their mean, P(rank 1) the share a candidate wins (default 10)",
    )
    p.add_argument(
        "--prior", default="imagenet_top1", help="published metric to rank by beside (default imagenet_top1)"
    )
    p.add_argument("--no-reference", action="store_true", help="skip the random-init reference of the top candidate")
    p.add_argument(
        "--validate", type=int, metavar="K", help="also fine-tune the top K (and the reference) with --seeds seeds each"
    )
    p.add_argument("--seeds", type=int, metavar="N", help="seeds per --validate fine-tune (default 2; at least 2)")
    p.add_argument("--out", help="output folder (default runs/select-<dataset>-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print selection.json instead of tables")
    p.set_defaults(func=cmd_select)
