"""Everything ``zoo`` prints goes through here: results to stdout, notes to stderr, tables from
:func:`modelzoo.util.text.table`.

Results (tables, JSON, URLs, shas) go to stdout and notes to stderr, so ``zoo ... | tail -1`` and
``--json`` output stay clean; a closed pipe (``zoo list | head``) ends the command quietly.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..util.text import escape_lines, table


def out(text: str) -> None:
    """A result line (or lines) on stdout, control characters escaped (:func:`~modelzoo.util.text.escape_lines`)."""
    try:
        sys.stdout.write(escape_lines(text) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `zoo list | head`
        os._exit(0)


def note(text: str) -> None:
    """A note for the person at the terminal, on stderr (control characters escaped)."""
    print(escape_lines(text), file=sys.stderr, flush=True)


def out_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    out(table(headers, rows))


def out_json(data: Any) -> None:
    out(json.dumps(data, indent=2))
