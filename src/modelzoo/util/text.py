"""Text for people: the one aligned-table formatter every listing and report uses, terminal escaping,
and the first line of an error for one-line messages."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``headers`` and ``rows`` as left-aligned columns two spaces apart, trailing spaces stripped."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


#: C0 and C1 control characters and DEL: what a terminal acts on (colours, cursor moves, title changes)
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0, 32), 127, *range(128, 160)]}
_KEEP_LINES = {k: v for k, v in _CONTROL.items() if k not in (ord("\n"), ord("\t"))}


def escape(value: str) -> str:
    """One value (a label, a file name, a repo's text) as a single printable line: every control
    character, newlines included, written as ``\\xNN`` so it can neither split a result line nor
    drive the terminal."""
    return value.translate(_CONTROL)


def escape_lines(text: str) -> str:
    """Text of several lines made safe for a terminal: control characters other than newline and tab
    are written as ``\\xNN`` (an ANSI escape in a label prints as text, not as a colour)."""
    return text.translate(_KEEP_LINES)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most ``limit`` characters ("" when it has none):
    what a one-line error quotes of a library's multi-line one."""
    return (str(exc).strip().splitlines() or [""])[0][:limit]
