"""CLI command to turn a run into a deployable file: ``zoo export RUN --format FORMAT [--out DIR]``.

The written paths go to stdout (model file, then sidecar), the parity line to stderr; ``--json``
prints one JSON object instead. Nothing is imported until the command runs.
"""

from __future__ import annotations

import argparse

from .output import note, out, out_json

FORMAT_NAMES = ("onnx", "torchscript", "exported-program")


def cmd_export(args: argparse.Namespace) -> int:
    from ..export.exporter import export

    result = export(args.run, args.format, out=args.out)
    if args.json:
        out_json(
            {
                "path": str(result.path),
                "sidecar": str(result.sidecar),
                "format": result.format,
                "exporter": result.exporter,
                "max_abs_diff": result.max_abs_diff,
                "top1_agreement": result.top1_agreement,
                "examples": result.examples,
            }
        )
        return 0
    note(result.line())
    out(str(result.path))
    out(str(result.sidecar))
    return 0


def add_commands(sub: argparse._SubParsersAction, command: str | None = None) -> None:
    """Add ``export`` to the ``zoo`` parser."""
    p = sub.add_parser("export", help="export a run's model as ONNX, TorchScript or an ExportedProgram")
    p.add_argument("run", help="a finished run folder (zoo finetune output)")
    p.add_argument("--format", required=True, metavar="FORMAT", help=f"one of: {', '.join(FORMAT_NAMES)}")
    p.add_argument("--out", help="folder to write the model file and its sidecar JSON into (default RUN/export)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_export)
