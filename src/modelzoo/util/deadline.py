"""Deadlines for work that may never end (a plugin's hook, a Hub that trickles one byte a second).

Python cannot stop a thread, so the work runs in a daemon thread of its own and the caller waits at most
the deadline; past it the caller goes on (and says so) while the thread is left behind, to end with the
process. Socket timeouts alone bound each read, not the whole transfer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class DeadlinePassed(Exception):
    """The work did not finish within its deadline."""


def call_with_deadline(fn: Callable[[], Any], seconds: float, name: str, threads: set[int] | None = None) -> Any:
    """``fn()`` in a daemon thread named ``name``, waited for at most ``seconds``; its result, or what it
    raised, or :class:`DeadlinePassed`. ``threads`` (optional) holds the worker's thread id while it runs."""
    box: dict[str, Any] = {}

    def target() -> None:
        ident = threading.get_ident()
        if threads is not None:
            threads.add(ident)
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller, who decides
            box["error"] = exc
        finally:
            if threads is not None:
                threads.discard(ident)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise DeadlinePassed(f"{name} did not finish within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
