"""What a long run is doing, as it does it: progress bars on a terminal, plain lines elsewhere.

Every phase of a fine-tune that can take more than a moment (loading data, the feature pass, epochs,
evaluation) goes through :meth:`Progress.track`. On a TTY that is a tqdm bar; otherwise (CI logs,
``| tee``, notebooks) it is a plain line when a phase has run for a couple of seconds, then one line
about every 10% with counts, elapsed time and an ETA, and a last line with the total, so a silent
log never means a hung run. Everything goes to stderr (``--json`` output on stdout stays clean), and
``--quiet`` turns it all off.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

#: a phase shorter than this prints nothing in plain mode (no noise for the small steps)
QUIET_SECONDS = 2.0


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Reports phases of work to ``stream``: bars on a terminal, plain lines otherwise."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty

    def track(self, items: Iterable[T], desc: str, total: int | None = None, unit: str = "batches") -> Iterable[T]:
        """``items``, reported as ``desc`` (``total`` from ``len(items)`` when not given)."""
        if not self.enabled:
            return items
        if total is None:
            try:
                total = len(items)  # type: ignore[arg-type]
            except TypeError:
                total = None
        if self.tty:
            from tqdm import tqdm

            return tqdm(items, desc=desc, total=total, unit="", leave=False, file=self.stream, dynamic_ncols=True)
        return self._lines(items, desc, total, unit)

    def _lines(self, items: Iterable[T], desc: str, total: int | None, unit: str) -> Iterator[T]:
        start = time.perf_counter()
        shown = False
        next_mark = 0.1  # of the total; without a total, seconds / 100
        done = 0
        for item in items:
            yield item
            done += 1
            elapsed = time.perf_counter() - start
            if elapsed < QUIET_SECONDS:
                continue
            if total:
                fraction = done / total
                if fraction >= next_mark or not shown:
                    eta = elapsed / fraction - elapsed
                    self.line(f"{desc}: {done}/{total} {unit} ({fraction:.0%}), {_clock(elapsed)}, ETA {_clock(eta)}")
                    next_mark = (int(fraction * 10) + 1) / 10
                    shown = True
            elif not shown or elapsed >= next_mark * 100:  # no total: a line every 10 s
                self.line(f"{desc}: {done} {unit}, {_clock(elapsed)}")
                next_mark = elapsed / 100 + 0.1
                shown = True
        if shown:
            self.line(f"{desc}: done, {done} {unit} in {_clock(time.perf_counter() - start)}")

    def phase(self, desc: str) -> _Phase:
        """A step without a count of its own (``with progress.phase("loading data"): ...``): a line
        when it starts and one with its duration when it ends, in plain mode and on a terminal."""
        return _Phase(self, desc)

    def line(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)


class _Phase:
    def __init__(self, progress: Progress, desc: str) -> None:
        self.progress = progress
        self.desc = desc

    def __enter__(self) -> _Phase:
        self.start = time.perf_counter()
        self.progress.line(f"{self.desc} ...")
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            self.progress.line(f"{self.desc}: done in {time.perf_counter() - self.start:.1f}s")
