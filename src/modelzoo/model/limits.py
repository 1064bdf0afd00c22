"""The bounds on every ``config.json`` value that sizes an allocation or reaches a terminal.

A model folder or a pulled repo is somebody else's file: its ``num_classes`` sizes the head, its labels
are printed, its preprocessing sizes every resized image. The rules live here, once: assembly applies
them to what it builds (so nothing unloadable is ever saved), :func:`modelzoo.model.assembly.from_config`
to what it rebuilds, and a task's transforms to the preprocessing they use (``modelzoo.sdk.check_preprocess``).
Each failure is one line naming the field.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ZooError

#: the most outputs (classes) a model may have: far above any real label set (ImageNet-21k has 21,843)
MAX_OUTPUTS = 100_000
#: the longest label: a class name, not a document
MAX_LABEL_CHARS = 200
#: an input side (``input_size``, ``image_size``) in pixels
MAX_SIDE = 4096
#: ``crop_pct`` lies in (CROP_LOW, CROP_HIGH]; the resize before the crop (side / crop_pct) is at most
#: MAX_RESIZE pixels (a crop_pct of 0.0001 once asked for 307 GB); timm's own configs go up to 1.15
CROP_LOW, CROP_HIGH = 0.05, 1.5
MAX_RESIZE = 2 * MAX_SIDE
#: the most parameters a head may have (2 GB of float32): far above any real head (the shipped ones have tens
#: of millions), far below what an option like ``hidden = 1e9`` would ask the allocator for
MAX_HEAD_PARAMETERS = 500_000_000
#: the most parameters a backbone built with options from a recipe or a config may have (16 GB of float32;
#: the largest catalog architectures have under 2 billion)
MAX_BACKBONE_PARAMETERS = 4_000_000_000


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_label(label: Any, where: str) -> str:
    """A label is a short printable string; a lone surrogate (a file name decoded under a non-UTF-8
    locale) would corrupt the model's config.json and every line it is printed on."""
    if not isinstance(label, str) or not label:
        raise ZooError(f"{where}: {label!r:.60} is not a label (a non-empty string)")
    if len(label) > MAX_LABEL_CHARS:
        raise ZooError(f"{where}: a label of {len(label)} characters (at most {MAX_LABEL_CHARS}): {label[:40]!r}...")
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:
        raise ZooError(
            f"{where}: label {label!r:.80} is not valid text (undecodable bytes; rename it or set a UTF-8 locale)"
        ) from None
    if not label.isprintable():
        raise ZooError(f"{where}: label {label!r:.80} holds control characters; use printable names")
    return label


def check_outputs(num_classes: Any, labels: Any, where: str = "config.json") -> int:
    """``num_classes`` is an int in [1, MAX_OUTPUTS] and ``labels`` (when given) are that many checked labels."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise ZooError(f"{where}: num_classes must be a whole number, not {num_classes!r:.40}")
    if not 1 <= num_classes <= MAX_OUTPUTS:
        raise ZooError(f"{where}: num_classes = {num_classes} must be between 1 and {MAX_OUTPUTS:,}")
    if labels is None:
        return num_classes
    if not isinstance(labels, (list, tuple)):
        raise ZooError(f"{where}: labels must be a list of names, not {type(labels).__name__}")
    if len(labels) != num_classes:
        raise ZooError(f"{where}: {len(labels):,} labels for num_classes = {num_classes}; they must match")
    for i, label in enumerate(labels):
        check_label(label, f"{where}: labels[{i}]")
    return num_classes


def _side(value: Any, field: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise ZooError(f"{where}: preprocess.{field} = {value!r:.60} must be whole numbers in [1, {MAX_SIDE}]")


def check_preprocess(preprocess: Any, where: str = "config.json") -> dict[str, Any]:
    """The sizing fields of a model's ``preprocess`` that are present, bounded: ``input_size`` (sides in
    [1, MAX_SIDE]), ``image_size``, ``crop_pct`` in (CROP_LOW, CROP_HIGH] with the resize it implies at
    most MAX_RESIZE pixels, ``mean``/``std`` 1 or 3 finite numbers (std > 0). Other keys are the task's."""
    if preprocess is None:
        return {}
    if not isinstance(preprocess, dict):
        raise ZooError(f"{where}: preprocess must be a table of values, not {type(preprocess).__name__}")
    size = preprocess.get("input_size")
    longest = 1
    if size is not None:
        if not isinstance(size, (list, tuple)) or not 1 <= len(size) <= 3:
            raise ZooError(f"{where}: preprocess.input_size = {size!r:.60} must be [channels, height, width]")
        for v in size:
            _side(v, "input_size", where)
        longest = max(size[-2:])
    if preprocess.get("image_size") is not None:
        _side(preprocess["image_size"], "image_size", where)
        longest = max(longest, preprocess["image_size"])
    crop = preprocess.get("crop_pct")
    if crop is not None:
        if not _number(crop) or not CROP_LOW < crop <= CROP_HIGH:
            raise ZooError(f"{where}: preprocess.crop_pct = {crop!r:.40} must be a number in ({CROP_LOW}, {CROP_HIGH}]")
        if longest / crop > MAX_RESIZE:
            raise ZooError(
                f"{where}: preprocess.crop_pct = {crop} resizes {longest} px inputs to {longest / crop:.0f} px"
                f" (at most {MAX_RESIZE}); raise crop_pct"
            )
    for key in ("mean", "std"):
        values = preprocess.get(key)
        if values is None:
            continue
        if (
            not isinstance(values, (list, tuple))
            or len(values) not in (1, 3)
            or not all(_number(v) and abs(v) <= 1e6 for v in values)
            or (key == "std" and any(v <= 0 for v in values))
        ):
            rule = "positive " if key == "std" else ""
            raise ZooError(f"{where}: preprocess.{key} = {values!r:.80} must be 1 or 3 finite {rule}numbers")
    return preprocess


def check_size(parameters: int, limit: int, what: str, options: dict[str, Any], table: str) -> None:
    """A module's parameter count (measured on the meta device, before anything is allocated) is bounded;
    the line names the options that made it and the recipe table they come from."""
    if parameters > limit:
        shown = ", ".join(f"{k} = {v!r:.20}" for k, v in options.items()) or "its defaults"
        raise ZooError(
            f"{what}: {shown} make {parameters:,} parameters (at most {limit:,}); lower {table}"
            " (or the config.json that set them)"
        )


__all__ = [
    "MAX_BACKBONE_PARAMETERS",
    "MAX_HEAD_PARAMETERS",
    "MAX_LABEL_CHARS",
    "MAX_OUTPUTS",
    "MAX_SIDE",
    "check_label",
    "check_outputs",
    "check_preprocess",
    "check_size",
]
