"""Faults, for tests of what the client side does when the network or the server misbehaves:
drop the connection after N bytes of a request body (a push cut off mid-upload) or of a response
body (a pull cut off mid-download), or serve a file's bytes damaged in transit (same length, one
bit flipped)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Fault:
    """One injected fault: for requests whose method is ``method`` and whose path contains ``path``.

        ``kind``: ``"drop-request"`` (read ``after`` bytes of the request body, then close the connection
        without answering), ``"drop-response"`` (send the headers and ``after`` bytes of the body, then
        close), ``"corrupt"`` (send the whole body with one bit flipped) or ``"trickle"`` (send the body one
    byte every ``after`` milliseconds: a server that never quite stops answering). ``times``: how many matching
        requests it hits (None: all); ``hits`` counts them.
    """

    kind: str
    method: str
    path: str
    after: int = 0
    times: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and self.path in path and (self.times is None or self.hits < self.times)


class FaultsMixin:
    """The faults a :class:`~.server.HubServer` has in force, and how the HTTP layer takes one."""

    faults: list[Fault]
    lock: threading.RLock

    @contextmanager
    def fault(self, kind: str, method: str, path: str, after: int = 0, times: int | None = None) -> Iterator[Fault]:
        """Inject a :class:`Fault` while the ``with`` block runs (see there for ``kind``)."""
        if kind not in ("drop-request", "drop-response", "corrupt", "trickle"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, method, path, after, times)
        with self.lock:
            self.faults.append(fault)
        try:
            yield fault
        finally:
            with self.lock:
                self.faults.remove(fault)

    def _take_fault(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None
