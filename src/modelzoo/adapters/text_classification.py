"""Text classification: CSV / JSONL / a folder of text files per class, or a registered dataset.

Data are validated before any training, each problem stopping the run with one line naming the file,
the line and the fix: a missing file or column, an empty text or label, a validation label that never
occurs in training, a class with no training examples.

The encoder comes from a plugin (``zoo list --task text --kind backbone``). The core knows no model
family, so it talks to the built backbone through a small duck-typed contract (``zoo_text`` is the
reference implementation):

* ``backbone.encode_texts(texts, max_length) -> (token ids per text, number truncated)``
* ``backbone.pad_id`` and ``backbone.max_positions``
* ``backbone(batch)`` on ``{"input_ids", "attention_mask"}`` (dynamically padded) emits ``sequence``
  ``(hidden, mask)`` or ``pooled`` features
* ``backbone.save_files(folder)`` / ``load_files(folder)``: the tokenizer files that travel with a model.

Heads that consume ``sequence`` expose ``pool(features)`` (parameter-free) and ``classify(pooled)``;
with a frozen encoder the feature cache stores pooled embeddings, and only ``classify`` trains on them.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import RecipeError, ZooError
from ..model import TaskModel
from .base import TaskAdapter
from .image_classification import ClassificationMixin, summarize

FORMATS = ("csv", "jsonl", "dir")
TEXT_SUFFIXES = (".txt", ".text", ".md")
DEFAULT_MAX_LENGTH = 128


# -- data -------------------------------------------------------------------------------------
@dataclass
class TextSplit:
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
class TextData:
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


def _open_text(path: Path):
    """Text handle for plain, ``.gz`` or ``.bz2`` files (UTF-8, BOM tolerated)."""
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        raw = gzip.decompress(raw)
    elif path.suffix.lower() == ".bz2":
        raw = bz2.decompress(raw)
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
    return text.strip(), str(label).strip()


def read_csv(path: Path, text_col: str, label_col: str, delimiter: str | None = None) -> TextSplit:
    """A CSV/TSV file with a header row; the delimiter is sniffed unless given."""
    handle = _open_text(path)
    if delimiter is None:
        delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    reader = csv.DictReader(handle, delimiter=delimiter)
    columns = reader.fieldnames or []
    for col, key in ((text_col, "text_column"), (label_col, "label_column")):
        if col not in columns:
            raise ZooError(f"{path}: no column {col!r} (columns: {', '.join(columns) or 'none'}); set data.{key}")
    out = TextSplit([], [], [])
    for row in reader:
        where = f"{path} line {reader.line_num}"
        text, label = _check_row(row.get(text_col), row.get(label_col), where, text_col, label_col)
        out.texts.append(text)
        out.labels.append(label)
        out.where.append(where)
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
        except ValueError as exc:
            raise ZooError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ZooError(f"{where}: expected a JSON object with {text_col!r} and {label_col!r}")
        for col, key in ((text_col, "text_column"), (label_col, "label_column")):
            if col not in row:
                raise ZooError(f"{where}: no field {col!r} (fields: {', '.join(row) or 'none'}); set data.{key}")
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


def read_split(path: str, fmt: str | None, cfg, what: str) -> TextSplit:
    p = Path(path).expanduser()
    if not p.exists():
        raise ZooError(f"data.{what}: no such {'directory' if fmt == 'dir' else 'file'} {path!r}")
    fmt = fmt or infer_format(path)
    if fmt == "dir":
        if not p.is_dir():
            raise ZooError(f"data.{what}: {path!r} is not a directory (data.format = 'dir')")
        return read_dir(p)
    if p.is_dir():
        raise ZooError(f"data.{what}: {path!r} is a directory; set data.format = 'dir' or name a {fmt} file")
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


def load_text_data(cfg, seed: int) -> TextData:
    """Resolve ``recipe.data`` to validated train/val splits and the class list."""
    info: dict[str, Any] = {}
    val: TextSplit | None = None
    if cfg.dataset:
        from ..catalog import catalog
        from ..model import import_builder

        spec = catalog().get(cfg.dataset, kind="dataset")
        if "text-classification" not in spec.tasks:
            raise ZooError(f"dataset {spec.name!r} is for {', '.join(spec.tasks)}, not text classification")
        tx, ty, vx, vy, info = import_builder(spec.builder or "")(seed=seed, **cfg.options)
        train = TextSplit(list(tx), list(ty))
        val = TextSplit(list(vx), list(vy)) if vx is not None else None
        name = spec.name
        info = {**info, **{k: v for k, v in spec.meta.items() if k in ("hub_id", "license")}}
    elif cfg.path:
        root = Path(cfg.path).expanduser()
        if not root.is_dir():
            raise ZooError(f"data.path {cfg.path!r} is not a directory")
        if (root / cfg.train_dir).is_dir():
            train = read_split(str(root / cfg.train_dir), "dir", cfg, "path")
            if (root / cfg.val_dir).is_dir():
                val = read_split(str(root / cfg.val_dir), "dir", cfg, "path")
        else:
            train = read_split(str(root), "dir", cfg, "path")
        name, info = root.name, {"source": str(root)}
    else:
        train = read_split(cfg.train_file, cfg.format, cfg, "train_file")
        if cfg.val_file:
            val = read_split(cfg.val_file, cfg.format, cfg, "val_file")
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
                f"data.labels: {absent} never occur in the training data (its labels: {', '.join(sorted(present))})"
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
    return TextData(name=name, labels=labels, train=train, val=val, info=info)


# -- batches ----------------------------------------------------------------------------------
class TokenizedDataset(Dataset):
    """Token ids (tokenized once, up front) and class indices."""

    def __init__(self, ids: list[list[int]], targets: list[int]) -> None:
        self.ids = ids
        self.targets = targets

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[list[int], int]:
        return self.ids[index], self.targets[index]


class PadCollate:
    """Dynamic padding: each batch is padded to its own longest text, not to ``max_length``."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[tuple[list[int], int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return pad_batch([ids for ids, _ in items], self.pad_id), torch.tensor([y for _, y in items])


def pad_batch(ids: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def text_backbone(model: TaskModel):
    """The model's backbone, checked to be a text encoder (it tokenizes)."""
    bb = model.backbone
    if not hasattr(bb, "encode_texts"):
        raise ZooError(
            f"backbone {model.config['backbone']['name']!r} is not a text encoder (no tokenizer); pick one from"
            " zoo list --task text --kind backbone"
        )
    return bb


def pooled_features(head: nn.Module, features: Any) -> torch.Tensor:
    """What the feature cache stores: the head's pooling of a sequence, or pooled features as they are."""
    return head.pool(features) if hasattr(head, "pool") else features


def classify(head: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    return head.classify(pooled) if hasattr(head, "classify") else head(pooled)


# -- the adapter ------------------------------------------------------------------------------
class TextClassificationAdapter(ClassificationMixin, TaskAdapter):
    @classmethod
    def validate_recipe(cls, recipe) -> None:
        d = recipe.data
        given = [k for k in ("dataset", "path", "train_file") if getattr(d, k)]
        if len(given) != 1:
            raise RecipeError(
                "data: give exactly one of data.dataset (zoo list --task text --kind dataset), data.train_file"
                " (CSV/JSONL) or data.path (a folder of <class>/*.txt)"
            )
        if d.val_file and not d.train_file:
            raise RecipeError("data.val_file: only goes with data.train_file")
        if d.format is not None and d.format not in FORMATS:
            raise RecipeError(f"data.format: {d.format!r} is not one of {', '.join(FORMATS)}")
        if d.max_length is not None and not 2 <= d.max_length <= 8192:
            raise RecipeError("data.max_length: must be a whole number of tokens between 2 and 8192")
        if d.labels is not None and (len(d.labels) < 2 or len(set(d.labels)) != len(d.labels)):
            raise RecipeError("data.labels: list at least 2 distinct class names")
        if not d.text_column or not d.label_column:
            raise RecipeError("data.text_column / data.label_column: must not be empty")
        if d.augment != "none":
            raise RecipeError('data.augment: text classification has no augmentation; use "none"')

    def load_data(self) -> None:
        self.data = load_text_data(self.recipe.data, self.recipe.seed)
        self.labels, self.name, self.info = self.data.labels, self.data.name, self.data.info

    def load_eval_data(self, path: str) -> None:
        """``zoo eval RUN --data FILE|DIR``: a CSV/JSONL file or a <class>/*.txt folder, labels as the model's."""
        cfg = self.recipe.data
        split = read_split(path, cfg.format if Path(path).is_file() else "dir", cfg, "eval")
        self.data = TextData(name=Path(path).name, labels=[], train=TextSplit([], []), val=split)
        self.labels, self.name, self.info = sorted(set(split.labels)), Path(path).name, {"num_val": len(split)}

    def build_model(self) -> TaskModel:
        r = self.recipe
        preprocess = {"max_length": r.data.max_length} if r.data.max_length else {}
        model = self.assemble_model(preprocess=preprocess)
        text_backbone(model)
        return model

    @property
    def in_memory(self) -> bool:
        return True  # token ids live in memory; DataLoader workers would only compete for the cores

    def prepare(self, model: TaskModel) -> None:
        """Tokenize both splits once (truncating to the model's max_length, counting what was cut)."""
        bb = text_backbone(model)
        self.model = model
        max_length = int(model.preprocess.get("max_length") or DEFAULT_MAX_LENGTH)
        if max_length > bb.max_positions:
            raise ZooError(f"data.max_length {max_length} exceeds the encoder's {bb.max_positions} positions; lower it")
        index = {lbl: i for i, lbl in enumerate(model.labels)}
        self.tokens: dict[str, TokenizedDataset] = {}
        truncated: dict[str, int] = {}
        for split_name in ("train", "val"):
            split = getattr(self.data, split_name)
            unknown = [lbl for lbl in split.labels if lbl not in index]
            if unknown:
                raise ZooError(f"label {unknown[0]!r} is not one of the model's labels {model.labels}")
            ids, cut = bb.encode_texts(split.texts, max_length) if len(split) else ([], 0)
            self.tokens[split_name] = TokenizedDataset(ids, [index[lbl] for lbl in split.labels])
            truncated[split_name] = cut
        self.collate_fn = PadCollate(bb.pad_id)
        self.info["max_length"] = max_length
        self.info["truncated"] = truncated  # examples longer than max_length (cut, not dropped)

    def dataset(self, split: str, augment: bool = False) -> Dataset:
        return self.tokens["train" if split == "train" else "val"]

    @property
    def collate(self):
        return self.collate_fn

    def features(self, model: TaskModel, batch):
        x, y = batch
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            return pooled_features(model.head, model.backbone(x)).float(), y

    def head_loss(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(classify(model.head, feats).float(), targets)

    @torch.no_grad()
    def evaluate_features(self, model: TaskModel, feats: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
        model.head.eval()
        logits = torch.cat(
            [
                classify(model.head, feats[i : i + 1024].to(self.device)).float().cpu()
                for i in range(0, len(feats), 1024)
            ]
        )
        return summarize(logits, targets.cpu(), len(self.labels))

    def write_artifacts(self, result: dict[str, Any], out: Path) -> None:
        """The tokenizer files first (a model folder is incomplete without them), then the plots."""
        text_backbone(self.model).save_files(out)
        super().write_artifacts(result, out)

    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        return {**super().summary_extras(result), "truncated": self.info.get("truncated", {})}
