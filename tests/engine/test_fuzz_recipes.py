"""Property tests: any recipe document, ``--set`` override or recipe file ends in a valid :class:`Recipe` or
one :class:`RecipeError` line, never another exception or a hang.

Documents are a valid recipe mutated by hypothesis: keys from the real schema (the core's sections and
the image-classification task's ``[data]``) and random ones, set to values of every TOML type (and
``None``, which the Python API can pass) including NaN, infinities, huge and negative numbers, empty
and non-ASCII strings, nested lists and tables. Runs are derandomized with fixed example counts, so
the suite is deterministic; the counts go to RELIABILITY.md.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import tomli_w
from hypothesis import example, given
from hypothesis import strategies as st

from modelzoo.engine.recipe import ModelCfg, OptimizerCfg, Recipe, StageCfg, apply_overrides, load_recipe, validate
from modelzoo.errors import RecipeError
from modelzoo.testing import reliability

pytestmark = [pytest.mark.attack("recipes"), pytest.mark.usefixtures("real_catalog")]

fuzz = reliability.fuzz_settings


def valid_recipe() -> dict:
    return {
        "name": "fuzz",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": "/data/colors", "image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3},
        "optimizer": {"lr": 0.01},
        "stages": [{"name": "head", "train": "head", "epochs": 1}, {"train": "all", "epochs": 2, "lr": 0.001}],
    }


def _fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


IMAGE_DATA = [
    *("dataset", "options", "train_limit", "val_limit", "val_split", "batch_size", "num_workers", "path"),
    *("train_dir", "val_dir", "image_size", "mean", "std", "augment", "on_bad_image", "label_map"),
]
SCHEMA = {
    "": [f for f in _fields(Recipe) if f not in ("warnings",)],
    "model": _fields(ModelCfg),
    "data": IMAGE_DATA,
    "optimizer": _fields(OptimizerCfg),
    "stages": _fields(StageCfg),
}

NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
#: the values most likely to get through a check that forgot them
NUMERIC_EXTREMES = st.sampled_from(
    [math.nan, math.inf, -math.inf, 10**400, -(10**400), 2**63, 2**64, -1, 0, 1, 1e308, 5e-324, -0.0, 0.5]
)
OTHER_EXTREMES = st.sampled_from(
    [
        *("", " ", "\n", "\x00", "é" * 3, "auto", "head", "all", "last:2", "last:x", "cosine", "sgd", "linear"),
        *(True, False, None, [], {}, [0.5, 0.5, 0.5], [0, 0, 0], [-1.0] * 3, ["a"] * 3, [math.nan] * 3, [10**400] * 3),
    ]
)
EXTREMES = st.one_of(NUMERIC_EXTREMES, OTHER_EXTREMES)
SCALARS = st.one_of(EXTREMES, st.none(), st.booleans(), NUMBERS, st.text(max_size=12))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
KEYS = st.one_of(st.sampled_from(sorted({k for keys in SCHEMA.values() for k in keys})), st.text(max_size=10))


@st.composite
def documents(draw) -> dict:
    """A valid recipe with a few random edits (set a field, delete one, or replace a whole section); mostly
    one, so each field's own check is reached (validation stops at the first problem)."""
    doc = valid_recipe()
    for _ in range(draw(st.sampled_from([1, 1, 1, 1, 2, 2, 3, 6]))):
        section = draw(st.sampled_from(["", "model", "data", "optimizer", "stages", "whole"]))
        if section == "whole":
            doc[draw(st.sampled_from(["model", "data", "optimizer", "stages", "name"]))] = draw(VALUES)
            continue
        if section == "":
            table = doc
        elif section == "stages":
            if not isinstance(doc.get("stages"), list) or not doc["stages"]:
                continue
            table = doc["stages"][draw(st.integers(0, len(doc["stages"]) - 1))]
        else:
            table = doc.get(section)
        if not isinstance(table, dict):
            continue
        key = draw(st.sampled_from(SCHEMA[section]) if draw(st.integers(0, 3)) else KEYS)
        if draw(st.integers(0, 4)) == 0:
            table.pop(key, None)
        else:
            table[key] = draw(st.one_of(NUMERIC_EXTREMES, NUMERIC_EXTREMES, OTHER_EXTREMES, VALUES))
    return doc


def holds(run) -> object:
    """Run one case: a result, or a RecipeError of one line; anything else fails the property."""
    try:
        return run()
    except RecipeError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return exc


def usable(r: Recipe) -> None:
    """What validation lets through is what the engine can use."""
    assert 0 < r.optimizer.lr <= 10 and all(s.lr is None or 0 < s.lr <= 10 for s in r.stages)
    assert r.optimizer.weight_decay >= 0 and 0 <= r.optimizer.momentum < 1
    assert all(1 <= s.epochs and 0 <= s.warmup_epochs <= s.epochs for s in r.stages) and r.data.batch_size >= 1
    assert r.data.num_workers == "auto" or 0 <= r.data.num_workers <= 256
    for values in (r.data.mean, r.data.std):
        assert values is None or (len(values) == 3 and all(math.isfinite(float(v)) for v in values))
    assert r.data.std is None or min(r.data.std) > 0


def test_recipe_documents():
    @fuzz(300)
    @given(documents())
    def prop(doc):
        reliability.count("recipes")
        result = holds(lambda: validate(doc))
        if isinstance(result, Recipe):
            usable(result)

    prop()


def test_recipe_documents_through_toml():
    """The same documents written as TOML text (where TOML can say them) and read back by load_recipe."""

    @fuzz(100)
    @given(documents())
    def prop(doc):
        try:
            text = tomli_w.dumps(doc)
        except (TypeError, ValueError):  # None, or a key TOML cannot hold: not a TOML document
            return
        reliability.count("recipes")
        path = TMP / "fuzz.toml"
        path.write_text(text, encoding="utf-8")
        holds(lambda: load_recipe(path))

    prop()


DOTTED = st.lists(
    st.one_of(
        st.sampled_from(["model", "data", "optimizer", "stages", "0", "1", "7", "-1", "²", "lr", "mean", "seed"]),
        KEYS,
    ),
    min_size=1,
    max_size=4,
).map(".".join)
LITERALS = st.one_of(
    st.text(max_size=16),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1", "0", "1" + "0" * 400, "[1, 2]", "{a = 1}", '"x"', "true"]),
    st.sampled_from(["[" * 2000 + "]" * 2000, "[1, 'a', [2]]", "2024-01-01", "0x10", "1_000", "'''x'''", "v\nw = 1"]),
    NUMBERS.map(repr),
)


def test_set_overrides():
    @fuzz(300)
    @given(st.lists(st.tuples(DOTTED, st.sampled_from(["=", "", "=="]), LITERALS).map("".join), max_size=4))
    @example(["stages.\u00b2=1"])  # a digit to str.isdigit, not to int()
    @example(["stages.0.lr=" + "[" * 2000 + "]" * 2000])  # deeper than the TOML parser's recursion
    @example(["optimizer.lr=1" + "0" * 400])  # TOML reads it as an int no float can hold
    @example(["model.\r=1"])  # a key that would break the error line
    def prop(overrides):
        reliability.count("recipes")
        result = holds(lambda: validate(apply_overrides(valid_recipe(), overrides)))
        if isinstance(result, Recipe):
            usable(result)

    prop()


def test_recipe_files_of_random_bytes():
    """Random bytes, and a valid recipe's bytes with some flipped, cut or inserted: non-UTF-8, invalid
    TOML, or a document validation judges."""
    good = tomli_w.dumps(valid_recipe()).encode()

    @st.composite
    def damaged(draw) -> bytes:
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data)))
            edit = draw(st.sampled_from(["flip", "cut", "insert"]))
            if edit == "flip" and at < len(data):
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif edit == "cut":
                del data[at : at + draw(st.integers(1, 40))]
            else:
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
        return bytes(data)

    @fuzz(200)
    @given(st.one_of(st.binary(max_size=200), damaged()))
    @example(b"\xff\xfe" + good)  # not UTF-8
    @example(b"seed = " + b"[" * 2000 + b"]" * 2000)  # deeper than the TOML parser's recursion
    @example(b"[[stages]]\n" * 3)
    def prop(raw):
        reliability.count("recipes")
        path = TMP / "recipe.toml"
        path.write_bytes(raw)
        holds(lambda: load_recipe(path))

    prop()


TMP = None


@pytest.fixture(autouse=True)
def _tmp(tmp_path):
    global TMP
    TMP = tmp_path
    yield
    TMP = None
