"""The ``zoo`` command line: the parser built from :data:`COMMAND_GROUPS`, and one line per error.

argparse keeps start-up cheap (``zoo list`` must be instant); each command imports what it needs
when it runs. Every :class:`ZooError` becomes one ``error: ...`` line and exit status 2; any other
exception one line saying whose bug it is (:mod:`.bugreport`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import ZooError
from . import catalog, engine, hub, select
from .output import out

#: the command groups, in ``zoo --help`` order; each module's ``add_commands(sub, command)`` adds its
#: sub-commands (and imports what they need only when one runs, so ``zoo list`` stays instant)
COMMAND_GROUPS = (catalog, engine, hub, select)


# -- parser -----------------------------------------------------------------------------------
def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``zoo`` parser; ``command`` (the one being run) lets ``predict`` add its tasks' options."""
    parser = argparse.ArgumentParser(prog="zoo", description="modelzoo: plugin model zoo and fine-tune engine")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for group in COMMAND_GROUPS:
        group.add_commands(sub, command)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    process = argv is None  # the zoo command itself, not a call from Python
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), process)
    except Exception as exc:  # a bug, ours or a plugin's: one line saying whose, the traceback on request
        from .bugreport import describe_bug, traceback_wanted

        if traceback_wanted():
            raise
        print(f"error: {describe_bug(exc)}", file=sys.stderr)
        return 1


def _main(argv: list[str], process: bool) -> int:
    try:
        parser = build_parser(_command(argv))
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    args.argv = argv
    if args.version:
        from .. import __version__

        out(f"modelzoo {__version__}")
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if process and exc.exit_code == 130:
            _exit_now(exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _exit_now(code: int) -> None:
    """End an interrupted ``zoo`` at once, its one line the last it prints: a normal exit would first
    shut down data-loader workers whose queue threads may report broken pipes after that line. The
    run folder is already consistent (the checkpoint writer was waited for; the kernel drops the lock)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
