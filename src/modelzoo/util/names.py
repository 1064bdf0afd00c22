"""The one rule for names that become paths: revisions, repo ids, file names in a repo, run names.

A name that comes from a server, a file or a user and is then joined onto a folder must stay inside it:
no absolute path, no ``..`` or ``.`` part, no backslash or drive, no control character, no empty part,
bounded length. Every such name goes through :func:`check_path_name` before it touches the disk.
"""

from __future__ import annotations

import re

#: one part of a name: what git refs, Hub repo names and portable file names have in common
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+\-=@,]*$")
#: longest part and whole name accepted (file systems allow 255 bytes a part)
MAX_PART = 200
MAX_NAME = 1000


def path_name_problem(name: object, parts: int | None = None) -> str | None:
    """Why ``name`` cannot safely name a path below a folder, or None when it can.

    ``parts``: how many ``/``-separated parts it must have (a repo id has 2), None for any number."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name) > MAX_NAME:
        return f"it is {len(name)} characters long (at most {MAX_NAME})"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    if "\\" in name or ":" in name:
        return "it contains a backslash or a colon"
    if name.startswith("/"):
        return "it is an absolute path"
    split = name.split("/")
    if parts is not None and len(split) != parts:
        return f"it must have {parts} part(s) separated by '/'"
    for part in split:
        if part in ("", ".", ".."):
            return "it has an empty, '.' or '..' part"
        if len(part) > MAX_PART:
            return f"a part is {len(part)} characters long (at most {MAX_PART})"
        if not _PART.match(part) or part.endswith(".lock"):
            return f"the part {part[:40]!r} has characters a name may not use"
    return None


def check_path_name(name: object, what: str, parts: int | None = None) -> str:
    """``name`` when it is safe to join below a folder; otherwise a one-line :class:`ZooError` naming
    ``what`` it was (``revision``, ``repo id``, ``file name``...)."""
    from ..errors import ZooError

    problem = path_name_problem(name, parts)
    if problem:
        shown = repr(name)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ZooError(f"{what} {shown} is refused: {problem}")
    return name  # type: ignore[return-value]
