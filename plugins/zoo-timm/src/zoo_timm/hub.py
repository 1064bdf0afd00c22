"""timm-format Hub repos as backbones (``model.backbone = "hf-hub:ORG/NAME"``): what timm's own
``push_to_hf_hub`` / ``save_for_hf`` write, read as data.

A timm repo is a ``config.json`` with ``architecture``, ``num_classes``, ``model_args`` and
``pretrained_cfg`` (preprocessing) plus ``model.safetensors``. The architecture must be one the installed
timm has; the preprocessing values are checked against sane bounds (a config is data from a stranger), and
the weights are the repo's ``model.safetensors`` at the resolved commit, sha256-checked by the core.
"""

from __future__ import annotations

import math
import re
from typing import Any

from modelzoo.sdk import PretrainedTag, Spec, ZooError

WEIGHTS = "model.safetensors"
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos", "box", "hamming")
#: timm writes these into ``model_args``; anything else there is refused (no arbitrary constructor kwargs)
MODEL_ARG_TYPES = (bool, int, float, str, type(None), list)
#: ``model_args`` the backbone build sets itself (timm records the classifier's ``num_classes`` there)
BUILD_ARGS = ("num_classes", "pretrained", "features_only", "pretrained_cfg", "pretrained_cfg_overlay", "out_indices")


def spec_name(repo: str) -> str:
    """``ORG/NAME`` -> a catalog-safe name (``ORG--NAME``), used for cache files and labels."""
    return re.sub(r"[^A-Za-z0-9_\-]", "-", repo.replace("/", "--"))


def _floats(value: Any, where: str, low: float, high: float) -> list[float]:
    if not (isinstance(value, (list, tuple)) and len(value) in (1, 3)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high for v in value
    ):
        raise ZooError(f"{where} must be 1 or 3 numbers in [{low}, {high}]")
    return [float(v) for v in value]


def preprocessing(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """``input_size``, ``mean``, ``std``, ``interpolation``, ``crop_pct`` from a timm ``pretrained_cfg``, bounded."""
    out: dict[str, Any] = {}
    size = cfg.get("input_size")
    if size is not None:
        if not (
            isinstance(size, (list, tuple))
            and len(size) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
            and 1 <= size[0] <= 16
            and all(8 <= v <= 4096 for v in size[1:])
        ):
            raise ZooError(f"{where}: pretrained_cfg.input_size must be [channels 1-16, height, width 8-4096]")
        out["input_size"] = [int(v) for v in size]
    if cfg.get("mean") is not None:
        out["mean"] = _floats(cfg["mean"], f"{where}: pretrained_cfg.mean", -10.0, 300.0)
    if cfg.get("std") is not None:
        out["std"] = _floats(cfg["std"], f"{where}: pretrained_cfg.std", 1e-6, 300.0)
    interpolation = cfg.get("interpolation")
    if interpolation is not None:
        if interpolation not in INTERPOLATIONS:
            raise ZooError(f"{where}: pretrained_cfg.interpolation must be one of {', '.join(INTERPOLATIONS)}")
        out["interpolation"] = interpolation
    crop = cfg.get("crop_pct")
    if crop is not None:
        if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0.1 <= crop <= 1.5:
            raise ZooError(f"{where}: pretrained_cfg.crop_pct must be a number in [0.1, 1.5]")
        out["crop_pct"] = float(crop)
    return out


def _model_args(config: dict[str, Any], where: str) -> dict[str, Any]:
    args = config.get("model_args") or {}
    if not isinstance(args, dict) or not all(
        isinstance(k, str) and k.isidentifier() and isinstance(v, MODEL_ARG_TYPES) for k, v in args.items()
    ):
        raise ZooError(f"{where}: model_args must map argument names to plain values")
    # what the backbone's own build decides (its output kind, the weights) is not the checkpoint's to say
    return {k: v for k, v in args.items() if k not in BUILD_ARGS}


def hub_spec(repo: str, sha: str, config: dict[str, Any], files: dict[str, Any]) -> Spec | None:
    """The backbone spec of a timm-format repo, or None when ``config`` is not timm's."""
    arch = config.get("architecture")
    if not isinstance(arch, str):
        return None
    where = f"hf-hub:{repo}@{sha[:12]}"
    cfg = config.get("pretrained_cfg", config)  # timm's legacy format keeps everything at the top
    if not isinstance(cfg, dict):
        raise ZooError(f"{where}: pretrained_cfg must be a table of preprocessing values")
    import timm

    if not re.match(r"^[A-Za-z0-9_.\-]+$", arch) or not timm.is_model(arch):
        raise ZooError(
            f"{where}: its config.json names architecture {arch[:80]!r}, which timm {timm.__version__} does not"
            " have; upgrade timm (pip install -U timm) or pick another repo"
        )
    num_classes = config.get("num_classes", cfg.get("num_classes"))
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)):
        raise ZooError(f"{where}: num_classes must be a whole number")
    license = cfg.get("license") if isinstance(cfg.get("license"), str) else None
    tags = []
    if WEIGHTS in files:
        tags.append(
            PretrainedTag(
                tag="hub",
                sources=[f"hf-hub:{repo}@{sha}::{WEIGHTS}"],
                sha256=files.get(WEIGHTS),
                license=license,
                num_classes=num_classes,
                description=f"the weights of hf-hub:{repo} at commit {sha[:12]}",
                **preprocessing(cfg, where),
            )
        )
    args = _model_args(config, where)
    return Spec(
        name=spec_name(repo),
        kind="backbone",
        modality="image",
        tasks=["image-classification", "object-detection"],
        outputs=["pooled", "pyramid"],
        builder="zoo_timm.build:build",
        pretrained=tags,
        default_tag="hub" if tags else None,
        license=license,
        options={"architecture": arch, **({"model_args": args} if args else {})},
        description=f"timm {arch} from hf-hub:{repo}",
        meta={"library": "timm", "architecture": arch},
    )
