"""Assembling backbone + head into a TaskModel, and rebuilding one from ``config.json``.

Assembly checks the backbone/head contract by output kind before building anything, so a wrong
pairing fails with one line saying what each side offers. ``config.json`` holds everything needed to
rebuild the model and its preprocessing without the original recipe or network access.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .backbone import Backbone
from .catalog import catalog
from .errors import ZooError
from .specs import Spec

CONFIG_FORMAT = 1


def import_builder(path: str):
    """Import ``"package.module:function"``; a failure names the plugin to fix or reinstall."""
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ZooError(f"cannot import builder {path!r} ({exc}); reinstall the plugin that provides it") from None


def create_backbone(
    name: str,
    pretrained: bool | str = True,
    output: str | None = None,
    **options: Any,
) -> Backbone:
    """Build a registered backbone, with pretrained weights fetched and sha256-checked.

    ``name`` may be ``arch``, ``arch.tag`` or ``plugin:arch``; ``pretrained`` is True (the tag in
    the name, else the default tag), False (random init) or a tag name.
    """
    spec, name_tag = catalog().resolve(name, kind="backbone")
    output = output or spec.outputs[0]
    if output not in spec.outputs:
        raise ZooError(f"backbone {spec.name!r} emits {', '.join(spec.outputs)}, not {output!r}")
    tag = None
    if pretrained:
        tag = spec.tag(pretrained if isinstance(pretrained, str) else name_tag)
    builder = import_builder(spec.builder or "")
    backbone = builder(spec, output=output, pretrained=tag, **{**spec.options, **options})
    if not isinstance(backbone, Backbone):
        raise ZooError(f"builder {spec.builder} returned {type(backbone).__name__}, not a modelzoo Backbone")
    return backbone


class TaskModel(nn.Module):
    """Backbone + head for one task, carrying its labels and rebuild config."""

    def __init__(self, backbone: Backbone, head: nn.Module, config: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.config = config

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def labels(self) -> list[str]:
        return list(self.config.get("labels") or [])

    @property
    def preprocess(self) -> dict[str, Any]:
        return dict(self.config.get("preprocess") or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def predict(self, inputs, top_k: int = 5, batch_size: int = 32, **options: Any) -> list:
        """Predictions per input, by task: top-k ``(label, probability)`` for classification
        (image paths / PIL images / CHW tensors, or texts), detections for object detection."""
        if self.task == "text-classification":
            from .predict_text import predict_texts

            return predict_texts(self, inputs, top_k=top_k, batch_size=batch_size)
        if self.task == "object-detection":
            from .predict_detection import predict_detections

            return predict_detections(self, inputs, batch_size=batch_size, **options)
        from .predict import predict_images

        return predict_images(self, inputs, top_k=top_k, batch_size=batch_size)


def _check_pairing(backbone: Spec, head: Spec) -> str:
    shared = [kind for kind in head.consumes if kind in backbone.outputs]
    if not shared:
        raise ZooError(
            f"head {head.name!r} consumes {'/'.join(head.consumes)} but backbone {backbone.name!r} emits "
            f"{'/'.join(backbone.outputs)}; pick a head for {'/'.join(backbone.outputs)} (zoo list --kind head)"
        )
    tasks = set(head.tasks) & set(backbone.tasks) if backbone.tasks else set(head.tasks)
    if not tasks:
        raise ZooError(
            f"head {head.name!r} is for {', '.join(head.tasks)} but backbone {backbone.name!r} is for"
            f" {', '.join(backbone.tasks)}"
        )
    return shared[0]


def assemble(
    backbone: str,
    head: str,
    num_classes: int,
    labels: list[str] | None = None,
    pretrained: bool | str = True,
    head_options: dict[str, Any] | None = None,
    backbone_options: dict[str, Any] | None = None,
    preprocess: dict[str, Any] | None = None,
) -> TaskModel:
    """Resolve, check and build backbone + head; record how to rebuild them in ``config``."""
    cat = catalog()
    bb_spec, _ = cat.resolve(backbone, kind="backbone")
    head_spec = cat.get(head, kind="head")
    output = _check_pairing(bb_spec, head_spec)
    if labels is not None and len(labels) != num_classes:
        raise ZooError(f"{len(labels)} labels given for num_classes={num_classes}")
    bb = create_backbone(backbone, pretrained=pretrained, output=output, **(backbone_options or {}))
    head_opts = {**head_spec.options, **(head_options or {})}
    head_module = import_builder(head_spec.builder or "")(bb, num_classes, **head_opts)
    task = head_spec.tasks[0] if len(head_spec.tasks) == 1 else (set(head_spec.tasks) & set(bb_spec.tasks)).pop()
    config = {
        "format": CONFIG_FORMAT,
        "library": "modelzoo",
        "task": task,
        "backbone": {
            "name": bb_spec.qualified_name,
            "output": output,
            # a backbone may add options that rebuild it without its pretrained source (a text encoder's config)
            "options": {**(backbone_options or {}), **(getattr(bb, "config_options", None) or {})},
            "pretrained": getattr(bb, "provenance", None),
        },
        "head": {"name": head_spec.qualified_name, "options": head_opts},
        "num_classes": num_classes,
        "labels": list(labels) if labels is not None else [str(i) for i in range(num_classes)],
        "preprocess": {**bb.pretrained_cfg, **(preprocess or {})},
    }
    return TaskModel(bb, head_module, config)


def from_config(config: dict[str, Any]) -> TaskModel:
    """Rebuild the architecture recorded in ``config`` (random weights; load a state dict next)."""
    if config.get("library") != "modelzoo" or "backbone" not in config:
        raise ZooError("config.json was not written by modelzoo (no 'backbone'/'library' fields)")
    model = assemble(
        config["backbone"]["name"],
        config["head"]["name"],
        num_classes=int(config["num_classes"]),
        labels=config.get("labels"),
        pretrained=False,
        head_options=config["head"].get("options"),
        backbone_options=config["backbone"].get("options"),
        preprocess=config.get("preprocess"),
    )
    model.config = config
    return model


def load(path: str | Path) -> TaskModel:
    """Load a model folder (a run folder or a pulled Hub repo): ``config.json`` + ``model.safetensors``
    (+ the backbone's own data files, such as ``tokenizer.json``, where it has ``load_files``).

    ``hf-hub:org/name[@rev]`` pulls (or finds in the HF cache) that repo first.
    """
    from safetensors.torch import load_file

    if str(path).startswith("hf-hub:"):
        from .hub import pull

        path = pull(str(path)[len("hf-hub:") :]).path
    folder = Path(path)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise ZooError(f"{folder} is not a modelzoo model folder (needs config.json and model.safetensors)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    model = from_config(config)
    missing, unexpected = model.load_state_dict(load_file(str(weights_path)), strict=False)
    if missing or unexpected:
        raise ZooError(
            f"{weights_path} does not match config.json ({len(missing)} missing, {len(unexpected)} unexpected keys)"
        )
    load_files = getattr(model.backbone, "load_files", None)
    if load_files is not None:  # data files saved with the model, e.g. a text encoder's tokenizer
        load_files(folder)
    model.eval()
    return model
