"""The semantic-segmentation task: a class for every pixel, on any pyramid backbone.

The recipe's ``[data]`` table is :class:`SegmentationDataConfig` (layouts in ``zoo_segmentation.data``).
The model is backbone (``pyramid``) + a head of ``zoo_segmentation.heads``; its logits come at the
stride of the finest level the head reads and are upsampled (bilinear) to the image. The loss is
per-pixel cross-entropy that skips 255 (ignore); the metric is mIoU, with pixel accuracy beside it
and per-class IoU at the end of a run. Frozen-backbone stages train the head on cached features:
the backbone's whole pyramid (a list of maps per example) and the uint8 masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from modelzoo.sdk import BadImage, CardInfo, DataConfig, RecipeError, Task, TaskModel, ZooError, read_image

from .data import (
    FORMATS,
    IGNORE,
    SegmentationData,
    SegmentationDataset,
    Split,
    class_pixels,
    hold_out,
    load_coco_split,
    load_folder_split,
    read_labels,
    resize_pair,
)
from .heads import check_head
from .metrics import confusion, scores

#: how many validation images val_segmentation.png shows
SAMPLE_IMAGES = 6
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@dataclass
class SegmentationDataConfig(DataConfig):
    """``[data]`` of a semantic-segmentation recipe: ``dataset`` (registered), or ``path`` (folder
    layout: ``train/images`` + ``train/masks`` [+ ``val/...``] and ``labels.txt``), or ``format = "coco"``
    with ``train_file`` [+ ``val_file``] and ``images_dir``. Relative paths resolve against the working directory."""

    path: str | None = None
    #: "folder" (images + PNG masks of class indices, 255 = ignore) or "coco" (polygons / RLE)
    format: str = "folder"
    train_file: str | None = None
    val_file: str | None = None
    images_dir: str | None = None
    #: class names, index i = mask value i (default: labels.txt in ``path``; COCO: background + categories)
    labels: list[str] | None = None
    #: images and masks are resized to image_size x image_size px
    image_size: int = 128
    #: "none" or "flip" (random horizontal flips of image and mask) for stages with ``augment = true``
    augment: str = "none"


class SemanticSegmentation(Task):
    """Per-pixel classes: what the engine, ``zoo eval`` / ``zoo predict`` and the model card call."""

    Data = SegmentationDataConfig
    feature_cache = True
    #: entry features are pooled over space: meaningless for a per-pixel task
    select_views = ("final",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loaded: SegmentationData | None = None
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self._samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # -- recipe -------------------------------------------------------------------------------------
    @classmethod
    def validate_data(cls, data: SegmentationDataConfig, recipe: Any) -> None:
        if data.format not in FORMATS:
            raise RecipeError(f"data.format: {data.format!r} is not one of {', '.join(FORMATS)}")
        if data.dataset and (data.path or data.train_file):
            raise RecipeError("data: give either data.dataset (a registered set) or data.path / data.train_file")
        if not data.dataset:
            if data.format == "folder" and not data.path:
                raise RecipeError("data.path: the folder with train/images, train/masks (and val/) and labels.txt")
            if data.format == "coco" and not data.train_file:
                raise RecipeError("data.train_file: a COCO recipe needs the training annotation JSON")
        if data.image_size < 16:
            raise RecipeError("data.image_size: give 16 px or more")
        if data.labels is not None and len(set(data.labels)) != len(data.labels):
            raise RecipeError(f"data.labels: names repeat ({data.labels}); give each class once")
        if data.augment not in ("none", "flip"):
            raise RecipeError(f"data.augment: {data.augment!r} is not one of none, flip")

    # -- data ---------------------------------------------------------------------------------------
    def load_data(self) -> None:
        d = self.data
        seed = self.recipe.seed_for_data
        info: dict[str, Any] = {}
        name = d.dataset or Path(d.path or d.train_file or "data").stem
        fmt, path, labels = d.format, d.path, d.labels
        if d.dataset:
            spec, builder = self.registered_dataset(d.dataset)
            built = builder(**d.options)
            fmt, path, labels = built.get("format", "folder"), built.get("path"), labels or built.get("labels")
            info.update(built.get("info") or {})
            name = spec.name
        if fmt == "coco":
            images = Path(d.images_dir) if d.images_dir else None
            train, labels = load_coco_split(Path(d.train_file), images, d.image_size, self.track)
            val = load_coco_split(Path(d.val_file), images, d.image_size, self.track)[0] if d.val_file else None
        else:
            root = Path(path)
            if not root.is_dir():
                raise ZooError(f"data.path: {root} is not a folder")
            labels = read_labels(root, labels)
            top = root / "train" if (root / "train").is_dir() else root
            train = load_folder_split(top / "images", top / "masks", len(labels), d.image_size, self.track)
            has_val = (root / "val").is_dir()
            val = (
                load_folder_split(
                    root / "val" / "images", root / "val" / "masks", len(labels), d.image_size, self.track
                )
                if has_val
                else None
            )
        if val is None:
            train, val = hold_out(train, d.val_split, seed)
        train, val = _limit(train, d.train_limit, seed), _limit(val, d.val_limit, seed + 1)
        self._use(SegmentationData(name, list(labels), train, val, info))

    def load_eval_data(self, path: str, model: TaskModel) -> None:
        """``zoo eval RUN --data PATH``: a folder (``images/`` + ``masks/``, or ``val/...``) or a COCO JSON."""
        p = Path(path)
        size = self.data.image_size
        if p.suffix == ".json":
            val, labels = load_coco_split(p, Path(self.data.images_dir) if self.data.images_dir else None, size)
        elif p.is_dir():
            top = p / "val" if (p / "val").is_dir() else p
            labels = model.labels
            val = load_folder_split(top / "images", top / "masks", len(labels), size)
        else:
            raise ZooError(f"{path}: give a folder with images/ and masks/, or a COCO annotation JSON")
        self._use(SegmentationData(p.stem, list(labels), Split(val.images[:0], val.masks[:0], []), val, {}))

    def _use(self, loaded: SegmentationData) -> None:
        self.loaded = loaded
        self.labels, self.dataset_name = loaded.labels, loaded.name
        self.data_info = {
            **loaded.info,
            "num_train": len(loaded.train),
            "num_val": len(loaded.val),
            "class_pixels_train": class_pixels(loaded.train.masks, len(loaded.labels)) if len(loaded.train) else [],
        }

    def _loaded(self) -> SegmentationData:
        if self.loaded is None:
            raise ZooError(f"task {self.name!r}: no data loaded yet (load_data or load_eval_data comes first)")
        return self.loaded

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, assemble) -> TaskModel:
        """The recipe's backbone + head; the data's image size is recorded as the model's input size."""
        size = self.data.image_size
        model = assemble(labels=self.labels, preprocess={"input_size": [3, size, size]})
        check_head(model)
        return model

    def prepare(self, model: TaskModel) -> None:
        pre = model.preprocess
        self.mean = list(pre.get("mean") or IMAGENET_MEAN)
        self.std = list(pre.get("std") or IMAGENET_STD)

    @property
    def in_memory(self) -> bool:
        return True

    @property
    def augmenting(self) -> bool:
        return self.data.augment != "none"

    def dataset(self, split: str, augment: bool = False) -> SegmentationDataset:
        loaded = self._loaded()
        data = loaded.train if split == "train" else loaded.val
        return SegmentationDataset(data, self.mean, self.std, flip=augment and self.data.augment == "flip")

    def loss(self, model: TaskModel, batch) -> tuple[torch.Tensor, int]:
        images, masks, _ = batch
        with self.autocast():
            logits = model(images)
        return _ce(logits, masks), len(images)

    # -- feature cache ------------------------------------------------------------------------------
    def features(self, model: TaskModel, batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The backbone's whole pyramid (a list of (B, C, h, w) maps, finest first) and the uint8 masks.
        Every level, not just those the head reads: the cache's key knows the backbone, not the head."""
        images, masks, _ = batch
        check_head(model)
        return list(model.backbone(images)), masks.to(torch.uint8)

    def head_loss(self, model: TaskModel, feats: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        return _ce(model.head(list(feats)), targets.long())

    @torch.no_grad()
    def evaluate_features(self, model: TaskModel, feats: list[torch.Tensor], targets: torch.Tensor) -> dict[str, Any]:
        model.head.eval()
        k = len(self.labels)
        conf = torch.zeros(k, k, dtype=torch.long)
        loss_sum, n = 0.0, len(targets)
        device = next(model.head.parameters()).device
        for start in range(0, n, 32):
            maps = [f[start : start + 32].to(device) for f in feats]
            masks = targets[start : start + 32].long().to(device)
            logits = _upsample(model.head(maps), masks)
            loss_sum += float(F.cross_entropy(logits.float(), masks, ignore_index=IGNORE)) * len(masks)
            conf += confusion(logits.argmax(1).cpu(), masks.cpu(), k)
        return {"loss": loss_sum / max(1, n), **scores(conf, self.labels)}

    # -- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def eval_batch(self, model: TaskModel, batch) -> dict[str, Any]:
        """``{"loss_sum", "count", "confusion": (K, K) counts, "samples": [(index, uint8 prediction)]}``."""
        images, masks, index = batch
        with self.autocast():
            logits = model(images)
        logits = _upsample(logits.float(), masks)
        pred = logits.argmax(1)
        loss = float(F.cross_entropy(logits, masks, ignore_index=IGNORE))
        keep = [(int(i), pred[j].to(torch.uint8).cpu()) for j, i in enumerate(index) if int(i) < SAMPLE_IMAGES]
        return {
            "loss_sum": loss * len(images),
            "count": len(images),
            "confusion": confusion(pred.cpu(), masks.cpu(), len(self.labels)),
            "samples": keep,
        }

    def eval_metrics(self, outputs: list[Any], final: bool = False) -> dict[str, Any]:
        k = len(self.labels)
        conf = torch.zeros(k, k, dtype=torch.long)
        for out in outputs:
            conf += out["confusion"]
        count = sum(out["count"] for out in outputs)
        result = {"loss": sum(out["loss_sum"] for out in outputs) / max(1, count), **scores(conf, self.labels, final)}
        if final:
            val = self._loaded().val
            preds = dict(s for out in outputs for s in out["samples"])
            self._samples = [
                (val.images[i].permute(1, 2, 0).numpy(), val.masks[i].numpy(), preds[i].numpy()) for i in sorted(preds)
            ]
        return result

    # -- what a run writes --------------------------------------------------------------------------
    def write_artifacts(self, result: dict[str, Any], out: Path) -> list[str]:
        """``val_segmentation.png``: the first validation images, ground truth and prediction side by side."""
        from .plots import sample_sheet

        if not self._samples:
            return []
        sample_sheet(self._samples, self.labels, out / "val_segmentation.png")
        return ["val_segmentation.png"]

    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        return {"per_class_iou": result.get("per_class_iou", [])}

    # -- using a model ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, model: TaskModel, inputs: Any, batch_size: int = 8, **_: Any) -> list[dict[str, Any]]:
        """Per image (paths or PIL images): ``{"mask": uint8 (H, W) class indices at the image's size,
        "classes": {label: fraction of the pixels}}``, largest first."""
        check_head(model)
        model.eval()
        self.prepare(model)
        size = int((model.preprocess.get("input_size") or [3, 128, 128])[-1])
        device = next(model.parameters()).device
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        results = []
        for item in inputs:
            try:
                image = item if hasattr(item, "convert") else read_image(item)
            except BadImage as exc:
                raise ZooError(str(exc)) from None
            image = image.convert("RGB")
            x = (resize_pair(image, None, size)[0].float() / 255.0 - mean) / std
            logits = model(x.unsqueeze(0).to(device)).float()
            logits = F.interpolate(logits, size=(image.height, image.width), mode="bilinear", align_corners=False)
            mask = logits.argmax(1)[0].to(torch.uint8).cpu()
            counts = torch.bincount(mask.flatten().long(), minlength=len(model.labels)).tolist()
            total = mask.numel()
            classes = {model.labels[k]: c / total for k, c in sorted(enumerate(counts), key=lambda kc: -kc[1]) if c}
            results.append({"mask": mask.numpy(), "classes": classes})
        return results

    def save_predictions(
        self, model: TaskModel, inputs: list[Any], results: list[Any], out: str | None = None, **_: Any
    ) -> list[Path]:
        """``--out DIR``: ``<name>_mask.png`` (a palette PNG: values are class indices, colours show them)
        and ``<name>_overlay.png`` (the image with its classes tinted) per input."""
        if not out:
            return []
        from modelzoo.sdk import atomic_write

        from .plots import mask_image, overlay

        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise ZooError(f"--out {out} is a file; give a folder for the masks and overlays")
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for i, (item, result) in enumerate(zip(inputs, results)):
            stem = Path(str(item)).stem if isinstance(item, (str, Path)) else f"input{i}"
            mask = result["mask"]
            image = np.asarray((item if hasattr(item, "convert") else read_image(item)).convert("RGB"))
            from PIL import Image

            for name, pic in (
                (f"{stem}_mask.png", mask_image(mask)),
                (f"{stem}_overlay.png", Image.fromarray(overlay(image, mask))),
            ):
                written.append(atomic_write(folder / name, lambda p, pic=pic: pic.save(p, format="PNG")))
        return written

    def prediction_row(self, model: TaskModel, path: str, result: Any, files: Path, **_: Any) -> dict[str, Any]:
        """``zoo predict RUN DIR/ --out preds.csv``: the mask goes to ``<files>/<name>_mask.png`` (a palette
        PNG of class indices; ``files`` mirrors the inputs' folders); the row names it, with the image size
        and the share of each class."""
        from modelzoo.sdk import atomic_write

        from .plots import mask_image

        target = Path(files) / f"{Path(path).stem}_mask.png"
        pic = mask_image(result["mask"])
        atomic_write(target, lambda p: pic.save(p, format="PNG"))
        h, w = result["mask"].shape
        return {"mask": target.as_posix(), "size": [int(w), int(h)], "classes": result["classes"]}

    def show(self, model: TaskModel, inputs: list[Any], results: list[Any], **_: Any) -> str:
        lines = []
        for item, result in zip(inputs, results):
            h, w = result["mask"].shape
            parts = ", ".join(f"{label} {share:.1%}" for label, share in result["classes"].items())
            lines.append(f"{item}: {w}x{h} px; {parts}")
        return "\n".join(lines)

    def to_json(self, inputs: list[Any], results: list[Any], **_: Any) -> list[dict[str, Any]]:
        return [
            {"input": str(item), "size": [int(r["mask"].shape[1]), int(r["mask"].shape[0])], "classes": r["classes"]}
            for item, r in zip(inputs, results)
        ]

    def report(self, result: dict[str, Any], examples: int | None = None) -> str:
        """The metrics line, then IoU and ground-truth pixels per class ("-": a class absent from both)."""
        lines = [super().report(result, examples)]
        rows = result.get("per_class_iou")
        if rows:
            width = max(5, *(len(r["label"]) for r in rows))
            lines.append(f"{'class'.ljust(width)}     IoU    pixels")
            for r in rows:
                iou = f"{r['iou']:.4f}" if r["iou"] is not None else "  -   "
                lines.append(f"{r['label'].ljust(width)}  {iou:>6}  {r['pixels']:8d}")
        return "\n".join(lines)

    def card(self, config: dict[str, Any], summary: dict[str, Any]) -> CardInfo:
        results: list[str] = []
        rows = summary.get("per_class_iou")
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            results += ["<details><summary>Per-class IoU</summary>", "", "| class | IoU | pixels |", "|---|---|---|"]
            for r in rows:
                results.append(
                    f"| {r.get('label', '')} | {'-' if r.get('iou') is None else r['iou']} | {r.get('pixels', '')} |"
                )
            results += ["", "</details>", ""]
        size = ((config.get("preprocess") or {}).get("input_size") or [3, "?", "?"])[-1]
        return CardInfo(
            example="image.jpg",
            input=f"an RGB image of any size, resized to {size}x{size} px; the mask comes back at the image's size",
            metric_names={"miou": "mIoU", "pixel_accuracy": "pixel accuracy"},
            results=results,
        )


def _upsample(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    if logits.shape[-2:] == masks.shape[-2:]:
        return logits
    return F.interpolate(logits, size=masks.shape[-2:], mode="bilinear", align_corners=False)


def _ce(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(_upsample(logits.float(), masks), masks.long(), ignore_index=IGNORE)


def _limit(split: Split, limit: int | None, seed: int) -> Split:
    if limit is None or limit >= len(split):
        return split
    gen = torch.Generator().manual_seed(seed)
    return split.subset(sorted(torch.randperm(len(split), generator=gen)[:limit].tolist()))
