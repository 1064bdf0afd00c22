"""A pushed timm backbone + linear classifier that plain timm loads: ``timm.create_model("hf-hub:ORG/NAME",
pretrained=True)`` gives the fine-tuned model, logits equal to ``modelzoo.load``'s.

timm reads a Hub repo's ``config.json`` (``architecture``, ``num_classes``, ``model_args``,
``pretrained_cfg``, ``label_names``; see ``timm.models._hub.load_model_config_from_hf``) and the
weights file ``pretrained_cfg["hf_hub_filename"]`` names (``load_state_dict_from_hf`` loads a
``*.safetensors`` name directly). The backbone is timm's own model built with ``num_classes=0``, so its
state dict has timm's key names already; the linear head becomes the classifier timm builds for
``num_classes`` (``get_classifier()``: ``head.fc``, ``classifier``, ``fc``...). Before anything is
returned, a timm model built exactly as timm will build it loads those weights strictly and must give
the same logits as the modelzoo model; otherwise the repo is pushed without the timm form.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from modelzoo.sdk import HubExport

#: the weights file timm reads (named in pretrained_cfg.hf_hub_filename); modelzoo's model.safetensors stays as is
TIMM_WEIGHTS = "timm_model.safetensors"
#: pretrained_cfg entries that describe where the *original* weights came from, not this repo
_SOURCE_KEYS = ("state_dict", "file", "url", "hf_hub_id", "hf_hub_filename", "source", "custom_load")


def only_linear(head: nn.Module) -> nn.Linear | None:
    """The head's one linear layer when, in eval mode, the head computes exactly that layer (dropout and
    identities around a final ``nn.Linear``); None for anything else (an MLP...)."""
    if isinstance(head, nn.Linear):
        return head
    if not isinstance(head, nn.Sequential) or not len(head) or not isinstance(head[-1], nn.Linear):
        return None
    if not all(isinstance(m, (nn.Dropout, nn.Identity)) for m in list(head)[:-1]):
        return None
    return head[-1]


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError


def _pretrained_cfg(cfg: dict[str, Any], preprocess: dict[str, Any], num_classes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if key in _SOURCE_KEYS:
            continue
        try:
            out[key] = _json_value(value)
        except TypeError:
            continue
    for key in ("input_size", "mean", "std", "interpolation", "crop_pct"):
        if key in preprocess:
            out[key] = preprocess[key]
    return {**out, "num_classes": num_classes, "hf_hub_filename": TIMM_WEIGHTS}


def timm_hub_export(backbone: Any, model: Any) -> HubExport | None:
    """The timm form of ``model`` (a TaskModel whose backbone is ``backbone``), or None."""
    import timm

    linear = only_linear(model.head)
    if backbone.info.output_kind != "pooled" or linear is None:
        return None
    config = model.config
    options = dict(config["backbone"].get("options") or {})
    arch = options.pop("architecture", None) or backbone.model.pretrained_cfg.get("architecture")
    model_args = {**(options.pop("model_args", None) or {}), **options}
    num_classes = int(linear.out_features)
    try:
        ref = timm.create_model(arch, pretrained=False, num_classes=num_classes, **model_args)
    except Exception:  # an architecture timm cannot build from these arguments: no timm form
        return None
    classifier = ref.get_classifier()
    names = [name for name, module in ref.named_modules() if module is classifier]
    if not isinstance(classifier, nn.Linear) or len(names) != 1:
        return None
    state = {k: v.detach().clone() for k, v in backbone.model.state_dict().items()}
    state[f"{names[0]}.weight"] = linear.weight.detach().clone()
    state[f"{names[0]}.bias"] = linear.bias.detach().clone()
    try:
        ref.load_state_dict(state, strict=True)
    except RuntimeError:
        return None
    if not _same_logits(ref.eval(), model, config.get("preprocess") or {}):
        return None
    return HubExport(
        config={
            "architecture": arch,
            "num_classes": num_classes,
            "num_features": int(backbone.info.num_features or linear.in_features),
            "label_names": list(config.get("labels") or []),
            "model_args": model_args,
            "pretrained_cfg": _pretrained_cfg(dict(ref.pretrained_cfg), config.get("preprocess") or {}, num_classes),
        },
        files={TIMM_WEIGHTS: state},
        usage=[
            f"This repo is also a timm model (timm reads its `config.json` keys and `{TIMM_WEIGHTS}`); plain timm"
            " loads it with the same logits:",
            "",
            "```python",
            "import timm",
            "",
            'model = timm.create_model("hf-hub:{repo_id}@{revision}", pretrained=True).eval()',
            "transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))",
            'labels = model.pretrained_cfg["label_names"]',
            "```",
            "",
        ],
    )


@torch.no_grad()
def _same_logits(ref: nn.Module, model: nn.Module, preprocess: dict[str, Any]) -> bool:
    size = [int(n) for n in (preprocess.get("input_size") or [3, 224, 224])]
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(0))
    was_training = model.training
    model.eval()
    try:
        expected, got = model(x).float(), ref(x).float()
    finally:
        model.train(was_training)
    scale = max(1.0, float(expected.abs().max()))
    return expected.shape == got.shape and bool((expected - got).abs().max() <= 1e-4 * scale)
