"""A pulled ``config.json`` is somebody else's file: every value that sizes an allocation is bounded
(num_classes, labels, input sizes, crop_pct, mean/std) and its backbone options are plain data the
builder declares safe (never ``checkpoint_path=...`` into timm). Each refusal is one line naming the field."""

from __future__ import annotations

import functools
import json
import pickle
from pathlib import Path

import pytest

from modelzoo.errors import ZooError
from modelzoo.testing.reliability import count

torch = pytest.importorskip("torch")

import modelzoo  # noqa: E402
from modelzoo.model.assembly import from_config  # noqa: E402
from modelzoo.model.limits import MAX_OUTPUTS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread", "real_catalog")


@pytest.fixture(scope="module")
def config() -> dict:
    torch.manual_seed(0)
    model = modelzoo.assemble("timm:test_efficientnet", "classification:linear", labels=["a", "b"], pretrained=False)
    return json.loads(json.dumps(model.config))


def one_line(exc: BaseException, *fragments: str) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def edited(config: dict, path: str, value) -> dict:
    config = json.loads(json.dumps(config))
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    return config


HOSTILE = [
    ("num_classes", 2_000_000, "num_classes = 2000000 must be between 1 and 100,000"),
    ("num_classes", 0, "num_classes = 0"),
    ("num_classes", "2", "num_classes must be a whole number"),
    ("num_classes", True, "num_classes must be a whole number"),
    ("num_classes", 1e300, "num_classes must be a whole number"),
    ("labels", ["a", "b", "c"], "3 labels for num_classes = 2"),
    ("labels", ["a", "b\x1b[2J"], "labels[1]"),
    ("labels", ["a", "line\nbreak"], "control characters"),
    ("labels", ["a", "x" * 201], "labels[1]: a label of 201 characters"),
    ("labels", ["a", "caf\udce9"], "is not valid text"),
    ("labels", ["a", 7], "labels[1]"),
    ("labels", "ab", "labels must be a list"),
    ("preprocess.crop_pct", 0.0001, "preprocess.crop_pct = 0.0001"),
    ("preprocess.crop_pct", 0.0, "preprocess.crop_pct"),
    ("preprocess.crop_pct", 7.0, "preprocess.crop_pct"),
    ("preprocess.crop_pct", "0.9", "preprocess.crop_pct"),
    ("preprocess.input_size", [3, 100_000, 100_000], "preprocess.input_size"),
    ("preprocess.input_size", [3, 0, 32], "preprocess.input_size"),
    ("preprocess.input_size", [3, 32.5, 32], "preprocess.input_size"),
    ("preprocess.input_size", "big", "preprocess.input_size"),
    ("preprocess.image_size", 5000, "preprocess.image_size"),
    ("preprocess.mean", [0.5, 0.5], "preprocess.mean"),
    ("preprocess.mean", [float("nan")] * 3, "preprocess.mean"),
    ("preprocess.std", [0.5, 0.0, 0.5], "preprocess.std"),
    ("preprocess.std", [-1.0], "preprocess.std"),
    ("preprocess.std", ["x", 1, 1], "preprocess.std"),
    ("preprocess", [1, 2], "preprocess must be a table"),
]


@pytest.mark.attack("files")
@pytest.mark.parametrize("path, value, fragment", HOSTILE, ids=[f"{p}={str(v)[:20]}" for p, v, _ in HOSTILE])
def test_a_config_value_that_sizes_an_allocation_is_bounded(config, path, value, fragment):
    with pytest.raises(ZooError) as info:
        from_config(edited(config, path, value))
    one_line(info.value, "config.json", fragment)


@pytest.mark.attack("files")
def test_the_bounds_hold_for_a_model_folder_and_at_the_cap(config, tmp_path):
    """Through modelzoo.load (a pulled folder), 2,000,000 labels are one line; the cap itself still builds."""
    folder = tmp_path / "model"
    torch.manual_seed(0)
    modelzoo.save_model(from_config(config), folder)
    saved = json.loads((folder / "config.json").read_text())
    saved.pop("config_sha256", None)  # a config written by hand: its digest is another test's concern
    saved["num_classes"], saved["labels"] = 2_000_000, [f"c{i}" for i in range(2_000_000)]
    (folder / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ZooError) as info:
        modelzoo.load(folder)
    one_line(info.value)
    rebuilt = from_config(edited(edited(config, "num_classes", MAX_OUTPUTS), "labels", None))
    assert rebuilt.config["num_classes"] == MAX_OUTPUTS


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.attack("files")
def test_a_config_never_hands_a_backbone_builder_a_file(config, tmp_path):
    """``backbone.options`` with timm's loading keywords (checkpoint_path would unpickle a file) are refused
    before timm sees them; so is anything that is not plain data, and a Hub checkpoint's model_args."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"state_dict": Evil(marker)}))
    cases = {
        "checkpoint_path": str(evil),
        "pretrained_cfg_overlay": {"file": str(evil)},
        "pretrained_cfg": {"file": str(evil)},
        "cache_dir": str(tmp_path),
        "pretrained": True,
        "features_only": True,
        "my_weights_file": str(evil),
        "hf_hub_id": "org/evil",
        "__class__": 1,
    }
    for key, value in cases.items():
        with pytest.raises(ZooError) as info:
            from_config(edited(config, "backbone.options", {key: value}))
        one_line(info.value, repr(key) if key != "__class__" else "not an option name")
    with pytest.raises(ZooError) as info:
        from_config(edited(config, "backbone.options", {"model_args": {"checkpoint_path": str(evil)}}))
    one_line(info.value, "checkpoint_path", "refused")
    count("files", len(cases))
    assert not marker.exists()
    # an architecture argument is still an option
    model = from_config(edited(config, "backbone.options", {"drop_rate": 0.1}))
    assert model.config["backbone"]["options"] == {"drop_rate": 0.1}


@pytest.mark.attack("files")
def test_a_builder_taking_kwargs_without_a_rule_accepts_only_its_parameters():
    from modelzoo.model.assembly import check_options
    from modelzoo.sdk import option_rule

    def builder(spec, output="pooled", pretrained=None, depth: int = 2, **options):
        return None

    check_options(builder, {"depth": 3}, "backbone 'x'", skip=1)
    with pytest.raises(ZooError) as info:
        check_options(builder, {"checkpoint_path": "/tmp/x"}, "backbone 'x'", skip=1)
    one_line(info.value, "has no option(s) ['checkpoint_path']")
    ruled = option_rule(lambda name: None if name == "width" else "not an architecture argument")(builder)
    check_options(ruled, {"width": 3}, "backbone 'x'", skip=1)
    with pytest.raises(ZooError) as info:
        check_options(ruled, {"weights": "x"}, "backbone 'x'", skip=1)
    one_line(info.value, "option 'weights' refused (not an architecture argument)")
    with pytest.raises(ZooError) as info:
        check_options(ruled, {"width": object()}, "backbone 'x'", skip=1)
    one_line(info.value, "plain data")


@pytest.mark.attack("files")
def test_torchvision_options_never_load_weights():
    """torchvision's get_model takes ``weights``/``weights_backbone``/``progress``: never from options."""
    for key, value in (("weights", "DEFAULT"), ("weights_backbone", "DEFAULT"), ("progress", True)):
        with pytest.raises(ZooError) as info:
            modelzoo.create_backbone("torchvision:mobilenet_v2", pretrained=False, **{key: value})
        one_line(info.value, f"option {key!r} refused")
    count("files", 3)
    backbone = modelzoo.create_backbone("torchvision:mobilenet_v2", pretrained=False, dropout=0.3)
    assert backbone.info.num_features == 1280


HEAD_SIZES = [
    (10**9, "make 67,000,000,002 parameters (at most 500,000,000); lower model.head_options"),
    (20_000_000, "make 1,340,000,002 parameters"),
    (-5, "negative dimension"),
]


@pytest.mark.attack("files")
@pytest.mark.parametrize("hidden, fragment", HEAD_SIZES, ids=[str(h) for h, _ in HEAD_SIZES])
def test_a_head_option_that_sizes_an_allocation_is_bounded(hidden, fragment):
    """A head's size is measured on the meta device before anything is allocated: ``hidden = 1e9`` (5 TB)
    and ``hidden = 2e7`` (5 GB, which the allocator grants) are one line naming the option, from a recipe's
    head_options or a pulled config.json alike; a real size still builds."""
    with pytest.raises(ZooError) as info:
        modelzoo.assemble(
            "timm:test_convnext",
            "classification:mlp",
            labels=["a", "b"],
            pretrained=False,
            head_options={"hidden": hidden},
        )
    one_line(info.value, "head 'mlp'", fragment)
    model = modelzoo.assemble("timm:test_convnext", "classification:mlp", labels=["a", "b"], pretrained=False)
    config = edited(json.loads(json.dumps(model.config)), "head.options.hidden", hidden)
    with pytest.raises(ZooError) as info:
        from_config(config)
    one_line(info.value, fragment)


def test_every_shipped_head_is_measured_on_the_meta_device():
    """The probe must see the shipped heads (a probe that always fails would bound nothing)."""
    from modelzoo.catalog.builders import import_builder
    from modelzoo.catalog.lookup import catalog
    from modelzoo.model.assembly import create_backbone, meta_parameters

    measured = []
    for head in catalog().filter(kind="head"):
        output = next((kind for kind in ("pooled", "pyramid") if kind in head.consumes), None)
        if output is None:  # a text head: its backbones are the text plugin's tests' concern
            continue
        bb = create_backbone("timm:test_convnext", pretrained=False, output=output)
        build = functools.partial(import_builder(head.builder), bb, 3, **head.options)
        size = meta_parameters(build, shared=bb)
        assert size is not None and size > 0, head.name
        measured.append(head.name)
    assert len(measured) >= 3, measured


@pytest.mark.attack("files")
def test_a_backbone_option_that_sizes_an_allocation_is_bounded():
    """A ViT's ``img_size`` sizes its position table: 100,000 px asks ViT-B for 30 billion parameters. Built with
    options from a recipe or a pulled config, a backbone is measured on the meta device first: one line."""
    with pytest.raises(ZooError) as info:
        modelzoo.assemble(
            "timm:vit_base_patch16_224", "classification:linear", labels=["a", "b"], pretrained=False,
            backbone_options={"img_size": 100_000},
        )  # fmt: skip
    one_line(info.value, "img_size = 100000 make 30,", "lower model.backbone_options")
