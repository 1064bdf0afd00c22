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
from ..util.addressspace import guard_torch_import
from ..util.text import escape
from . import catalog, engine, export, hub, recipe, select
from .output import note, out

#: the command groups, in ``zoo --help`` order; each module's ``add_commands(sub, command)`` adds its
#: sub-commands (and imports what they need only when one runs, so ``zoo list`` stays instant)
COMMAND_GROUPS = (catalog, engine, recipe, export, hub, select)


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


#: written when memory ran out: prepared now, since then even formatting a message may fail
OUT_OF_MEMORY = (
    "error: out of memory; lower data.batch_size or data.image_size (or --nproc), or free memory, and rerun"
    " (a run folder resumes with zoo finetune --resume)\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    process = argv is None  # the zoo command itself, not a call from Python
    if process:
        _printable_anywhere()
        guard_torch_import()  # under `ulimit -v`, torch may not even load: one line, not the loader's abort
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), process)
    except MemoryError:
        os.write(2, OUT_OF_MEMORY.encode())
        return 1
    except Exception as exc:  # a bug, ours or a plugin's: one line saying whose, the traceback on request
        from .bugreport import describe_bug, traceback_wanted

        if traceback_wanted():
            raise
        note(f"error: {escape(describe_bug(exc))}")
        return 1
    finally:
        if process:
            _stdout_is_done()


def _printable_anywhere() -> None:
    """Whatever the terminal's encoding (``PYTHONIOENCODING=ascii``, ``LC_ALL=C``), a label it cannot
    show prints as ``\\u...`` escapes instead of ending the command with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def _stdout_is_done() -> None:
    """The command's output is complete: whatever prints after it (a plugin's ``atexit`` handler, a
    library's shutdown message) goes to stderr, so ``zoo ... --json | jq`` never reads a stray line."""
    try:
        sys.stdout.flush()
        os.dup2(2, 1)
    except (OSError, ValueError):
        return
    sys.stdout = sys.stderr


def _main(argv: list[str], process: bool) -> int:
    try:
        parser = build_parser(_command(argv))
    except ZooError as exc:
        note(f"error: {escape(str(exc))}")
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
        note(f"error: {escape(str(exc))}")
        if process and (exc.exit_code == 130 or getattr(exc, "abandoned_work", False)):
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
