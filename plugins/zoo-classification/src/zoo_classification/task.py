"""Image classification: ImageFolder directories or registered datasets, cross-entropy, accuracy.

The recipe's ``[data]`` table is :class:`ImageData`; everything is validated before training starts.
Preprocessing comes from the backbone's pretrained config (input size, mean/std, interpolation, crop),
overridable per recipe, and is recorded in the model's config so ``zoo predict`` preprocesses exactly
as evaluation did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelzoo.sdk import DataConfig, RecipeError, TaskModel, ZooError, is_image_file

from .augment import PRESETS, check, mix_batch
from .classify import ClassificationTask, check_top_k
from .data import ImageData as LoadedData
from .data import ImageDataset, Split, build_transform, image_folder_split, load_image_data
from .labels import match_folders, read_label_map

AUGMENTS = PRESETS


@dataclass
class ImageData(DataConfig):
    """``[data]`` of an image-classification recipe: ``dataset`` (registered) or ``path`` (an ImageFolder)."""

    #: an ImageFolder: ``path/<class>/<image>``, or ``path/train/<class>/...`` + ``path/val/<class>/...``
    path: str | None = None
    train_dir: str = "train"
    val_dir: str = "val"
    #: square input size; default: the backbone's pretrained size
    image_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    #: for stages with ``augment = true``: "none", "light" (random resized crop + flip), or light followed by
    #: "trivialaugment", "randaugment" or "autoaugment" (torchvision's policies)
    augment: str = "none"
    #: in augmented stages, the probability of erasing a random rectangle of each image (e.g. 0.25)
    random_erasing: float = 0.0
    #: in augmented stages, the probability that a batch is mixed with MixUp (labels mixed alike)
    mixup: float = 0.0
    #: MixUp's Beta(alpha, alpha) mixing proportion
    mixup_alpha: float = 0.2
    #: in augmented stages, the probability that a batch is mixed with CutMix (labels mixed by area)
    cutmix: float = 0.0
    #: CutMix's Beta(alpha, alpha) area proportion
    cutmix_alpha: float = 1.0
    #: cross-entropy label smoothing in training (e.g. 0.1); evaluation losses are unsmoothed
    label_smoothing: float = 0.0
    #: per-class loss weights in training: "balanced" (inverse to the training counts) or one number per class
    class_weights: str | list[float] | None = None
    #: "error" stops at an unreadable image with its name; "skip" counts and skips it
    on_bad_image: str = "error"
    #: a JSON object or folder,label CSV naming the class of each folder whose name is not its label
    #: (for labels no folder can be named, like "T-shirt/top"; see zoo_classification.labels)
    label_map: str | None = None


class ImageClassification(ClassificationTask):
    Data = ImageData
    augment_presets = PRESETS
    batch_input = 0  # batches are (images, labels): a partial fine-tune trains on the frozen layers' outputs

    @classmethod
    def validate_data(cls, data: ImageData, recipe: Any) -> None:
        if bool(data.dataset) == bool(data.path):
            raise RecipeError(
                "data: give exactly one of data.dataset (a registered dataset, see zoo list --kind dataset)"
                " or data.path (an ImageFolder directory)"
            )
        if data.image_size is not None and not 1 <= data.image_size <= 4096:
            raise RecipeError(f"data.image_size: {data.image_size} must be between 1 and 4096 pixels")
        for key in ("mean", "std"):
            value = getattr(data, key)
            if value is not None and len(value) != 3:
                raise RecipeError(f"data.{key}: give 3 numbers (R, G, B)")
        if data.std is not None and any(v <= 0 for v in data.std):
            raise RecipeError(f"data.std: {data.std} must be 3 numbers > 0 (they divide the pixels)")
        if data.augment not in AUGMENTS:
            raise RecipeError(f"data.augment: {data.augment!r} is not one of {', '.join(AUGMENTS)}")
        check(data)
        cls.check_loss_options(data)
        if data.on_bad_image not in ("error", "skip"):
            raise RecipeError('data.on_bad_image: use "error" (stop with the file\'s name) or "skip" (count and skip)')

    @classmethod
    def starter_data(cls, path: Path) -> dict[str, Any] | None:
        """``zoo recipe new --data DIR``: an ImageFolder (``DIR/<class>/<image>``, or ``train/`` + ``val/``
        holding those) is image-classification data; anything else is not recognised."""
        if not path.is_dir():
            return None
        root = path / "train" if (path / "train").is_dir() else path
        classes = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(classes) < 2 or not all(any(is_image_file(f) for f in d.iterdir()) for d in classes):
            return None
        return {"path": str(path)} if (path / "val").is_dir() else {"path": str(path), "val_split": 0.2}

    # -- data ---------------------------------------------------------------------------------------
    def load_data(self) -> None:
        self.loaded = load_image_data(self.data, self.recipe.seed_for_data, self.registered_dataset, self.track)
        if len(self.loaded.labels) < 2:
            raise ZooError(
                f"image classification needs at least 2 classes; the data has {self.loaded.labels} (a model with one"
                " class is always right and learns nothing)"
            )
        if self.data.label_map and self.data.path:  # folders named otherwise than their classes
            mapping = read_label_map(self.data.label_map)
            named = [mapping.get(folder, folder) for folder in self.loaded.labels]
            if len(set(named)) != len(named):
                raise RecipeError(f"data.label_map gives two folders the same label ({named})")
            self.loaded.labels = named
        self.labels, self.dataset_name, self.data_info = self.loaded.labels, self.loaded.name, self.loaded.info
        self.set_loss_options(self.data, self.loaded.train.targets)

    def load_eval_data(self, path: str, model: TaskModel) -> None:
        """An ImageFolder (or its ``val/``) whose folders name the model's labels, or their safe forms,
        or are mapped by ``data.label_map``; a subset of the classes is fine. Targets follow the model."""
        d = self.data
        root = Path(path)
        scan_root = root / d.val_dir if (root / d.val_dir).is_dir() else root
        folders, split, info = image_folder_split(scan_root, d.on_bad_image, self.track)
        mapping = read_label_map(d.label_map) if d.label_map else None
        index = match_folders(folders, model.labels, mapping)
        split = Split(targets=[index[t] for t in split.targets], paths=split.paths)
        self.loaded = LoadedData(name=root.name, labels=model.labels, train=Split(targets=[]), val=split, info=info)
        self.labels, self.dataset_name = list(model.labels), root.name
        self.data_info = {**info, "num_val": len(split), "folders": dict(zip(folders, index))}

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, assemble) -> TaskModel:
        d = self.data
        preprocess: dict[str, Any] = {}
        if d.image_size:
            preprocess["input_size"] = [3, d.image_size, d.image_size]
        if d.mean:
            preprocess["mean"] = d.mean
        if d.std:
            preprocess["std"] = d.std
        model = assemble(labels=self.labels, preprocess=preprocess)
        if self.in_memory:  # small in-memory images are resized whole; predict on files must not crop either
            model.config["preprocess"]["crop_pct"] = 1.0
        return model

    def advice(self, model: TaskModel) -> list[str]:
        """An input far below the size the backbone was pretrained at gives features of little use."""
        trained = (model.backbone.pretrained_cfg.get("input_size") or [0])[-1]
        size = self.data.image_size
        if size and trained and size < max(16, trained // 8):
            return [
                f"data.image_size = {size} px is far below the {trained} px {self.recipe.model.backbone} was"
                f" pretrained at; its features will be poor (try {max(32, trained // 4)} px or more)"
            ]
        return []

    @property
    def in_memory(self) -> bool:
        return self.loaded.val.images is not None

    @property
    def augmenting(self) -> bool:
        d = self.data
        return d.augment != "none" or d.random_erasing > 0 or d.mixup > 0 or d.cutmix > 0

    def prepare(self, model: TaskModel) -> None:
        pre, from_files, d = model.preprocess, not self.in_memory, self.data
        self.eval_tf = build_transform(pre, train=False, augment="none", from_files=from_files)
        self.train_tf = build_transform(pre, True, d.augment, from_files, random_erasing=d.random_erasing)
        self.mixing = False

    def dataset(self, split: str, augment: bool = False):
        if split == "train":
            self.mixing = augment and (self.data.mixup > 0 or self.data.cutmix > 0)  # this stage's batches
            return ImageDataset(self.loaded.train, self.train_tf if augment else self.eval_tf)
        return ImageDataset(self.loaded.val, self.eval_tf)

    def loss(self, model: TaskModel, batch):
        """Cross-entropy; in a stage that augments with ``data.mixup`` / ``data.cutmix``, on mixed batches."""
        if not (getattr(self, "mixing", False) and model.training):
            return super().loss(model, batch)
        x, y = batch
        x, soft = mix_batch(x, y, len(self.labels), self.data)
        with self.autocast():
            logits = model(x)
        return self.cross_entropy(logits.float(), soft), len(y)

    # -- using a model ------------------------------------------------------------------------------
    def predict(self, model: TaskModel, inputs: Any, top_k: int = 5, batch_size: int = 32, **_: Any) -> list:
        """Top-k ``(label, probability)`` per image (paths, PIL images or CHW tensors)."""
        from .predict import predict_images

        return predict_images(model, inputs, top_k=check_top_k(top_k), batch_size=batch_size)

    def predict_input(self, model: TaskModel, path: str, **options: Any):
        """``zoo predict RUN DIR/``: decoded, resized and normalised in a DataLoader worker."""
        from .predict import FileInput

        if not hasattr(self, "_file_input"):
            self._file_input = FileInput()
        return self._file_input(model, path)

    def predict_collate(self, items: list[Any]):
        import torch

        return torch.stack(items)

    def predict_batch(self, model: TaskModel, batch: Any, top_k: int = 5, **_: Any) -> list:
        from .predict import predict_tensor_batch

        return predict_tensor_batch(model, batch, check_top_k(top_k))

    def error_example(self, dataset: Any, index: int) -> tuple[str, Any]:
        """The image's path (or its index in an in-memory dataset) and its pixels for the gallery."""
        split = dataset.split
        if split.paths is not None:
            from modelzoo.sdk import read_image

            return split.paths[index], read_image(split.paths[index])
        image = split.images[index]
        return str(index), image.numpy()

    def card(self, config: dict[str, Any], summary: dict[str, Any]):
        info = super().card(config, summary)
        pre = config.get("preprocess") or {}
        info.example = "image.jpg"
        if pre:
            info.input = (
                f"{'x'.join(map(str, pre.get('input_size', [])))} RGB image, mean {pre.get('mean')}, std {pre.get('std')},"
                f" {pre.get('interpolation', '-')} resize, crop {pre.get('crop_pct', '-')}"
            )
        return info
