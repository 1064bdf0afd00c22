"""zoo-timm's answer to ``hf-hub:ORG/NAME``: the config.json timm's own ``save_for_hf`` writes, read as bounded data."""

from __future__ import annotations

import json

import pytest

from modelzoo.sdk import ZooError

timm = pytest.importorskip("timm")
from zoo_timm.hub import hub_spec  # noqa: E402

SHA = "a" * 40


@pytest.fixture(scope="module")
def timm_config(tmp_path_factory) -> dict:
    """What ``timm.models.save_for_hf`` writes for a tiny timm model with 3 classes."""
    from timm.models import save_for_hf

    folder = tmp_path_factory.mktemp("timm-repo")
    save_for_hf(timm.create_model("test_convnext", num_classes=3), str(folder), safe_serialization=True)
    return json.loads((folder / "config.json").read_text())


def test_a_timm_repo_becomes_a_backbone_spec_pinned_to_its_commit(timm_config):
    spec = hub_spec("org/net", SHA, timm_config, {"config.json": None, "model.safetensors": "b" * 64})
    assert spec.kind == "backbone" and spec.modality == "image" and spec.name == "org--net"
    assert spec.options["architecture"] == "test_convnext"
    assert "num_classes" not in spec.options.get("model_args", {})  # the build sets the classifier itself
    (tag,) = spec.pretrained
    assert tag.sources == [f"hf-hub:org/net@{SHA}::model.safetensors"] and tag.sha256 == "b" * 64
    assert tag.num_classes == 3 and tag.interpolation == "bicubic" and tag.mean == [0.5, 0.5, 0.5]


def test_without_safetensors_weights_there_is_no_pretrained_tag(timm_config):
    assert hub_spec("org/net", SHA, timm_config, {"config.json": None}).pretrained == []


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"architecture": "no_such_net_v9"}, "timm"),
        ({"architecture": "../../etc"}, "does not have"),
        ({"pretrained_cfg": {"mean": [0.5, "x", 0.5]}}, "pretrained_cfg.mean"),
        ({"pretrained_cfg": {"std": [0, 0, 0]}}, "pretrained_cfg.std"),
        ({"pretrained_cfg": {"input_size": [3, 100000, 224]}}, "pretrained_cfg.input_size"),
        ({"pretrained_cfg": {"interpolation": "magic"}}, "pretrained_cfg.interpolation"),
        ({"pretrained_cfg": {"crop_pct": 9}}, "pretrained_cfg.crop_pct"),
        ({"model_args": {"act_layer": {"__class__": "os.system"}}}, "model_args"),
        ({"num_classes": "3"}, "num_classes"),
    ],
)
def test_unknown_architectures_and_out_of_bounds_configs_are_one_line(timm_config, change, needle):
    config = {**timm_config, **change}
    with pytest.raises(ZooError) as err:
        hub_spec("org/net", SHA, config, {"config.json": None, "model.safetensors": None})
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_configs_of_other_libraries_are_not_timms():
    assert hub_spec("org/enc", SHA, {"model_type": "bert", "hidden_size": 32}, {}) is None
