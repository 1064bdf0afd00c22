"""The object-detection task: COCO JSON or Pascal-VOC XML data, plugin detection heads, COCO mAP.

The recipe's ``[data]`` table is :class:`DetectionDataConfig`; the data are loaded and validated by
``zoo_detection.data`` before any training. The detector is a head that subclasses
:class:`zoo_detection.heads.DetectionHead` (``zoo list --task object-detection --kind head``): the
task hands it lists of float [0, 1] images and targets with labels 1..K (0 is background), and the
head resizes and normalises. The metric is COCO mAP@[.5:.95] computed by pycocotools' COCOeval.

Evaluation is split so that several processes can share it: ``eval_batch`` turns one batch into
plain CPU results keyed by each image's index in the validation split, and ``eval_metrics`` matches
whatever was gathered, in any order, against the split's ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from modelzoo.sdk import CardInfo, DataConfig, RecipeError, Task, TaskModel, ZooError, get

from .data import (
    FORMATS,
    DetectionData,
    DetectionDataset,
    Record,
    build_augment,
    collate_detection,
    load_coco,
    load_detection_data,
    load_voc,
    train_targets,
)
from .metrics import coco_map
from .predict import as_float_image, check_detector, predict_detections, save_annotated

AUGMENTS = ("none", "light")
#: decoded images are kept in memory (no DataLoader workers) when they fit in this many bytes
IN_MEMORY_BYTES = 1 << 30
#: how many validation images the end of a run draws into val_detections.png
SAMPLE_IMAGES = 6
#: the lowest score of a box drawn into val_detections.png
DRAW_THRESHOLD = 0.5


@dataclass
class DetectionDataConfig(DataConfig):
    """``[data]`` of an object-detection recipe: ``dataset`` (registered) or ``format`` + files.

    COCO: ``train_file`` (and ``val_file``) annotation JSONs, images in ``images_dir`` (default: next
    to the JSON); relative names are under ``path`` when it is given. VOC: ``path`` is the root with
    ``Annotations/`` and ``JPEGImages/``; ``train_file`` / ``val_file`` are ImageSets split files.
    """

    path: str | None = None
    #: "coco" or "voc" (not with ``dataset``: a registered set knows its format)
    format: str | None = None
    train_file: str | None = None
    val_file: str | None = None
    images_dir: str | None = None
    #: VOC class names in model output order (default: the sorted names found in the annotations)
    labels: list[str] | None = None
    #: the detector's input size: the head's ``min_size`` / ``max_size`` (or SSDlite's square ``size``)
    image_size: int | None = None
    #: "none" or "light" (flip, zoom-out, colour jitter; boxes move with the image) for stages with ``augment = true``
    augment: str = "none"
    #: "error" stops at a bad image or annotation with its name; "skip" counts and skips it
    on_bad_image: str = "error"


class ObjectDetection(Task):
    """Boxes, classes and scores per image: what the engine, ``zoo eval`` / ``zoo predict`` and the
    model card call for object detection (see :class:`modelzoo.sdk.Task` for when each runs)."""

    Data = DetectionDataConfig
    #: box-aware transforms only: the image presets that move pixels without their boxes do not apply
    augment_presets = AUGMENTS
    #: targets and augmentations move boxes, and detection heads train on live multi-scale features
    feature_cache = False
    #: a detector's step can leave parameters without a gradient (levels or heads a batch does not
    #: reach), which DistributedDataParallel must be told to expect
    ddp_find_unused_parameters = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loaded: DetectionData | None = None
        #: decoded images by path, shared by both splits when they fit in memory
        self._memory: dict[str, torch.Tensor] = {}
        self.train_transform = None
        #: (record, detections) of the first validation images, kept by a final evaluation for its plot
        self._samples: list[tuple[Record, dict[str, torch.Tensor] | None]] = []

    # -- recipe -------------------------------------------------------------------------------------
    @classmethod
    def validate_data(cls, data: DetectionDataConfig, recipe: Any) -> None:
        if data.dataset and (data.format or data.train_file):
            raise RecipeError(
                "data: give either data.dataset (a registered detection set) or data.format + files, not both"
            )
        if not data.dataset:
            if data.format not in FORMATS:
                raise RecipeError(
                    f"data.format: {data.format!r} is not one of {', '.join(FORMATS)}"
                    " (or give data.dataset, see zoo list --kind dataset --task object-detection)"
                )
            if data.format == "coco" and not data.train_file:
                raise RecipeError(
                    "data.train_file: a COCO recipe needs the training annotation JSON (and data.images_dir)"
                )
            if data.format == "voc" and not data.path:
                raise RecipeError("data.path: a VOC recipe needs the VOC root (with Annotations/ and JPEGImages/)")
        if data.image_size is not None and data.image_size <= 0:
            raise RecipeError("data.image_size: must be a positive integer")
        if data.labels is not None and len(set(data.labels)) != len(data.labels):
            raise RecipeError(f"data.labels: names repeat ({data.labels}); give each class once")
        if data.augment not in AUGMENTS:
            raise RecipeError(f"data.augment: {data.augment!r} is not one of {', '.join(AUGMENTS)}")
        if data.on_bad_image not in ("error", "skip"):
            raise RecipeError('data.on_bad_image: use "error" (stop with the file\'s name) or "skip" (count and skip)')

    # -- data ---------------------------------------------------------------------------------------
    def load_data(self) -> None:
        self._use(load_detection_data(self.data, self.recipe.seed_for_data, self.registered_dataset))

    def load_eval_data(self, path: str, model: TaskModel) -> None:
        """``zoo eval RUN --data PATH``: a COCO JSON (images in data.images_dir, ``images/`` next to it, or
        next to it) or a VOC root (its classes in the model's order, so a class missing from PATH keeps its index)."""
        p = Path(path)
        d = self.data
        if p.suffix == ".json":
            images = Path(d.images_dir) if d.images_dir and Path(d.images_dir).is_dir() else None
            if images is None:
                images = p.parent / "images" if (p.parent / "images").is_dir() else p.parent
            val, labels, counts = load_coco(p, images, d.on_bad_image)
        elif p.is_dir():
            val, labels, counts = load_voc(p, None, d.on_bad_image, d.labels or model.labels)
        else:
            raise ZooError(f"{path}: give a COCO annotation JSON or a VOC root directory")
        if not any(r.boxes for r in val):
            raise ZooError(f"{path}: no objects to evaluate against; check the annotations")
        self._use(DetectionData(name=p.stem, labels=labels, train=[], val=val, info={"num_val": len(val), **counts}))

    def _use(self, loaded: DetectionData) -> None:
        self.loaded = loaded
        self.labels, self.dataset_name, self.data_info = loaded.labels, loaded.name, loaded.info
        self._memory = {}

    def _loaded(self) -> DetectionData:
        if self.loaded is None:
            raise ZooError(f"task {self.name!r}: no data loaded yet (load_data or load_eval_data comes first)")
        return self.loaded

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, assemble) -> TaskModel:
        """The recipe's backbone + detection head; ``data.image_size`` becomes the head's input size
        unless ``model.head_options`` sets it (SSDlite has one square ``size``, the others min/max)."""
        m, d = self.recipe.model, self.data
        head_options = dict(m.head_options)
        if d.image_size:
            if "size" in get(m.head, kind="head").options:
                head_options.setdefault("size", d.image_size)
            else:
                head_options.setdefault("min_size", d.image_size)
                head_options.setdefault("max_size", d.image_size)
        model = assemble(labels=self.labels, head_options=head_options)
        check_detector(model)
        return model

    @property
    def in_memory(self) -> bool:
        loaded = self._loaded()
        return sum(r.width * r.height * 3 for r in loaded.train + loaded.val) <= IN_MEMORY_BYTES

    @property
    def augmenting(self) -> bool:
        return self.data.augment != "none"

    def prepare(self, model: TaskModel) -> None:
        self.train_transform = build_augment(self.data.augment)

    def dataset(self, split: str, augment: bool = False) -> DetectionDataset:
        loaded = self._loaded()
        memory = self._memory if self.in_memory else None
        if split == "train":
            return DetectionDataset(loaded.train, self.train_transform if augment else None, memory)
        return DetectionDataset(loaded.val, None, memory)

    @property
    def collate(self):
        return collate_detection

    def loss(self, model: TaskModel, batch) -> tuple[torch.Tensor, int]:
        """The detector's summed losses, run through ``model``'s forward (``step=``) so that a wrapper
        the engine puts around the model (DistributedDataParallel, torch.compile) sees the step."""
        images, targets = batch
        with self.autocast():
            losses = model(images, train_targets(targets), step=_detection_losses)
        return sum(v.float() for v in losses.values()), len(images)

    # -- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def eval_batch(self, model: TaskModel, batch) -> dict[str, Any]:
        """One validation batch as plain CPU data (picklable, so processes can gather it):

        ``{"loss_sum": float, "count": int, "detections": [{"index", "boxes", "scores", "labels"}, ...]}``
        where ``loss_sum`` is the batch's mean loss times ``count`` (its images), and each image's
        ``index`` is its place in the validation split; ``boxes`` float32 N x 4 xyxy in the image's
        pixels, ``scores`` float32 N, ``labels`` int64 N, 0-based indices into ``labels``.
        """
        head = check_detector(model)
        images, targets = batch
        with self.autocast():
            losses, dets = head.detect(model.backbone, images, train_targets(targets))
        loss = float(sum(v.detach().float() for v in losses.values()))
        return {
            "loss_sum": loss * len(images),
            "count": len(images),
            "detections": [
                {
                    "index": int(t["image_id"]),
                    "boxes": d["boxes"].detach().float().cpu(),
                    "scores": d["scores"].detach().float().cpu(),
                    "labels": d["labels"].detach().cpu().long() - 1,
                }
                for t, d in zip(targets, dets)
            ],
        }

    def eval_metrics(self, outputs: list[Any], final: bool = False) -> dict[str, Any]:
        """Loss and COCO mAP of the gathered ``eval_batch`` outputs against the validation split.

        Order does not matter: detections are matched to ground truth by index and the loss is an
        exactly rounded sum (``math.fsum``). An image seen twice (a distributed sampler pads its last
        batch with repeats) counts once in the mAP.
        """
        records = self._loaded().val
        detections: dict[int, dict[str, torch.Tensor]] = {}
        for out in outputs:
            for det in out["detections"]:
                index = det["index"]
                if not 0 <= index < len(records):
                    raise ZooError(
                        f"evaluation results name image {index}, but the validation split has {len(records)};"
                        " they come from other data"
                    )
                detections[index] = {k: det[k] for k in ("boxes", "scores", "labels")}
        count = sum(out["count"] for out in outputs)
        loss = math.fsum(out["loss_sum"] for out in outputs) / max(1, count)
        result = {"loss": loss, **coco_map(records, detections, self.labels, per_class=final)}
        if final:
            self._samples = [(records[i], detections.get(i)) for i in range(min(SAMPLE_IMAGES, len(records)))]
        return result

    # -- what a run writes --------------------------------------------------------------------------
    def write_artifacts(self, result: dict[str, Any], out: Path) -> list[str]:
        """``val_detections.png`` (the first validation images: ground truth thin green, predictions
        scoring >= 0.5 coloured and labelled) and ``per_class_ap.png``, each when there is something to draw."""
        from .plots import plot_per_class_ap, sample_sheet

        written = []
        if self._samples:
            sample_sheet(self._samples, self.labels, out / "val_detections.png", DRAW_THRESHOLD)
            written.append("val_detections.png")
        if result.get("per_class_ap"):
            plot_per_class_ap(result, out / "per_class_ap.png")
            written.append("per_class_ap.png")
        return written

    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        return {"per_class_ap": result.get("per_class_ap", [])}

    # -- zoo export --------------------------------------------------------------------------------
    def export_module(self, model: TaskModel) -> torch.nn.Module:
        """Not exportable yet: torchvision's detection heads take a list of images and return one dict per
        image with a data-dependent number of boxes (post-processing, NMS), which its exporters trace only
        for torchvision's own end-to-end models, not for a head on a separate backbone."""
        raise ZooError(
            "object-detection models do not export yet: torchvision's detection heads return a variable number of"
            " boxes per image (NMS inside), which torch.export and TorchScript tracing cannot give a fixed"
            " graph for here; use zoo predict or modelzoo.load"
        )

    # -- using a model ------------------------------------------------------------------------------
    def predict(
        self,
        model: TaskModel,
        inputs: Any,
        score_threshold: float = 0.5,
        max_detections: int | None = None,
        batch_size: int = 8,
        **_: Any,
    ) -> list[list[dict[str, Any]]]:
        """Per image (paths, PIL images or CHW tensors): ``[{"label", "score", "box": [x0, y0, x1, y1]}]``,
        best first, in the image's pixels."""
        return predict_detections(model, inputs, score_threshold, max_detections, batch_size)

    def predict_input(self, model: TaskModel, path: str, **options: Any) -> Any:
        """``zoo predict RUN DIR/``: each image decoded in a DataLoader worker (the head resizes)."""
        return as_float_image(path)

    def prediction_row(self, model: TaskModel, path: str, result: Any, files: Path, **options: Any) -> dict[str, Any]:
        """The number of boxes and the boxes (``[{"label", "score", "box": [x0, y0, x1, y1]}]``, best first)."""
        return {"count": len(result), "detections": result}

    def save_predictions(
        self, model: TaskModel, inputs: list[Any], results: list[Any], out: str | None = None, **_: Any
    ) -> list[Path]:
        """``--out``: the boxes drawn into that image file (one input) or into ``out/<name>.png``."""
        return save_annotated(inputs, results, out, model.labels) if out else []

    def show(
        self, model: TaskModel, inputs: list[Any], results: list[Any], score_threshold: float = 0.5, **_: Any
    ) -> str:
        lines = []
        for item, dets in zip(inputs, results):
            lines.append(f"{item}: {len(dets)} detection{'s' * (len(dets) != 1)} (score >= {score_threshold})")
            for det in dets:
                box = ", ".join(f"{v:.0f}" for v in det["box"])
                lines.append(f"  {det['label']} {det['score']:.3f} [{box}]")
        return "\n".join(lines)

    def to_json(self, inputs: list[Any], results: list[Any]) -> list[dict[str, Any]]:
        return [{"input": str(item), "detections": dets} for item, dets in zip(inputs, results)]

    def report(self, result: dict[str, Any], examples: int | None = None) -> str:
        """The metrics line, then AP and AP@.5 per class ("-" for a class without objects: no AP, not 0)."""
        lines = [super().report(result, examples)]
        rows = result.get("per_class_ap")
        if rows:
            width = max(len(row["label"]) for row in rows)
            lines.append(f"{'class'.ljust(width)}       AP  AP@.5  objects")
            for row in rows:
                ap, ap50 = (f"{v:.4f}" if v is not None else "   -  " for v in (row["ap"], row["ap_50"]))
                lines.append(f"{row['label'].ljust(width)}  {ap:>7}  {ap50:>5}  {row['num_objects']:7d}")
        return "\n".join(lines)

    def card(self, config: dict[str, Any], summary: dict[str, Any]) -> CardInfo:
        results: list[str] = []
        rows = summary.get("per_class_ap")
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            results += ["<details><summary>Per-class AP</summary>", ""]
            results += ["| class | AP@[.5:.95] | AP@0.5 | objects |", "|---|---|---|---|"]
            for row in rows:
                ap, ap50 = ("-" if row.get(k) is None else row[k] for k in ("ap", "ap_50"))
                results.append(f"| {row.get('label', '')} | {ap} | {ap50} | {row.get('num_objects', '')} |")
            results += ["", "</details>", ""]
        return CardInfo(
            example="image.jpg",
            input=describe_input(config),
            metric_names={"map": "mAP@[.5:.95]", "map_50": "mAP@0.5", "map_75": "mAP@0.75"},
            results=results,
        )


def describe_input(config: dict[str, Any]) -> str:
    """How the detector treats an input image, from the head options recorded in ``config.json``."""
    options = (config.get("head") or {}).get("options") or {}
    pre = config.get("preprocess") or {}
    if options.get("size"):
        resize = f"resized to {options['size']}x{options['size']} px by the head"
    elif options.get("min_size"):
        resize = f"resized by the head so its shorter side is {options['min_size']} px"
        if options.get("max_size"):
            resize += f" and its longer side at most {options['max_size']} px"
    else:
        resize = "resized by the head"
    norm = f", normalised with mean {pre['mean']}, std {pre['std']}" if pre.get("mean") and pre.get("std") else ""
    return f"an RGB image of any size, {resize}{norm}; boxes come back xyxy in the input image's pixels"


def _detection_losses(model: TaskModel, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]):
    """One training step's losses: the head detects on the backbone's pyramid (``TaskModel.forward(step=)``)."""
    losses, _ = model.head.detect(model.backbone, images, targets)
    return losses
