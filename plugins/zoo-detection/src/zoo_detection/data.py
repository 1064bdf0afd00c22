"""Object-detection data: COCO JSON or Pascal-VOC XML files, or a registered detection dataset.

Data are validated before any training: a missing or unreadable image, an annotation whose image or
category is unknown, a degenerate box or one outside its image each stop the run with one line naming
the file/annotation and the fix, or (``data.on_bad_image = "skip"``) are counted and skipped.
Records keep boxes xyxy in pixels and 0-based label indices; the dataset hands the head labels 1..K
(0 is background), as torchvision's detectors expect.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch
from torch.utils.data import Dataset

from modelzoo.sdk import BadImage, ZooError, check_image, image_size, read_image_tensor

FORMATS = ("coco", "voc")
SKIP_HINT = 'or set data.on_bad_image = "skip" to count and skip it'


@dataclass
class Record:
    """One image and its objects: boxes xyxy in pixels, label indices into the label list (0-based)."""

    path: str
    width: int
    height: int
    boxes: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    crowd: list[bool] = field(default_factory=list)
    source_id: Any = None


@dataclass
class DetectionData:
    """The loaded splits of a recipe's data, with the label names (index = label) and facts for summary.json."""

    name: str
    labels: list[str]
    train: list[Record]
    val: list[Record]
    info: dict[str, Any] = field(default_factory=dict)


class Problems:
    """Collects data problems: each is one line; ``raise_if_any`` stops with the first (and a count)."""

    def __init__(self, on_bad: str) -> None:
        self.on_bad = on_bad
        self.lines: list[str] = []
        self.skipped_images = 0
        self.skipped_annotations = 0

    def add(self, line: str, image: bool) -> None:
        if self.on_bad == "skip":
            if image:
                self.skipped_images += 1
            else:
                self.skipped_annotations += 1
        else:
            self.lines.append(line)

    def raise_if_any(self) -> None:
        if self.lines:
            more = f" (and {len(self.lines) - 1} more problem(s) like it)" if len(self.lines) > 1 else ""
            raise ZooError(self.lines[0] + more)


# -- loading and validation -------------------------------------------------------------------
def _relative_inside(name: str) -> bool:
    """Whether an annotation's image name stays inside the images folder: no absolute path, no ``..``.
    Checked on the name, not the resolved path, so an images folder that links to another disk works."""
    pure = PurePosixPath(name.replace("\\", "/"))
    return not pure.is_absolute() and ".." not in pure.parts and not PureWindowsPath(name).drive


def _shown(value: Any) -> str:
    """An id, name or value as a one-line message shows it: as is when plain, else quoted and cut."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.isprintable() and 0 < len(value) <= 80 and value.strip() == value:
        return value
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _id(value: Any) -> int | str | None:
    """A COCO id that can be looked up (an integer or a string), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return value


def _check_box(
    box: list[float], width: int, height: int, where: str, problems: Problems, tolerance: float = 1.0
) -> list[float] | None:
    """A valid xyxy box clipped to the image (within ``tolerance`` px), or None after reporting it."""
    x0, y0, x1, y1 = box
    if not all(math.isfinite(v) for v in box):
        problems.add(
            f"{where}: box {_fmt_box(box)} has coordinates that are not finite numbers; fix it, {SKIP_HINT}", False
        )
        return None
    if x1 <= x0 or y1 <= y0:
        problems.add(
            f"{where}: box {_fmt_box(box)} has zero or negative width/height; fix or remove it, {SKIP_HINT}", False
        )
        return None
    if x0 < -tolerance or y0 < -tolerance or x1 > width + tolerance or y1 > height + tolerance:
        problems.add(
            f"{where}: box {_fmt_box(box)} (xyxy) lies outside the {width}x{height} image; fix the coordinates, {SKIP_HINT}",
            False,
        )
        return None
    clipped = [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)]
    if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
        problems.add(f"{where}: box {_fmt_box(box)} is less than 1 px inside the image; remove it, {SKIP_HINT}", False)
        return None
    return clipped


def _fmt_box(box) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _coco_numbers(bbox: Any) -> list[float] | None:
    """A COCO ``[x, y, width, height]`` as floats, or None (wrong length, not numbers, beyond any float)."""
    if not (isinstance(bbox, list) and len(bbox) == 4):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
        return None
    try:
        return [float(v) for v in bbox]
    except OverflowError:
        return None


def _read_coco_json(json_path: Path) -> dict[str, Any]:
    """The annotation file's JSON object, or one line saying why it is not a COCO detection file."""
    if not json_path.is_file():
        raise ZooError(f"{json_path}: no such COCO annotation file; check data.train_file / data.val_file")
    try:
        data = json.loads(json_path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ZooError(f"{json_path}: not UTF-8 text (byte {exc.start}); is it a COCO annotation file?") from None
    except OSError as exc:
        raise ZooError(f"{json_path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # malformed, nested too deeply, or an absurdly long number
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ZooError(f"{json_path}: not valid JSON ({detail}); is it a COCO annotation file?") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise ZooError(f"{json_path}: a COCO detection file needs 'images' and 'categories' lists (and 'annotations')")
    if not isinstance(data.get("annotations", []), list):
        raise ZooError(f"{json_path}: 'annotations' must be a list of annotation objects")
    return data


def _coco_categories(json_path: Path, raw: list[Any]) -> tuple[list[str], dict[int | str, int]]:
    """Category names ordered by id, and id -> label index; a malformed category stops the load."""
    cats = []
    for i, c in enumerate(raw):
        cid = _id(c.get("id")) if isinstance(c, dict) else None
        if cid is None or "name" not in c or isinstance(c["name"], (dict, list)) or c["name"] is None:
            raise ZooError(
                f"{json_path}: category {i + 1} ({_shown(c)}) needs an 'id' (a number) and a 'name'; fix 'categories'"
            )
        cats.append((cid, str(c["name"])))
    if len({type(cid) for cid, _ in cats}) > 1:
        raise ZooError(f"{json_path}: category ids mix numbers and strings; give every category a numeric 'id'")
    ids = [cid for cid, _ in cats]
    if len(set(ids)) != len(ids):
        twice = next(cid for cid in ids if ids.count(cid) > 1)
        raise ZooError(f"{json_path}: category id {_shown(twice)} is used twice; give each category its own id")
    cats.sort(key=lambda c: c[0])
    names = [name for _, name in cats]
    if len(set(names)) != len(names):
        raise ZooError(f"{json_path}: category names repeat ({names}); give each category a unique name")
    if not names:
        raise ZooError(f"{json_path}: 'categories' is empty; list the object classes with ids and names")
    return names, {cid: i for i, (cid, _) in enumerate(cats)}


def load_coco(
    json_path: str | Path, images_dir: str | Path | None, on_bad: str = "error", labels: list[str] | None = None
) -> tuple[list[Record], list[str], dict[str, int]]:
    """Read and validate a COCO detection JSON; returns records, label names (categories by id), counts.

    ``labels`` (the training split's) must match this file's categories, so one label index means one
    class across splits. A malformed category stops the load; a malformed image or annotation entry is
    a problem like any other (an error naming it, or counted and skipped with ``on_bad = "skip"``).
    """
    json_path = Path(json_path)
    data = _read_coco_json(json_path)
    images_dir = Path(images_dir) if images_dir else json_path.parent
    names, cat_index = _coco_categories(json_path, data["categories"])
    if labels is not None and names != labels:
        raise ZooError(
            f"{json_path}: categories {names} differ from the training file's {labels}; use the same categories in every split"
        )
    problems = Problems(on_bad)
    records: dict[Any, Record] = {}
    known_ids: set[Any] = set()
    for k, im in enumerate(data["images"]):
        image_id = _id(im.get("id")) if isinstance(im, dict) else None
        if image_id is None:
            problems.add(
                f"{json_path.name}: images entry {k + 1} ({_shown(im)}) needs an 'id' (a number or string) and a"
                f" 'file_name'; fix it, {SKIP_HINT}",
                True,
            )
            continue
        file_name = im.get("file_name")
        where = f"{json_path.name}: image id {_shown(image_id)} ({_shown(file_name)})"
        if image_id in known_ids:
            problems.add(
                f"{where}: the id is used by an earlier image too; give each image its own id, {SKIP_HINT}", True
            )
            continue
        known_ids.add(image_id)
        if isinstance(file_name, str) and not _relative_inside(file_name):
            problems.add(
                f"{where}: file_name must be relative to {images_dir} and stay inside it (no leading /, no ..);"
                f" fix file_name or data.images_dir, {SKIP_HINT}",
                True,
            )
            continue
        path = images_dir / file_name if isinstance(file_name, str) and file_name else None
        if path is None or not path.is_file():
            problems.add(
                f"{where}: file not found in {images_dir}; fix file_name or data.images_dir, {SKIP_HINT}", True
            )
            continue
        size = _decodable_size(path)
        if isinstance(size, str):
            problems.add(f"{where}: unreadable image ({size}); replace the file, {SKIP_HINT}", True)
            continue
        if (im.get("width"), im.get("height")) not in ((None, None), size):
            problems.add(
                f"{where}: JSON says {_shown(im.get('width'))}x{_shown(im.get('height'))} but the file is"
                f" {size[0]}x{size[1]}; fix width/height, {SKIP_HINT}",
                True,
            )
            continue
        records[image_id] = Record(str(path), size[0], size[1], source_id=image_id)
    for k, ann in enumerate(data.get("annotations", [])):
        if not isinstance(ann, dict):
            problems.add(
                f"{json_path.name}: annotations entry {k + 1} ({_shown(ann)}) is not an object; fix it, {SKIP_HINT}",
                False,
            )
            continue
        image_id = _id(ann.get("image_id"))
        rec = records.get(image_id)
        where = f"{json_path.name}: annotation id {_shown(ann.get('id'))}"
        if rec is None:
            if image_id not in known_ids:
                problems.add(
                    f"{where}: image_id {_shown(ann.get('image_id'))} is not in 'images'; fix or remove it, {SKIP_HINT}",
                    False,
                )
            continue  # its image was reported (or skipped) already
        where += f" (image {_shown(Path(rec.path).name)})"
        category = _id(ann.get("category_id"))
        if category not in cat_index:
            problems.add(
                f"{where}: category_id {_shown(ann.get('category_id'))} is not among the categories {sorted(cat_index)};"
                f" fix it or add the category, {SKIP_HINT}",
                False,
            )
            continue
        xywh = _coco_numbers(ann.get("bbox"))
        if xywh is None:
            problems.add(
                f"{where}: bbox {_shown(ann.get('bbox'))} is not [x, y, width, height]; fix it, {SKIP_HINT}", False
            )
            continue
        x, y, w, h = xywh
        box = _check_box([x, y, x + w, y + h], rec.width, rec.height, where, problems)
        if box is None:
            continue
        rec.boxes.append(box)
        rec.labels.append(cat_index[category])
        rec.crowd.append(bool(ann.get("iscrowd", 0)))
    problems.raise_if_any()
    counts = {"skipped_images": problems.skipped_images, "skipped_annotations": problems.skipped_annotations}
    return list(records.values()), names, counts


def _voc_id_ok(image_id: str) -> bool:
    """A VOC image id is a plain file name (no folder, no way out of ``Annotations/``)."""
    return bool(image_id) and image_id not in (".", "..") and not any(c in image_id for c in "/\\\0")


def load_voc(
    root: str | Path,
    ids: list[str] | None,
    on_bad: str = "error",
    labels: list[str] | None = None,
    annotations_dir: str = "Annotations",
    images_dir: str = "JPEGImages",
) -> tuple[list[Record], list[str], dict[str, int]]:
    """Read and validate Pascal-VOC XML files (``root/Annotations/<id>.xml``, images in ``root/JPEGImages``).

    ``ids`` None means every XML file. Labels are ``labels`` when given (unknown names are errors), else
    the sorted set of names found. ``difficult`` objects become crowd (ignored) regions, as in VOC's
    evaluation. VOC's 1-based pixel corners become 0-based xyxy boxes.
    """
    root = Path(root)
    ann_dir = root / annotations_dir
    if not ann_dir.is_dir():
        raise ZooError(
            f"{root}: no {annotations_dir}/ folder; a VOC root holds {annotations_dir}/*.xml and {images_dir}/"
        )
    if ids is None:
        ids = sorted(p.stem for p in ann_dir.glob("*.xml"))
    problems = Problems(on_bad)
    parsed: list[tuple[Record, list[tuple[str, list[float], bool, str]]]] = []
    for image_id in ids:
        xml_path = ann_dir / f"{image_id}.xml"
        where = f"{annotations_dir}/{_shown(image_id)}.xml"
        if not _voc_id_ok(image_id):
            problems.add(
                f"{where}: {_shown(image_id)} is not an image id (a plain file name); fix the split file, {SKIP_HINT}",
                True,
            )
            continue
        if not xml_path.is_file():
            problems.add(f"{where}: not found (listed in the split file); add it or remove the id, {SKIP_HINT}", True)
            continue
        try:
            tree = ET.parse(xml_path).getroot()
        except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: an unknown declared encoding
            detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            problems.add(f"{where}: invalid XML ({detail}); fix the file, {SKIP_HINT}", True)
            continue
        except OSError as exc:
            problems.add(f"{where}: cannot read it ({exc.strerror or exc}), {SKIP_HINT}", True)
            continue
        file_name = (tree.findtext("filename") or "").strip() or f"{image_id}.jpg"
        if not _relative_inside(file_name):
            problems.add(
                f"{where}: <filename> {_shown(file_name)} must name a file inside {images_dir} (no leading /, no ..);"
                f" fix <filename>, {SKIP_HINT}",
                True,
            )
            continue
        path = root / images_dir / file_name
        if not path.is_file():
            problems.add(
                f"{where}: image {images_dir}/{_shown(file_name)} not found; fix <filename>, {SKIP_HINT}", True
            )
            continue
        size = _decodable_size(path)
        if isinstance(size, str):
            problems.add(
                f"{where}: image {images_dir}/{_shown(file_name)} is unreadable ({size}); replace it, {SKIP_HINT}", True
            )
            continue
        objects = []
        for k, obj in enumerate(tree.findall("object")):
            name = (obj.findtext("name") or "").strip()
            bb = obj.find("bndbox")
            owhere = f"{where}: object {k + 1} ({_shown(name) if name else 'no name'})"
            try:
                x0, y0, x1, y1 = (float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, TypeError, ValueError):
                problems.add(f"{owhere}: <bndbox> needs numeric xmin/ymin/xmax/ymax; fix it, {SKIP_HINT}", False)
                continue
            difficult = (obj.findtext("difficult") or "0").strip() == "1"
            objects.append((name, [x0 - 1, y0 - 1, x1, y1], difficult, owhere))
        parsed.append((Record(str(path), size[0], size[1], source_id=image_id), objects))
    names = list(labels) if labels is not None else sorted({o[0] for _, objs in parsed for o in objs if o[0]})
    index = {n: i for i, n in enumerate(names)}
    records = []
    for rec, objects in parsed:
        for name, box, difficult, owhere in objects:
            if name not in index:
                problems.add(
                    f"{owhere}: class {name!r} is not among the labels {names}; fix <name> or data.labels, {SKIP_HINT}",
                    False,
                )
                continue
            box = _check_box(box, rec.width, rec.height, owhere, problems)
            if box is None:
                continue
            rec.boxes.append(box)
            rec.labels.append(index[name])
            rec.crowd.append(difficult)
        records.append(rec)
    problems.raise_if_any()
    if not names:
        raise ZooError(f"{root}: no objects found in the VOC annotations")
    counts = {"skipped_images": problems.skipped_images, "skipped_annotations": problems.skipped_annotations}
    return records, names, counts


def _voc_ids(root: Path, split_file: str | None) -> list[str] | None:
    if split_file is None:
        return None
    path = Path(split_file) if Path(split_file).is_absolute() else root / split_file
    if not path.is_file():
        raise ZooError(f"{path}: no such VOC split file (one image id per line); check data.train_file / data.val_file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ZooError(
            f"{path}: not UTF-8 text (byte {exc.start}); a VOC split file lists one image id per line"
        ) from None
    except OSError as exc:
        raise ZooError(f"{path}: cannot read the VOC split file ({exc.strerror or exc})") from None
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _split_records(records: list[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(order) * fraction))
    val = set(order[:n_val])
    return [r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val]


def _limit(records: list[Record], limit: int | None, seed: int) -> list[Record]:
    if limit is None or limit >= len(records):
        return records
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed)).tolist()
    return [records[i] for i in sorted(order[:limit])]


def load_detection_data(cfg, seed: int, registered: Callable[[str], tuple[Any, Callable[..., Any]]]) -> DetectionData:
    """Resolve ``recipe.data`` (a registered detection dataset, COCO files or a VOC root) to validated splits.

    ``registered`` maps a dataset name to its spec and builder, checked to be for this task. A
    registered dataset's builder returns where its COCO/VOC files are, so its data goes through the
    same loader and validation as a user's files.
    """
    info: dict[str, Any] = {}
    fmt, path = cfg.format, cfg.path
    train_file, val_file, images_dir = cfg.train_file, cfg.val_file, cfg.images_dir
    if cfg.dataset:
        spec, builder = registered(cfg.dataset)
        built = builder(seed=seed, **cfg.options)
        fmt, path = built["format"], built.get("path")
        train_file, val_file, images_dir = built.get("train_file"), built.get("val_file"), built.get("images_dir")
        name = spec.name
        info.update(built.get("info", {}))
        info.update({k: v for k, v in spec.meta.items() if k in ("hub_id", "license")})
    else:
        name = Path(path).name if path else Path(train_file or "data").stem
    root = Path(path).expanduser() if path else None

    def resolve(p: str | None) -> Path | None:
        if p is None:
            return None
        q = Path(p).expanduser()
        return q if q.is_absolute() or root is None else root / q

    counts: dict[str, int] = {}

    def add(c: dict[str, int]) -> None:
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v

    if fmt == "coco":
        imgs = resolve(images_dir) if images_dir else None
        train, labels, c = load_coco(resolve(train_file), imgs, cfg.on_bad_image)
        add(c)
        if val_file:
            val, _, c = load_coco(resolve(val_file), imgs, cfg.on_bad_image, labels=labels)
            add(c)
        else:
            val = None
    elif fmt == "voc":
        opts = {k: cfg.options[k] for k in ("annotations_dir", "images_dir") if k in cfg.options}
        if images_dir:
            opts["images_dir"] = images_dir
        train, labels, c = load_voc(root, _voc_ids(root, train_file), cfg.on_bad_image, cfg.labels, **opts)
        add(c)
        if val_file:
            val, _, c = load_voc(root, _voc_ids(root, val_file), cfg.on_bad_image, labels, **opts)
            add(c)
        else:
            val = None
    else:
        raise ZooError(f"data.format {fmt!r} is not one of {', '.join(FORMATS)}")
    if val is None:
        if cfg.val_split <= 0:
            raise ZooError("no validation data: set data.val_file, or data.val_split = 0.2 to hold out part of train")
        train, val = _split_records(train, cfg.val_split, seed)
        info["val_split"] = cfg.val_split
    train = _limit(train, cfg.train_limit, seed)
    val = _limit(val, cfg.val_limit, seed + 1)
    if not train or not any(r.boxes for r in train):
        raise ZooError("the training split has no images with objects; check the annotation files")
    if not any(r.boxes for r in val):
        raise ZooError("the validation split has no objects to evaluate against; check data.val_file / data.val_split")
    info.update(counts)
    info.update(
        {
            "num_train": len(train),
            "num_val": len(val),
            "objects_train": sum(len(r.boxes) for r in train),
            "objects_val": sum(len(r.boxes) for r in val),
        }
    )
    return DetectionData(name=name, labels=labels, train=train, val=val, info=info)


# -- datasets and transforms ------------------------------------------------------------------
def _labels_getter(inputs):
    target = inputs[1]
    return target["labels"], target["iscrowd"]


def build_augment(augment: str):
    """Augmentations that move boxes with the image (``"light"``): flip, zoom-out, colour jitter."""
    if augment != "light":
        return None
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomZoomOut(fill=0, side_range=(1.0, 1.4), p=0.3),
            v2.ColorJitter(brightness=0.2, contrast=0.2),
            v2.SanitizeBoundingBoxes(min_size=1.0, labels_getter=_labels_getter),
        ]
    )


class DetectionDataset(Dataset):
    """(float image in [0, 1], target) pairs; target labels are 1..K (0 is background).

    ``target["image_id"]`` is the example's index in ``records``: evaluation results carry it, so
    they can be matched to their ground truth whatever order (or process) produced them.
    """

    def __init__(self, records: list[Record], augment=None, memory: dict[str, torch.Tensor] | None = None) -> None:
        self.records = records
        self.augment = augment
        self.memory = memory

    def __len__(self) -> int:
        return len(self.records)

    def image(self, index: int) -> torch.Tensor:
        """The record's image as a uint8 CHW RGB tensor; decoded once when ``memory`` keeps them."""
        path = self.records[index].path
        if self.memory is None:
            return read_image_tensor(path)
        if path not in self.memory:
            self.memory[path] = read_image_tensor(path)
        return self.memory[path]

    def __getitem__(self, index: int):
        rec = self.records[index]
        img = self.image(index)
        target = {
            "boxes": torch.tensor(rec.boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(rec.labels, dtype=torch.int64) + 1,
            "iscrowd": torch.tensor(rec.crowd, dtype=torch.bool),
            "image_id": index,
        }
        if self.augment is not None:
            from torchvision import tv_tensors

            target["boxes"] = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=img.shape[-2:])
            img, target = self.augment(tv_tensors.Image(img), target)
            img, target["boxes"] = img.as_subclass(torch.Tensor), target["boxes"].as_subclass(torch.Tensor)
        return img.float().div_(255), target


def collate_detection(batch):
    """Lists, not stacks: images differ in size and targets in length."""
    images, targets = zip(*batch)
    return list(images), list(targets)


def train_targets(targets: list[dict[str, Any]]) -> list[dict[str, torch.Tensor]]:
    """What the detector trains on: non-crowd boxes and their 1..K labels."""
    out = []
    for t in targets:
        keep = ~t["iscrowd"]
        out.append({"boxes": t["boxes"][keep], "labels": t["labels"][keep]})
    return out


def _decodable_size(path) -> tuple[int, int] | str:
    """(width, height) of an image that decodes through to its end, else why not: a truncated file or
    a decompression bomb is found while loading the annotations, not mid-epoch."""
    try:
        check_image(path)
    except BadImage as exc:
        return str(exc).rsplit(" (", 1)[-1].rstrip(")")
    return image_size(path) or "not an image"
