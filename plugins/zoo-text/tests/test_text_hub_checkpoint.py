"""zoo-text's answer to ``hf-hub:ORG/NAME``: a transformers encoder repo (``save_pretrained`` + tokenizer)."""

from __future__ import annotations

import pytest

from modelzoo.sdk import ZooError

pytest.importorskip("transformers")
from zoo_text.hub import hub_spec

SHA = "c" * 40
FILES = {"config.json": None, "model.safetensors": "d" * 64, "tokenizer.json": None, "tokenizer_config.json": None}


@pytest.fixture(scope="module")
def bert_config() -> dict:
    from transformers import BertConfig

    return BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64).to_dict()


def test_an_encoder_repo_becomes_a_text_backbone_spec(bert_config):
    spec = hub_spec("org/enc", SHA, bert_config, FILES)
    assert spec.modality == "text" and spec.num_features == 32 and spec.options["pooling"] == "cls"
    (tag,) = spec.pretrained
    assert tag.sources == [f"hf-hub:org/enc@{SHA}::model.safetensors"] and tag.sha256 == "d" * 64
    sentence = hub_spec("org/enc", SHA, bert_config, {**FILES, "modules.json": None})
    assert sentence.options["pooling"] == "mean"  # sentence-transformers repos are mean-pooled


@pytest.mark.parametrize(
    "change, files, needle",
    [
        ({"model_type": "no-such-type"}, FILES, "does not know model_type"),
        ({"is_decoder": True}, FILES, "not an encoder"),
        ({}, {"config.json": None, "model.safetensors": None}, "no tokenizer files"),
    ],
)
def test_repos_the_text_plugin_cannot_build_are_one_line(bert_config, change, files, needle):
    with pytest.raises(ZooError) as err:
        hub_spec("org/enc", SHA, {**bert_config, **change}, files)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_timm_configs_are_not_text_encoders():
    assert hub_spec("org/net", SHA, {"architecture": "resnet18", "pretrained_cfg": {}}, FILES) is None
