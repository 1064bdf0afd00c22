"""Text-classification data: CSV / JSONL files, a folder of ``<class>/*.txt``, or a registered dataset.

Data are validated before any training, each problem stopping the run with one line naming the file,
the line and the fix: a missing file or column, an empty text or label, a validation label that never
occurs in training, a class with no training examples. ``.gz`` and ``.bz2`` files are read as they are.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from modelzoo.sdk import Spec, ZooError

if TYPE_CHECKING:
    from .task import TextData

#: a dataset name -> its spec and builder, checked to be for text classification
Registered = Callable[[str], tuple[Spec, Callable[..., Any]]]

FORMATS = ("csv", "jsonl", "dir")
TEXT_SUFFIXES = (".txt", ".text", ".md")


@dataclass
class TextSplit:
    """Texts and their labels (class names), with where each came from for error messages."""

    texts: list[str]
    labels: list[str]
    where: list[str] = field(default_factory=list)  # "file line N" per example, for error messages

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int]) -> TextSplit:
        return TextSplit(
            [self.texts[i] for i in indices],
            [self.labels[i] for i in indices],
            [self.where[i] for i in indices] if self.where else [],
        )


@dataclass
class TextCorpus:
    """What ``load_text_data`` returns: the class list and the validated train/val splits."""

    name: str
    labels: list[str]
    train: TextSplit
    val: TextSplit
    info: dict[str, Any] = field(default_factory=dict)


def infer_format(path: str) -> str:
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes if s.lower() not in (".gz", ".bz2")]
    if p.is_dir():
        return "dir"
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffixes and suffixes[-1] in (".csv", ".tsv"):
        return "csv"
    raise ZooError(f"cannot tell the format of {path}; set data.format to one of {', '.join(FORMATS)}")


def _names(names: Any) -> str:
    """Column or field names for a one-line message: as written when plain, else quoted."""
    shown = [n if isinstance(n, str) and n.isprintable() and n.strip() == n and n else repr(n) for n in names]
    return ", ".join(shown)[:200] or "none"


#: a compressed file may expand to this many times its size, or to this many bytes, whichever is more;
#: real text rarely compresses beyond 10-20x, a decompression bomb does 1000x (the file is read whole)
EXPANSION_RATIO = 100
EXPANSION_FLOOR = 256 << 20


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.0f} MiB"


def _expand(packed: bytes, kind: str, path: Path) -> bytes:
    """The decompressed bytes, read 1 MiB at a time so that a bomb stops at the limit (one big read
    would allocate the whole limit up front)."""
    limit = max(EXPANSION_FLOOR, EXPANSION_RATIO * len(packed))
    chunks, total = [], 0
    source = io.BytesIO(packed)
    with gzip.GzipFile(fileobj=source) if kind == "gzip" else bz2.BZ2File(source) as stream:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise ZooError(
                    f"{path} expands to over {limit >> 20} MiB from {_size(len(packed))}"
                    f" (more than {EXPANSION_RATIO}x): a decompression bomb, or not text; give the plain file"
                )
            chunks.append(chunk)
    return b"".join(chunks)


def _open_text(path: Path):
    """Text handle for plain, ``.gz`` or ``.bz2`` files (UTF-8, BOM tolerated)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ZooError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    kind = {".gz": "gzip", ".bz2": "bzip2"}.get(path.suffix.lower())
    try:
        if kind is not None:
            raw = _expand(raw, kind, path)
    except (OSError, EOFError, ValueError, zlib.error) as exc:  # not an archive, cut short, or corrupt
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ZooError(
            f"{path} is not a readable {kind} file ({detail}); compress it again or give the plain file"
        ) from None
    try:
        return io.StringIO(raw.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as exc:
        raise ZooError(f"{path} is not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from None


def _check_row(text: Any, label: Any, where: str, text_col: str, label_col: str) -> tuple[str, str]:
    if text is None:
        raise ZooError(f"{where}: no {text_col!r} value; every row needs a text")
    if label is None or (isinstance(label, str) and not label.strip()):
        raise ZooError(f"{where}: empty {label_col!r}; every row needs a label")
    if not isinstance(text, str):
        raise ZooError(f"{where}: {text_col!r} is {type(text).__name__}, not text")
    if not text.strip():
        raise ZooError(f"{where}: empty text in column {text_col!r}; remove the row or fill it in")
    finite = not isinstance(label, float) or math.isfinite(label)
    if isinstance(label, bool) or not isinstance(label, (str, int, float)) or not finite:
        raise ZooError(f"{where}: {label_col!r} is {label!r:.40}, not a class name; give one label per row")
    return text.strip(), str(label).strip()


def read_csv(path: Path, text_col: str, label_col: str, delimiter: str | None = None) -> TextSplit:
    """A CSV/TSV file with a header row; the delimiter is sniffed unless given."""
    handle = _open_text(path)
    if delimiter is None:
        delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    if not (isinstance(delimiter, str) and len(delimiter) == 1 and delimiter not in '"\r\n'):
        raise ZooError(f"data.options.delimiter: {delimiter!r:.20} is not one character such as ',' ';' or '\\t'")
    reader = csv.DictReader(handle, delimiter=delimiter)
    out = TextSplit([], [], [])
    try:
        columns = reader.fieldnames or []
        for col, key in ((text_col, "text_column"), (label_col, "label_column")):
            if col not in columns:
                raise ZooError(f"{path}: no column {col!r} (columns: {_names(columns)}); set data.{key}")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            text, label = _check_row(row.get(text_col), row.get(label_col), where, text_col, label_col)
            out.texts.append(text)
            out.labels.append(label)
            out.where.append(where)
    except csv.Error as exc:  # a field past the csv module's size limit, a stray quote in strict files...
        raise ZooError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None
    return out


def read_jsonl(path: Path, text_col: str, label_col: str) -> TextSplit:
    """One JSON object per line; blank lines are skipped."""
    out = TextSplit([], [], [])
    for number, line in enumerate(_open_text(path), 1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:  # also a number too long for int(), or nesting too deep
            detail = getattr(exc, "msg", None) or str(exc).split(";")[0] or type(exc).__name__
            raise ZooError(f"{where}: not valid JSON ({detail})") from None
        if not isinstance(row, dict):
            raise ZooError(f"{where}: expected a JSON object with {text_col!r} and {label_col!r}")
        for col, key in ((text_col, "text_column"), (label_col, "label_column")):
            if col not in row:
                raise ZooError(f"{where}: no field {col!r} (fields: {_names(row)}); set data.{key}")
        text, label = _check_row(row[text_col], row[label_col], where, text_col, label_col)
        out.texts.append(text)
        out.labels.append(label)
        out.where.append(where)
    return out


def read_dir(root: Path) -> TextSplit:
    """``root/<class>/*.txt``: one example per file, the directory names the class."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ZooError(f"{root}: no class sub-directories; a text folder is {root}/<class>/<file>.txt")
    out = TextSplit([], [], [])
    for name in classes:
        files = sorted(p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise ZooError(f"class {name!r} in {root} has no .txt files; add some or remove the directory")
        for f in files:
            try:
                text = f.read_text(encoding="utf-8-sig").strip()
            except UnicodeDecodeError:
                raise ZooError(f"{f} is not UTF-8 text; re-save it as UTF-8") from None
            if not text:
                raise ZooError(f"{f}: empty text file; remove it or fill it in")
            out.texts.append(text)
            out.labels.append(name)
            out.where.append(str(f))
    return out


def read_split(path: str, fmt: str | None, cfg: TextData, what: str) -> TextSplit:
    """One split from a file or folder; ``what`` names where the path came from (``data.train_file``,
    ``--data``), for errors."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ZooError(f"{what}: no such {'directory' if fmt == 'dir' else 'file'} {path!r}")
    fmt = fmt or infer_format(path)
    if fmt == "dir":
        if not p.is_dir():
            raise ZooError(f"{what}: {path!r} is not a directory (data.format = 'dir')")
        return read_dir(p)
    if p.is_dir():
        raise ZooError(f"{what}: {path!r} is a directory; set data.format = 'dir' or name a {fmt} file")
    if fmt == "csv":
        return read_csv(p, cfg.text_column, cfg.label_column, cfg.options.get("delimiter"))
    return read_jsonl(p, cfg.text_column, cfg.label_column)


def _random_subset(split: TextSplit, limit: int | None, seed: int) -> TextSplit:
    if limit is None or limit >= len(split):
        return split
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).tolist()
    return split.subset(sorted(order[:limit]))


def _split_off(split: TextSplit, fraction: float, seed: int) -> tuple[TextSplit, TextSplit]:
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(order) * fraction))
    return split.subset(sorted(order[n_val:])), split.subset(sorted(order[:n_val]))


def load_text_data(cfg: TextData, seed: int, registered: Registered | None = None) -> TextCorpus:
    """Resolve a recipe's ``[data]`` to validated train/val splits and the class list.

    ``registered`` maps a registered dataset's name to its spec and builder, checked to be for this
    task (the task's ``registered_dataset``); by default the installed text-classification task's.
    """
    info: dict[str, Any] = {}
    val: TextSplit | None = None
    if cfg.dataset:
        spec, builder = (registered or _registered_dataset)(cfg.dataset)
        tx, ty, vx, vy, info = builder(seed=seed, **cfg.options)
        train = TextSplit(list(tx), list(ty))
        val = TextSplit(list(vx), list(vy)) if vx is not None else None
        name = spec.name
        info = {**info, **{k: v for k, v in spec.meta.items() if k in ("hub_id", "license")}}
    elif cfg.path:
        root = Path(cfg.path).expanduser()
        if not root.is_dir():
            raise ZooError(f"data.path {cfg.path!r} is not a directory")
        if (root / cfg.train_dir).is_dir():
            train = read_split(str(root / cfg.train_dir), "dir", cfg, "data.path")
            if (root / cfg.val_dir).is_dir():
                val = read_split(str(root / cfg.val_dir), "dir", cfg, "data.path")
        else:
            train = read_split(str(root), "dir", cfg, "data.path")
        name, info = root.name, {"source": str(root)}
    else:
        train = read_split(cfg.train_file, cfg.format, cfg, "data.train_file")
        if cfg.val_file:
            val = read_split(cfg.val_file, cfg.format, cfg, "data.val_file")
        name, info = Path(cfg.train_file).name.split(".")[0], {"source": str(cfg.train_file)}
    if val is None:
        if cfg.val_split <= 0:
            raise ZooError("no validation data: give data.val_file (or a val/ directory), or set data.val_split = 0.2")
        train, val = _split_off(train, cfg.val_split, seed)
        info["val_split"] = cfg.val_split

    dropped = 0
    if cfg.labels:
        keep = set(cfg.labels)
        present = set(train.labels)
        absent = [lbl for lbl in cfg.labels if lbl not in present]
        if absent:
            raise ZooError(
                f"data.labels: {absent} never occur in the training data (its labels: {_names(sorted(present))})"
            )
        before = len(train) + len(val)
        train = train.subset([i for i, lbl in enumerate(train.labels) if lbl in keep])
        val = val.subset([i for i, lbl in enumerate(val.labels) if lbl in keep])
        dropped = before - len(train) - len(val)
        labels = list(cfg.labels)
    else:
        labels = sorted(set(train.labels))
    unknown = [i for i, lbl in enumerate(val.labels) if lbl not in set(labels)]
    if unknown:
        i = unknown[0]
        where = val.where[i] if val.where else f"validation example {i}"
        raise ZooError(
            f"{where}: label {val.labels[i]!r} does not occur in the training data ({len(unknown)} such examples);"
            " fix the label or list the classes in data.labels"
        )
    train = _random_subset(train, cfg.train_limit, seed)
    val = _random_subset(val, cfg.val_limit, seed + 1)
    if len(labels) < 2:
        raise ZooError(f"text classification needs at least 2 classes; the training data has {labels}")
    missing = [lbl for lbl in labels if lbl not in set(train.labels)]
    if missing:
        raise ZooError(f"classes with no training examples: {missing}; raise data.train_limit or add examples")
    if len(val) == 0:
        raise ZooError("the validation split is empty; add validation examples or raise data.val_limit")
    counts = {lbl: 0 for lbl in labels}
    for lbl in train.labels:
        counts[lbl] += 1
    info = {**info, "num_train": len(train), "num_val": len(val), "train_per_class": counts}
    if dropped:
        info["dropped_other_labels"] = dropped
    return TextCorpus(name=name, labels=labels, train=train, val=val, info=info)


def _registered_dataset(name: str) -> tuple[Spec, Callable[..., Any]]:
    """A registered dataset through the installed text-classification task (callers without a task)."""
    from modelzoo.sdk import get

    from .plugin import TASK
    from .task import TextClassification

    return TextClassification(get(TASK, kind="task")).registered_dataset(name)
