"""Property tests: any model name, tag or list filter ends in an answer or one :class:`ZooError` line.

Names are real catalog names mutated by hypothesis (wildcards, plugin prefixes, tags, case, control and
non-ASCII characters) and random text, through ``catalog().resolve / get / filter / task`` and through
``zoo info`` / ``zoo list`` themselves (in-process: one ``error:`` line on stderr and exit 2, or exit 0).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from modelzoo.catalog import lookup as catalog_mod
from modelzoo.catalog.specs import KINDS
from modelzoo.cli.main import main
from modelzoo.errors import ZooError
from modelzoo.testing import reliability

pytestmark = [pytest.mark.attack("names"), pytest.mark.usefixtures("real_catalog")]

fuzz = reliability.fuzz_settings

REAL = [
    *("test_convnext", "timm:test_convnext", "resnet18", "torchvision:resnet18.imagenet1k_v1", "linear"),
    *("aimv2_1b_patch14_224.apple_pt", "mobilenetv3_small_100.lamb_in1k", "text:minilm"),
    *("classification:linear", "image-classification", "classification", "fashion-mnist", "effnet-lite0-fashion-mnist"),
]
PIECES = st.sampled_from([":", ".", "*", "?", "[", "]", "!", "-", "_", "..", "::", " ", "\n", "\x00", "É", "ß", "İ"])


@st.composite
def names(draw) -> str:
    """A real name edited a few times, or random text."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.text(max_size=30))
    name = draw(st.sampled_from(REAL))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(name)))
        edit = draw(st.sampled_from(["insert", "delete", "case", "text"]))
        if edit == "insert":
            name = name[:at] + draw(PIECES) + name[at:]
        elif edit == "delete":
            name = name[:at] + name[at + 1 :]
        elif edit == "case":
            name = name.upper() if draw(st.booleans()) else name.swapcase()
        else:
            name = name[:at] + draw(st.text(max_size=4)) + name[at:]
    return name


def one_line(exc: ZooError) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)


@fuzz(300)
@given(names(), st.sampled_from([None, *KINDS]))
@example("torchvision:resnet18.x\ny", "backbone")  # an unknown tag with a line break in it
@example("timm:", None)
@example(":", "task")
def test_resolve_and_get(name, kind):
    reliability.count("names")
    cat = catalog_mod.catalog()
    try:
        spec, tag = cat.resolve(name, kind)
    except ZooError as exc:
        one_line(exc)
        return
    assert kind is None or spec.kind == kind
    assert tag is None or spec.tag(tag)  # a tag that resolves is one of the spec's
    assert cat.get(name, kind) is spec


@fuzz(300)
@given(
    st.lists(names(), max_size=3),
    st.lists(names(), max_size=2),
    st.sampled_from([None, *KINDS, "Backbone", "x"]),
    st.one_of(st.none(), names()),
    st.one_of(st.none(), st.sampled_from(["timm", "torchvision", "core", "nope"]), st.text(max_size=6)),
    st.one_of(st.none(), st.sampled_from(["mit", "apache-2.0", "*", "[", "bsd*"]), st.text(max_size=6)),
    st.booleans(),
)
def test_filter(include, exclude, kind, task, plugin, license, pretrained):
    reliability.count("names")
    cat = catalog_mod.catalog()
    try:
        found = cat.filter(include, exclude, kind, task, plugin, license, pretrained)
    except ZooError as exc:
        one_line(exc)
        return
    assert all(s in cat.specs for s in found)
    assert all((kind is None or s.kind == kind) and (not pretrained or s.pretrained) for s in found)


@fuzz(150)
@given(names(), st.booleans())
@example("torchvision:resnet18.x\ny", False)
@example("-h", False)
def test_zoo_info(capsys, name, as_json):
    reliability.count("names")
    code = main(["info", *(["--json"] if as_json else []), "--", name])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code == 0:
        assert out.strip() and err == ""
        if as_json:
            json.loads(out)
    else:
        lines = err.splitlines()
        assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: "), err


@fuzz(100)
@given(st.lists(names(), max_size=2), st.one_of(st.none(), names()), st.booleans())
def test_zoo_list(capsys, patterns, task, as_json):
    reliability.count("names")
    args = ["list", *(["--task", task] if task is not None else []), *(["--json"] if as_json else []), "--", *patterns]
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code == 0:
        if as_json:
            assert isinstance(json.loads(out), list)
    else:
        lines = err.splitlines()
        assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: "), err
