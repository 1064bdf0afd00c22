"""Builds timm backbones (imported only when a model is built).

Pretrained weights are fetched and sha256-checked by the core (``modelzoo.sdk.pretrained_state_dict``), then handed
to timm as a state dict so timm's own loader drops the classifier and maps features_only models.
"""

from __future__ import annotations

from typing import Any

from modelzoo.sdk import (
    Backbone,
    FeatureInfo,
    Level,
    PretrainedTag,
    Spec,
    ZooError,
    default_layer_groups,
    pretrained_state_dict,
)


class TimmBackbone(Backbone):
    """A timm model as a pooled (``num_classes=0``) or pyramid (``features_only``) backbone."""

    def layer_groups(self) -> list[tuple[str, list[str]]]:
        matcher = getattr(self.model, "group_matcher", None)
        if matcher is None:
            return default_layer_groups(self.model, prefix="model.")
        from timm.models import group_parameters

        grouped = group_parameters(self.model, matcher(coarse=True))
        return [(f"group{gid}", [f"model.{n}" for n in names]) for gid, names in sorted(grouped.items())]


def _preprocess(model, tag: PretrainedTag | None) -> dict[str, Any]:
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    out = {
        "input_size": list(cfg.get("input_size", (3, 224, 224))),
        "mean": list(cfg.get("mean", (0.485, 0.456, 0.406))),
        "std": list(cfg.get("std", (0.229, 0.224, 0.225))),
        "interpolation": cfg.get("interpolation", "bilinear"),
        "crop_pct": cfg.get("crop_pct", 0.875),
    }
    if tag is not None:
        for key in ("input_size", "mean", "std", "interpolation", "crop_pct"):
            if getattr(tag, key) is not None:
                out[key] = getattr(tag, key)
    return out


def build(spec: Spec, output: str = "pooled", pretrained: PretrainedTag | None = None, **options: Any) -> TimmBackbone:
    import timm

    kwargs = dict(options)
    if output == "pyramid":
        kwargs["features_only"] = True
    elif output == "pooled":
        kwargs["num_classes"] = 0
    else:
        raise ZooError(f"timm backbone {spec.name!r} emits pooled or pyramid, not {output!r}")
    provenance = None
    if pretrained is not None:
        template = None
        if pretrained.remap:
            template = timm.create_model(spec.name, pretrained=False).state_dict()
        state, provenance = pretrained_state_dict(spec, pretrained, template)
        kwargs["pretrained_cfg_overlay"] = {
            "state_dict": state,
            "source": "",
            "file": None,
            "hf_hub_id": None,
            "url": None,
        }
    try:
        model = timm.create_model(spec.name, pretrained=pretrained is not None, **kwargs)
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        raise ZooError(f"timm cannot build {spec.name!r} as {output} ({str(exc).splitlines()[0][:200]})") from None
    if output == "pyramid":
        fi = model.feature_info
        info = FeatureInfo("pyramid", levels=[Level(c, s) for c, s in zip(fi.channels(), fi.reduction())])
    else:
        info = FeatureInfo("pooled", num_features=int(getattr(model, "head_hidden_size", None) or model.num_features))
    return TimmBackbone(model, info, _preprocess(model, pretrained), provenance=provenance)
