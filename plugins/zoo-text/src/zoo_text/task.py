"""Text classification: CSV / JSONL / a folder of text files per class, or a registered dataset.

The recipe's ``[data]`` table is :class:`TextData`, validated before any work starts; the data are
read and checked by :mod:`zoo_text.textdata`. Texts are tokenized once, up front, by the model's own
backbone, which must be a :class:`~zoo_text.contracts.TextBackbone` (``zoo list --task text --kind
backbone``); batches are padded dynamically, to their longest text. The truncation length
(``data.max_length``, else the encoder's default) is recorded in the model's ``preprocess``, so
``zoo predict`` cuts texts exactly as evaluation did.

Heads are either :class:`~zoo_text.contracts.SequenceClassifierHead` (pooling in the head, on a
``sequence`` encoder) or any pooled-feature classifier (``linear``, ``mlp``) on a ``pooled`` encoder.
With a frozen encoder the feature cache stores pooled embeddings, and only the classifier trains on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from zoo_classification.classify import ClassificationTask, check_top_k

from modelzoo.sdk import CardInfo, DataConfig, RecipeError, TaskModel, ZooError

from .contracts import SequenceClassifierHead, pad_batch, text_backbone
from .predict import DEFAULT_MAX_LENGTH, predict_texts
from .textdata import FORMATS, TextCorpus, TextSplit, load_text_data, read_split


@dataclass
class TextData(DataConfig):
    """``[data]`` of a text-classification recipe: ``dataset`` (registered), ``train_file`` (CSV or
    JSONL, with ``val_file`` or ``val_split``) or ``path`` (a folder of ``<class>/*.txt``)."""

    #: ``path/<class>/*.txt``, or ``path/train/<class>/...`` + ``path/val/<class>/...``
    path: str | None = None
    train_dir: str = "train"
    val_dir: str = "val"
    #: "csv", "jsonl" or "dir"; default: from the file name (``.csv``, ``.tsv``, ``.jsonl``, also ``.gz``/``.bz2``)
    format: str | None = None
    train_file: str | None = None
    val_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    #: the classes to keep, in model output order (other rows are dropped and counted); default: all, sorted
    labels: list[str] | None = None
    #: tokens per text (longer texts are cut and counted); default: the encoder's
    max_length: int | None = None


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


class TextExport(torch.nn.Module):
    """The model with positional tensor inputs (what exporters take): token ids and attention mask
    (both ``(batch, sequence)``; the tokenizer is not part of the export, its files travel with the model)."""

    def __init__(self, model: TaskModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask})


class TextClassification(ClassificationTask):
    Data = TextData

    @classmethod
    def validate_data(cls, data: TextData, recipe: Any) -> None:
        given = [k for k in ("dataset", "path", "train_file") if getattr(data, k)]
        if len(given) != 1:
            raise RecipeError(
                "data: give exactly one of data.dataset (zoo list --task text --kind dataset), data.train_file"
                " (CSV/JSONL) or data.path (a folder of <class>/*.txt)"
            )
        if data.val_file and not data.train_file:
            raise RecipeError("data.val_file: only goes with data.train_file")
        if data.format is not None and data.format not in FORMATS:
            raise RecipeError(f"data.format: {data.format!r} is not one of {', '.join(FORMATS)}")
        if data.max_length is not None and not 2 <= data.max_length <= 8192:
            raise RecipeError("data.max_length: must be a whole number of tokens between 2 and 8192")
        if data.labels is not None and (len(data.labels) < 2 or len(set(data.labels)) != len(data.labels)):
            raise RecipeError("data.labels: list at least 2 distinct class names")
        if not data.text_column or not data.label_column:
            raise RecipeError("data.text_column / data.label_column: must not be empty")

    # -- data ---------------------------------------------------------------------------------------
    def load_data(self) -> None:
        self.corpus = load_text_data(self.data, self.recipe.seed_for_data, self.registered_dataset)
        self.labels, self.dataset_name, self.data_info = self.corpus.labels, self.corpus.name, self.corpus.info

    def load_eval_data(self, path: str, model: TaskModel) -> None:
        """``zoo eval RUN --data FILE|DIR``: a CSV/JSONL file or a ``<class>/*.txt`` folder, whose labels
        must all be the model's (a class may be absent: the model's label order is kept)."""
        split = read_split(path, self.data.format if Path(path).is_file() else "dir", self.data, "--data")
        known = set(model.labels)
        unknown = [i for i, label in enumerate(split.labels) if label not in known]
        if unknown:
            i = unknown[0]
            where = split.where[i] if split.where else f"example {i}"
            raise ZooError(
                f"{where}: label {split.labels[i]!r} is not one of the model's labels {model.labels}"
                f" ({len(unknown)} such examples)"
            )
        name = Path(path).name
        self.corpus = TextCorpus(name=name, labels=model.labels, train=TextSplit([], []), val=split)
        self.labels, self.dataset_name = list(model.labels), name
        self.data_info = {"source": str(path), "num_train": 0, "num_val": len(split)}

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, assemble) -> TaskModel:
        max_length = self.data.max_length
        model = assemble(labels=self.labels, preprocess={"max_length": max_length} if max_length else {})
        text_backbone(model)
        return model

    @property
    def in_memory(self) -> bool:
        return True  # token ids live in memory; DataLoader workers would only compete for the cores

    def prepare(self, model: TaskModel) -> None:
        """Tokenize both splits once (truncating to the model's max_length, counting what was cut)."""
        bb = text_backbone(model)
        max_length = int(model.preprocess.get("max_length") or DEFAULT_MAX_LENGTH)
        if max_length > bb.max_positions:
            raise ZooError(f"data.max_length {max_length} exceeds the encoder's {bb.max_positions} positions; lower it")
        index = {label: i for i, label in enumerate(model.labels)}
        self.tokens: dict[str, TokenizedDataset] = {}
        truncated: dict[str, int] = {}
        for split_name in ("train", "val"):
            split = getattr(self.corpus, split_name)
            unknown = [label for label in split.labels if label not in index]
            if unknown:
                raise ZooError(f"label {unknown[0]!r} is not one of the model's labels {model.labels}")
            ids, cut = bb.encode_texts(split.texts, max_length) if len(split) else ([], 0)
            self.tokens[split_name] = TokenizedDataset(ids, [index[label] for label in split.labels])
            truncated[split_name] = cut
        self.collate_fn = PadCollate(bb.pad_id)
        self.data_info["max_length"] = max_length
        self.data_info["truncated"] = truncated  # examples longer than max_length (cut, not dropped)
        # a sequence encoder's features can be cached only when the head pools them without parameters
        self.feature_cache = bb.output_kind == "pooled" or isinstance(model.head, SequenceClassifierHead)

    def dataset(self, split: str, augment: bool = False) -> Dataset:
        return self.tokens["train" if split == "train" else "val"]

    @property
    def collate(self):
        return self.collate_fn

    # -- feature cache: pooled embeddings of the frozen encoder -------------------------------------
    def features(self, model: TaskModel, batch):
        x, y = batch
        with self.autocast():
            features = model.backbone(x)
            if isinstance(model.head, SequenceClassifierHead):
                features = model.head.pool(features)
            return features.float(), y

    def logits_from_features(self, model: TaskModel, feats: torch.Tensor) -> torch.Tensor:
        head = model.head
        return head.classify(feats) if isinstance(head, SequenceClassifierHead) else head(feats)

    # -- what a run writes --------------------------------------------------------------------------
    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        return {**super().summary_extras(result), "truncated": self.data_info.get("truncated", {})}

    # -- zoo export: token ids + attention mask in, class logits out ---------------------------------
    def export_inputs(self, model: TaskModel, batch) -> dict[str, torch.Tensor]:
        x, _ = batch
        return {"input_ids": x["input_ids"], "attention_mask": x["attention_mask"]}

    def export_module(self, model: TaskModel) -> torch.nn.Module:
        return TextExport(model)

    def export_axes(self, model: TaskModel, inputs: dict[str, torch.Tensor]) -> dict[str, dict[int, str]]:
        return {name: {0: "batch", 1: "sequence"} for name in inputs}

    # -- using a model ------------------------------------------------------------------------------
    def predict(self, model: TaskModel, inputs: Any, top_k: int = 5, batch_size: int = 32, **_: Any) -> list:
        """Top-k ``(label, probability)`` per text (one string or a list of strings)."""
        return predict_texts(model, inputs, top_k=check_top_k(top_k), batch_size=batch_size)

    #: ``zoo predict RUN DIR/``: every ``.txt`` file under the folder is one text
    predict_extensions = (".txt",)
    #: a text file longer than this is not one input (a whole book, a log): it is skipped and counted
    MAX_TEXT_BYTES = 1 << 20

    def predict_input(self, model: TaskModel, path: str, **options: Any) -> str:
        """One ``.txt`` file's text (UTF-8); an empty, oversized or undecodable file raises and is skipped."""
        size = Path(path).stat().st_size
        if size > self.MAX_TEXT_BYTES:
            raise ValueError(f"{size:,} bytes is more than one text ({self.MAX_TEXT_BYTES:,} at most)")
        text = Path(path).read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError("empty text")
        return text

    def card(self, config: dict[str, Any], summary: dict[str, Any]) -> CardInfo:
        info = super().card(config, summary)
        pre = config.get("preprocess") or {}
        info.example = "this film was a delight"
        if pre:
            # a pooled encoder pools as its preprocess says; on a sequence encoder the head pools
            backbone, head = config.get("backbone") or {}, config.get("head") or {}
            pooling = (
                f"{pre.get('pooling', '-')} pooling"
                if backbone.get("output") == "pooled"
                else f"pooled by the `{str(head.get('name', '-')).split(':')[-1]}` head"
            )
            info.input = (
                f"text, at most {pre.get('max_length', DEFAULT_MAX_LENGTH)} tokens (longer texts are truncated),"
                f" {pooling}"
            )
        return info
