"""``zoo predict RUN DIR/``: a model on every input file under a folder, batched through a DataLoader
with workers, one row per file streamed to CSV or JSON Lines as it is made.

What it promises: files are found recursively (the task's ``predict_extensions``, sorted, symlinked
folders not followed into loops); a file that cannot be read is skipped and counted, never the end of
the run; each row reaches the output whole (one ``write`` per batch of whole lines, so an interrupted
or killed run leaves every row written so far and never half a row); memory does not grow with the
folder (file names are the only per-file state). The task decides how a file is read, batched, run and
written (:mod:`modelzoo.model.task_use`); this module knows no task.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..util.images import IMAGE_EXTENSIONS
from ..util.text import first_line
from .training import quiet_worker_exit

FORMATS = (".csv", ".jsonl")
#: seconds between progress lines
REPORT_EVERY = 5.0
#: the unreadable files whose names and reasons are kept (the rest are counted)
SHOW_SKIPPED = 10


class PredictInterrupted(ZooError):
    """Ctrl-C or SIGTERM during ``zoo predict DIR``: the rows so far are whole; the message says how many."""

    exit_code = 130


@dataclass
class FolderResult:
    """What a folder prediction did."""

    files: int
    rows: int
    #: the unreadable files: how many, and the first few ``(file, why)`` (a folder of broken files costs no memory)
    skipped: int = 0
    skipped_first: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: what the files are, for rates: "images" or "files"
    unit: str = "files"


def find_inputs(root: Path, extensions: tuple[str, ...]) -> list[str]:
    """Every file under ``root`` whose suffix is one of ``extensions``, as paths relative to ``root``,
    in a stable (sorted) order. Hidden files and folders are left out; symlinked folders are not entered."""
    found: list[str] = []
    suffixes = tuple(e.lower() for e in extensions)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(folder, root)
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(suffixes):
                found.append(name if rel == "." else os.path.join(rel, name))
    return found


class _Files:
    """The folder's files as a map-style dataset: ``(index, input or None, why it was skipped)``."""

    def __init__(self, root: Path, names: list[str], task: Any, model: Any, options: dict[str, Any]) -> None:
        self.root, self.names, self.task, self.model, self.options = root, names, task, model, options

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[int, Any, str | None]:
        path = str(self.root / self.names[index])
        try:
            return index, self.task.predict_input(self.model, path, **self.options), None
        except (ZooError, OSError, ValueError, UnicodeError, RuntimeError) as exc:
            return index, None, _reason(exc)


class _Collate:
    def __init__(self, task: Any) -> None:
        self.task = task

    def __call__(self, items: list[tuple[int, Any, str | None]]):
        good = [(i, x) for i, x, why in items if why is None]
        bad = [(i, why) for i, _, why in items if why is not None]
        batch = self.task.predict_collate([x for _, x in good]) if good else None
        return [i for i, _ in good], batch, bad


def _reason(exc: BaseException) -> str:
    text = first_line(exc, 10_000)
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


class RowWriter:
    """Rows to ``out`` (.csv or .jsonl) as they come, each batch of whole lines in one ``write``; a
    failed write is cut back to the last whole row, so the file never ends in half a row."""

    def __init__(self, fd: int, csv_rows: bool, name: str) -> None:
        self.fd, self.csv, self.out = fd, csv_rows, name
        self.header: list[str] | None = None
        self.size = self.rows = 0

    @classmethod
    def open(cls, out: Path) -> RowWriter:
        """A new ``.csv`` or ``.jsonl`` file (an existing non-empty file is never overwritten)."""
        if out.suffix.lower() not in FORMATS:
            raise ZooError(f"--out {out}: give a .csv or .jsonl file name")
        if out.is_dir():
            raise ZooError(f"--out {out} is a folder; give a .csv or .jsonl file name")
        if out.exists() and out.stat().st_size > 0:
            raise ZooError(f"--out {out} already exists; remove it or give another file name (it is never overwritten)")
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise ZooError(f"cannot write --out {out} ({exc.strerror or exc}); give a writable file path") from None
        return cls(fd, out.suffix.lower() == ".csv", str(out))

    def lines(self, rows: list[dict[str, Any]]) -> str:
        if not self.csv:
            return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if self.header is None:
            self.header = list(rows[0])
            writer.writerow(self.header)
        for row in rows:
            writer.writerow(["" if row.get(k) is None else _cell(row.get(k)) for k in self.header])
        return buf.getvalue()

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        data = self.lines(rows).encode("utf-8")
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except BrokenPipeError:  # `zoo predict RUN DIR | head`
            os._exit(0)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a pipe cannot be cut back; a file can
                os.ftruncate(self.fd, self.size)  # back to the last whole row
            raise ZooError(
                f"cannot write {self.out} ({exc.strerror or exc}); it holds the {self.rows:,} rows written before"
            ) from None
        self.size += len(data)
        self.rows += len(rows)

    def close(self) -> None:
        if self.fd > 2:
            os.close(self.fd)


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict, tuple)) else value


class _Rate:
    """A progress line every few seconds: files done, files per second, ETA (stderr)."""

    def __init__(self, total: int, unit: str, enabled: bool) -> None:
        self.total, self.unit, self.enabled = total, unit, enabled
        self.start = self.last = time.perf_counter()

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < REPORT_EVERY and not force):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0
        print(
            f"predicting: {done:,}/{self.total:,} {self.unit} ({done / max(1, self.total):.0%}),"
            f" {rate:,.1f} {self.unit}/s, ETA {eta:.0f}s",
            file=sys.stderr,
            flush=True,
        )


def predict_folder(
    model: Any,
    task: Any,
    root: Path,
    emit: Any,
    options: dict[str, Any],
    batch_size: int = 32,
    workers: int = 2,
    progress: bool = True,
    files: Path | None = None,
) -> FolderResult:
    """Predict every input under ``root``; ``emit(rows)`` gets each batch's rows in file order (a
    :class:`RowWriter`'s ``write``, or printing). ``files``: where a task may write per-file outputs."""
    import torch
    from torch.utils.data import DataLoader

    if not root.is_dir():
        raise ZooError(f"{root} is not a folder")
    names = find_inputs(root, task.predict_extensions)
    if not names:
        shown = ", ".join(task.predict_extensions[:6])
        raise ZooError(f"{root} holds no input files for {task.name} models (looked for {shown}, in subfolders too)")
    images = all(e.lower() in IMAGE_EXTENSIONS for e in task.predict_extensions)
    from .speed import inference_layout

    inference_layout(model, task.device, measure_now=len(names) >= 256)  # channels_last where measured faster
    rate = _Rate(len(names), "images" if images else "files", progress)
    loader = DataLoader(
        _Files(root, names, task, model, options),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_Collate(task),
        worker_init_fn=quiet_worker_exit,  # Ctrl-C: the one line, no worker's broken-pipe traceback
    )
    files = files or Path("predictions_files")
    result = FolderResult(files=len(names), rows=0, unit=rate.unit)
    model.eval()
    done = 0
    try:
        with torch.inference_mode():
            for indices, batch, bad in loader:
                result.skipped += len(bad)
                room = max(0, SHOW_SKIPPED - len(result.skipped_first))
                result.skipped_first += [(names[i], why) for i, why in bad][:room]
                rows = []
                if indices:
                    outputs = task.predict_batch(model, batch, **options)
                    for i, output in zip(indices, outputs):
                        here = files / Path(names[i]).parent  # the outputs mirror the inputs' folders
                        row = task.prediction_row(model, str(root / names[i]), output, here, **options)
                        rows.append({"file": names[i], **row})
                emit(rows)
                result.rows += len(rows)
                done += len(indices) + len(bad)
                rate.update(done)
    except KeyboardInterrupt as exc:
        traceback.clear_frames(exc.__traceback__)  # the loader's iterator goes, and its workers with it
        raise PredictInterrupted(
            f"interrupted after {done:,} of {len(names):,} files; the {result.rows:,} rows written so far are whole"
        ) from None
    result.seconds = time.perf_counter() - rate.start
    rate.update(done, force=result.seconds >= REPORT_EVERY)
    return result
