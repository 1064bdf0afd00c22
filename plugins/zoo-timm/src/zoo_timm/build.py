"""Builds timm backbones (imported only when a model is built).

Pretrained weights are fetched and sha256-checked by the core (``modelzoo.sdk.pretrained_state_dict``), then handed
to timm as a state dict so timm's own loader drops the classifier and maps features_only models.
"""

from __future__ import annotations

from typing import Any

from modelzoo.sdk import (
    Backbone,
    FeatureInfo,
    HubExport,
    Level,
    PretrainedTag,
    Spec,
    ZooError,
    default_layer_groups,
    option_rule,
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

    def hub_export(self, model: Any) -> HubExport | None:
        """With a linear head, the pushed repo is also a timm repo (see :mod:`zoo_timm.hubexport`)."""
        from .hubexport import timm_hub_export

        return timm_hub_export(self, model)


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


#: timm.create_model / build_model_with_cfg keywords that load files, reach the network, replace the
#: pretrained config or change what the build decides (output kind, classifier): never an option
LOADER_KWARGS = frozenset(
    {
        "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict", "pretrained_filter_fn",
        "checkpoint_path", "cache_dir", "model_cfg", "feature_cfg", "feature_cls", "features_only",
        "kwargs_filter", "num_classes", "scriptable", "exportable", "no_jit", "hf_hub_id", "hf_hub_filename",
        "url", "file", "state_dict", "source",
    }
)  # fmt: skip
#: words in a keyword's name that mean a file or a download, in any future timm keyword
_LOADER_WORDS = frozenset({"pretrained", "checkpoint", "cache", "file", "filename", "url", "dir", "hub"})


def option_refused(name: str) -> str | None:
    """Why a timm keyword is no option (None when it is an architecture argument such as drop_rate):
    options come from recipes and pulled config.json files, and timm would open a checkpoint_path."""
    words = set(name.lower().split("_"))
    if name in LOADER_KWARGS or words & _LOADER_WORDS or name == "path" or name.endswith("_path"):
        return "a timm loading keyword that reads files or the network; set model.pretrained instead"
    return None


@option_rule(option_refused)
def build(
    spec: Spec,
    output: str = "pooled",
    pretrained: PretrainedTag | None = None,
    architecture: str | None = None,
    model_args: dict[str, Any] | None = None,
    **options: Any,
) -> TimmBackbone:
    """A timm model as a backbone; ``architecture`` + ``model_args`` build a Hub checkpoint's model (its
    config.json's), otherwise the spec's name is the timm architecture."""
    import timm

    arch = architecture or spec.name
    refused = sorted(k for k in (model_args or {}) if option_refused(str(k)))  # a Hub checkpoint's model_args too
    if refused:
        raise ZooError(f"timm backbone {arch!r}: model_args {refused} refused ({option_refused(refused[0])})")
    kwargs = {**(model_args or {}), **options}
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
            template = timm.create_model(arch, pretrained=False).state_dict()
        state, provenance = pretrained_state_dict(spec, pretrained, template)
        kwargs["pretrained_cfg_overlay"] = {
            "state_dict": state,
            "source": "",
            "file": None,
            "hf_hub_id": None,
            "url": None,
            **({"num_classes": pretrained.num_classes} if pretrained.num_classes is not None else {}),
        }
    try:
        model = timm.create_model(arch, pretrained=pretrained is not None, **kwargs)
    except (RuntimeError, ValueError, TypeError, AssertionError, KeyError) as exc:
        raise ZooError(f"timm cannot build {arch!r} as {output} ({str(exc).splitlines()[0][:200]})") from None
    if output == "pyramid":
        fi = model.feature_info
        info = FeatureInfo("pyramid", levels=[Level(c, s) for c, s in zip(fi.channels(), fi.reduction())])
    else:
        info = FeatureInfo("pooled", num_features=int(getattr(model, "head_hidden_size", None) or model.num_features))
    # a Hub checkpoint's preprocessing is its config's, with or without its weights
    described = pretrained or (spec.tag(None) if architecture and spec.pretrained else None)
    return TimmBackbone(model, info, _preprocess(model, described), provenance=provenance)
