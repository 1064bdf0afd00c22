"""Faults, for tests of what the client side does when the network or the server misbehaves:
drop the connection after N bytes of a request body (a push cut off mid-upload) or of a response
body (a pull cut off mid-download), serve a file's bytes damaged in transit (same length, one
bit flipped) or one byte at a time, or take the request and never answer it (a silent server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Fault:
    """One injected fault: for requests whose method is ``method`` (``"*"``: any) and whose path contains
    ``path``.

    ``kind``: ``"drop-request"`` (read ``after`` bytes of the request body, then close the connection
    without answering), ``"drop-response"`` (send the headers and ``after`` bytes of the body, then
    close), ``"corrupt"`` (send the whole body with one bit flipped), ``"trickle"`` (send the body one
    byte every ``after`` milliseconds: a server that never quite stops answering) or ``"silent"`` (take
    the connection and the request, send nothing, and hang up only when the fault ends: a stalled
    server). ``times``: how many matching requests it hits (None: all); ``hits`` counts them.
    """

    kind: str
    method: str
    path: str
    after: int = 0
    times: int | None = None
    hits: int = 0
    #: set when the fault ends (the requests a silent fault holds hang up then)
    ended: threading.Event = field(default_factory=threading.Event, repr=False)

    def matches(self, method: str, path: str) -> bool:
        return self.method in (method, "*") and self.path in path and (self.times is None or self.hits < self.times)


class FaultsMixin:
    """The faults a :class:`~.server.HubServer` has in force, and how the HTTP layer takes one."""

    faults: list[Fault]
    lock: threading.RLock

    @contextmanager
    def fault(self, kind: str, method: str, path: str, after: int = 0, times: int | None = None) -> Iterator[Fault]:
        """Inject a :class:`Fault` while the ``with`` block runs (see there for ``kind``)."""
        if kind not in ("drop-request", "drop-response", "corrupt", "trickle", "silent"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, method, path, after, times)
        with self.lock:
            self.faults.append(fault)
        try:
            yield fault
        finally:
            with self.lock:
                self.faults.remove(fault)
            fault.ended.set()

    def _take_fault(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None
