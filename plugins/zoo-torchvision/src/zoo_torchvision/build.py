"""Builds torchvision backbones (imported only when a model is built)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from modelzoo.sdk import (
    Backbone,
    PretrainedTag,
    Spec,
    ZooError,
    option_rule,
    pretrained_state_dict,
    probe_info,
)


def _strip_classifier(model: nn.Module) -> nn.Module:
    """Replace the last ``nn.Linear`` (the ImageNet classifier) with Identity: pooled features remain."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ZooError("no linear classifier found to remove")
    parent_name, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, nn.Identity())
    return model


class StagedPyramid(nn.Module):
    """Runs a model's trunk stage by stage and returns the last map of every stride."""

    def __init__(self, stages: list[nn.Module], out_indices: list[int]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.out_indices = set(out_indices)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return outs


def _trunk(model: nn.Module) -> list[nn.Module]:
    if hasattr(model, "layer4"):
        return [
            nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool),
            model.layer1,
            model.layer2,
            model.layer3,
            model.layer4,
        ]
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        return list(features.children())
    raise ZooError(f"{type(model).__name__} has no stage trunk to cut into a pyramid; use output pooled")


def _pyramid(model: nn.Module, size: int = 64) -> StagedPyramid:
    stages = _trunk(model)
    shapes = []
    with torch.no_grad():
        x = torch.zeros(1, 3, size, size)
        was = model.training
        model.eval()
        for stage in stages:
            x = stage(x)
            shapes.append(x.shape[-1])
        model.train(was)
    out = [i for i in range(len(stages)) if i == len(stages) - 1 or shapes[i + 1] != shapes[i]]
    return StagedPyramid(stages, out)


#: torchvision builder keywords that download or load weights: the core fetches and checks weights itself
_LOADER_WORDS = frozenset({"weights", "progress", "pretrained", "checkpoint", "file", "url", "dir", "path", "hub"})


def option_refused(name: str) -> str | None:
    """Why a keyword is no option for torchvision's ``get_model`` (None for architecture arguments such
    as dropout): options come from recipes and pulled config.json files."""
    if set(name.lower().split("_")) & _LOADER_WORDS:
        return "a torchvision keyword that loads weights or files; set model.pretrained instead"
    return None


@option_rule(option_refused)
def build(spec: Spec, output: str = "pooled", pretrained: PretrainedTag | None = None, **options: Any) -> Backbone:
    from torchvision.models import get_model

    model = get_model(spec.name, weights=None, **options)
    provenance = None
    preprocess: dict[str, Any] = {
        "input_size": [3, 224, 224],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "interpolation": "bilinear",
        "crop_pct": 0.875,
    }
    if pretrained is not None:
        state, provenance = pretrained_state_dict(spec, pretrained)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ZooError(
                f"{spec.name}.{pretrained.tag}: weights do not fit the architecture ({str(exc).splitlines()[0]})"
            ) from None
        for key in preprocess:
            if getattr(pretrained, key, None) is not None:
                preprocess[key] = getattr(pretrained, key)
    if output == "pooled":
        net = _strip_classifier(model)
        return Backbone(net, probe_info(net, "pooled"), preprocess, provenance)
    if output == "pyramid":
        net = _pyramid(model)
        return Backbone(net, probe_info(net, "pyramid"), preprocess, provenance)
    raise ZooError(f"torchvision backbone {spec.name!r} emits {', '.join(spec.outputs)}, not {output!r}")
