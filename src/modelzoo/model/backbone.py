"""The runtime contract every backbone builder returns.

A backbone is an ``nn.Module`` that emits one declared kind of output (DESIGN principle 4):

* ``pooled``   -> ``Tensor[B, C]`` with ``C == num_features``
* ``pyramid``  -> ``list[Tensor[B, C_i, H/s_i, W/s_i]]`` described by ``levels``
* ``sequence`` -> ``(Tensor[B, T, C], mask[B, T])``

It also exposes its preprocessing (``pretrained_cfg``) and ordered ``layer_groups()`` so a generic
engine can freeze, unfreeze and decay learning rates without knowing the model family, and declares
what it needs to be saved and rebuilt: ``config_options`` (recorded in ``config.json``) and the data
files it writes beside the weights (``save_files`` / ``load_files``, e.g. a vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..catalog.specs import Level


@dataclass
class FeatureInfo:
    """What a built backbone emits; heads are built from this."""

    output_kind: str
    num_features: int | None = None
    levels: list[Level] = field(default_factory=list)


@dataclass
class HubExport:
    """What :meth:`Backbone.hub_export` adds to a pushed repo for another library."""

    #: top-level keys for ``config.json`` (modelzoo's own keys may appear only with the same value)
    config: dict[str, Any]
    #: weights files by name (``*.safetensors``), as that library names its state-dict keys
    files: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    #: Markdown lines for the model card saying how that library loads the repo; ``{repo_id}`` and
    #: ``{revision}`` are replaced by the pushed repo and revision
    usage: list[str] = field(default_factory=list)


class Backbone(nn.Module):
    """Base class for backbones: wraps ``model`` and declares its output contract."""

    def __init__(
        self,
        model: nn.Module,
        info: FeatureInfo,
        pretrained_cfg: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.info = info
        self.pretrained_cfg = dict(pretrained_cfg or {})
        #: where the pretrained weights came from (tag, source, sha256, license); None if random init
        self.provenance = provenance

    @property
    def output_kind(self) -> str:
        return self.info.output_kind

    def forward(self, x: torch.Tensor):
        return self.model(x)

    def layer_groups(self) -> list[tuple[str, list[str]]]:
        """Ordered ``(group name, [parameter names])`` from input to output.

        The default walks top-level children, expanding sequential containers one level, which
        gives stem / stage-by-stage groups for most convolutional nets. Builders override it with
        the family's own grouping (timm's ``group_matcher``) where one exists.
        """
        return default_layer_groups(self.model, prefix="model.")

    @property
    def config_options(self) -> dict[str, Any]:
        """Builder options that rebuild this architecture without its pretrained source (recorded in
        ``config.json``; e.g. a text encoder's own config). Default: none needed."""
        return {}

    def save_files(self, folder: Path) -> list[str]:
        """Write the data files this backbone needs beside ``model.safetensors`` (a vocabulary...) and
        return their names: they are recorded in ``config.json`` and travel with pushes and pulls.
        Plain data only (JSON, text, safetensors); never pickles or code. Default: none."""
        return []

    def load_files(self, folder: Path) -> None:
        """Read back what :meth:`save_files` wrote, when a saved model is loaded. Default: nothing."""

    def hub_export(self, model: nn.Module) -> HubExport | None:
        """How another library can load the pushed ``model`` (the TaskModel holding this backbone) without
        modelzoo: top-level ``config.json`` keys and weights files in that library's own format, which
        ``zoo push`` adds to the repo beside modelzoo's (the files are recorded and hashed like every
        other). Return None when the model has no such form (this head, this output). Default: None."""
        return None


def default_layer_groups(model: nn.Module, prefix: str = "") -> list[tuple[str, list[str]]]:
    groups: list[tuple[str, list[str]]] = []
    for name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1:
            for sub_name, sub in child.named_children():
                names = [f"{prefix}{name}.{sub_name}.{p}" for p, _ in sub.named_parameters()]
                if names:
                    groups.append((f"{name}.{sub_name}", names))
        else:
            names = [f"{prefix}{name}.{p}" for p, _ in child.named_parameters()]
            if names:
                groups.append((name, names))
    direct = [f"{prefix}{p}" for p, _ in model.named_parameters(recurse=False)]
    if direct:
        groups.insert(0, ("params", direct))
    return groups


def probe_info(model: nn.Module, output_kind: str, size: int = 64) -> FeatureInfo:
    """Work out channels/strides by running one small dummy batch (used where metadata is missing)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    if output_kind == "pooled":
        return FeatureInfo("pooled", num_features=int(out.shape[-1]))
    levels = [Level(channels=int(o.shape[1]), stride=size // int(o.shape[-1])) for o in out]
    return FeatureInfo("pyramid", levels=levels)
