"""Property tests: any COCO JSON or Pascal-VOC XML annotation file, however malformed, loads into valid
records or stops with one ``ZooError`` line naming the file; never another exception or a hang.

Files are a small valid set mutated by hypothesis: fields dropped or given values of another JSON type,
boxes that are degenerate, outside the image, NaN or beyond any float, unknown image and category ids,
duplicate ids; and at the byte level: non-UTF-8, cut short, garbage XML, entity expansion. What loads
must be usable: every box inside its image with positive size, every label an index into the labels.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image
from zoo_detection.data import load_coco, load_detection_data, load_voc

from modelzoo.sdk import ZooError
from modelzoo.testing import reliability

pytestmark = pytest.mark.attack("annotations and text")

fuzz = reliability.fuzz_settings
ROOT: Path = Path()  # the module's folder of images and files (set by the fixture below)

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.sampled_from([10**400, -(10**400), 2**63, -1, 0, 1e308, math.nan, "", "a.png", "../a.png", "\x00"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
BOXES = st.one_of(
    st.lists(st.one_of(st.integers(-50, 100), st.floats(allow_nan=True, allow_infinity=True)), min_size=0, max_size=6),
    st.sampled_from([[0, 0, 0, 0], [39, 29, 5, 5], [-5, -5, 10, 10], [10**400, 0, 1, 1], [1, 2, 3, "4"], None]),
)


def valid_coco() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 3, 10, 12]},
            {"id": 2, "image_id": 2, "category_id": 7, "bbox": [20, 5, 19, 20], "iscrowd": 1},
            {"id": 3, "image_id": 2, "category_id": 3, "bbox": [1, 1, 5, 5]},
        ],
        "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
    }


@st.composite
def coco_documents(draw) -> object:
    """A valid COCO document with a few structural edits (mostly one, so each check is reached)."""
    doc = valid_coco()
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 5]))):
        section = draw(st.sampled_from(["images", "annotations", "categories", "top", "whole"]))
        if section == "whole":
            return (
                draw(JSON_VALUES)
                if draw(st.booleans())
                else {**doc, draw(st.sampled_from(list(doc))): draw(JSON_VALUES)}
            )
        if section == "top":
            key = draw(st.sampled_from(["images", "annotations", "categories"]))
            if draw(st.booleans()):
                doc.pop(key, None)
            else:
                doc[key] = draw(JSON_VALUES)
            continue
        items = doc.get(section)
        if not isinstance(items, list) or not items:
            continue
        i = draw(st.integers(0, len(items) - 1))
        edit = draw(st.sampled_from(["drop field", "retype field", "box", "id", "duplicate", "replace item"]))
        item = items[i]
        if edit == "replace item" or not isinstance(item, dict):
            items[i] = draw(JSON_VALUES)
        elif edit == "duplicate":
            items.append(copy.deepcopy(item))
        elif edit == "box" and section == "annotations":
            item["bbox"] = draw(BOXES)
        elif edit == "id":
            key = {
                "images": "id",
                "categories": "id",
                "annotations": draw(st.sampled_from(["image_id", "category_id"])),
            }
            item[key[section]] = draw(st.one_of(st.integers(-2, 9), st.sampled_from(["1", 1.0, 3.5, None, [1], {}])))
        else:
            key = draw(st.sampled_from([*sorted(item), "iscrowd", "width", "height", "name", "file_name"]))
            if edit == "drop field":
                item.pop(key, None)
            else:
                item[key] = draw(JSON_VALUES)
    return doc


def check_loaded(records, labels, counts) -> None:
    """What loads is usable: boxes inside their image with positive size, labels indexing the label list."""
    assert labels and all(isinstance(n, str) for n in labels) and len(set(labels)) == len(labels)
    assert set(counts) == {"skipped_images", "skipped_annotations"}
    for rec in records:
        assert Path(rec.path).is_file() and rec.width > 0 and rec.height > 0
        assert len(rec.boxes) == len(rec.labels) == len(rec.crowd)
        for (x0, y0, x1, y1), label in zip(rec.boxes, rec.labels):
            assert all(math.isfinite(v) for v in (x0, y0, x1, y1))
            assert 0 <= x0 < x1 <= rec.width and 0 <= y0 < y1 <= rec.height
            assert 0 <= label < len(labels)


def holds(run) -> None:
    try:
        result = run()
    except ZooError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return
    check_loaded(*result)


@pytest.fixture(scope="module", autouse=True)
def root(tmp_path_factory):
    global ROOT
    ROOT = tmp_path_factory.mktemp("annotations")
    pixels = (np.arange(40 * 30 * 3) % 251).astype(np.uint8).reshape(30, 40, 3)
    for folder in ("images", "voc/JPEGImages"):
        (ROOT / folder).mkdir(parents=True)
        for name in ("a.png", "b.png"):
            Image.fromarray(pixels).save(ROOT / folder / name)
    (ROOT / "voc" / "Annotations").mkdir()
    return ROOT


@fuzz(300)
@given(coco_documents(), st.sampled_from(["error", "skip"]), st.sampled_from([None, ["cat", "dog"], ["dog"]]))
@example({**valid_coco(), "categories": [{"id": "3", "name": "cat"}, {"id": 7, "name": "dog"}]}, "error", None)
@example({**valid_coco(), "categories": [{"name": "cat"}]}, "error", None)
@example({**valid_coco(), "annotations": {"id": 1}}, "skip", None)
@example({**valid_coco(), "images": [{"file_name": "a.png"}]}, "error", None)
def test_coco_documents(doc, on_bad, labels):
    reliability.count("annotations and text")
    path = ROOT / "coco.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    holds(lambda: load_coco(path, ROOT / "images", on_bad, labels=labels))


@st.composite
def damaged_bytes(draw, good: bytes) -> bytes:
    data = bytearray(good)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if edit == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "cut":
            del data[at : at + draw(st.integers(1, 20))]
        elif edit == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


@fuzz(150)
@given(st.one_of(damaged_bytes(json.dumps(valid_coco()).encode()), st.binary(max_size=100)))
@example(b"\xff\xfe" + json.dumps(valid_coco()).encode())  # not UTF-8
@example(b"[" * 100_000 + b"]" * 100_000)  # deeper than the JSON parser's recursion
@example(b'{"images": [], "categories": [{"id": 1, "name": "x"}], "annotations": [{"bbox": [' + b"9" * 5000 + b"]}]}")
def test_coco_bytes(raw):
    reliability.count("annotations and text")
    path = ROOT / "coco-bytes.json"
    path.write_bytes(raw)
    holds(lambda: load_coco(path, ROOT / "images"))


def voc_xml(objects: list[tuple[str, list]], filename: str = "a.png") -> str:
    parts = [f"<annotation><filename>{filename}</filename><size><width>40</width><height>30</height></size>"]
    for name, box in objects:
        coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
        parts.append(f"<object><name>{name}</name><difficult>0</difficult><bndbox>{coords}</bndbox></object>")
    return "".join(parts) + "</annotation>"


GOOD_VOC = voc_xml([("dog", [3, 4, 12, 15]), ("cat", [21, 6, 39, 25])])
XML_TEXT = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", "nan", "inf", "-1", "1e400", "9" * 5000, "0x10", " 7 ", "&amp;", "&lt;b&gt;", "]]>"]),
)


@st.composite
def voc_files(draw) -> str | bytes:
    """The good XML with a few element-level edits, or damaged at the byte level."""
    if draw(st.integers(0, 3)) == 0:
        return draw(damaged_bytes(GOOD_VOC.encode()))
    objects = [("dog", [3, 4, 12, 15]), ("cat", [21, 6, 39, 25])]
    filename = "a.png"
    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):
        edit = draw(st.sampled_from(["name", "coord", "drop coord", "filename", "object", "no objects"]))
        i = draw(st.integers(0, len(objects) - 1)) if objects else 0
        if edit == "name" and objects:
            objects[i] = (draw(XML_TEXT), objects[i][1])
        elif edit == "coord" and objects:
            box = list(objects[i][1])
            box[draw(st.integers(0, len(box) - 1))] = draw(XML_TEXT)
            objects[i] = (objects[i][0], box)
        elif edit == "drop coord" and objects:
            objects[i] = (objects[i][0], objects[i][1][: draw(st.integers(0, 3))])
        elif edit == "filename":
            filename = draw(st.one_of(XML_TEXT, st.sampled_from(["b.png", "../images/a.png", "none.png", "/etc"])))
        elif edit == "object":
            objects.append((draw(XML_TEXT), [draw(XML_TEXT) for _ in range(4)]))
        else:
            objects = []
    escape = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
    text = (
        voc_xml(
            ["".join(escape.get(c, c) for c in name), ["".join(escape.get(c, c) for c in str(v)) for v in box]]
            for name, box in objects
        )
        if draw(st.booleans())
        else voc_xml(objects, filename)
    )
    return text


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol">'
    + "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";" if i else "&l;") * 10}">' for i in range(9))
    + "]><annotation><filename>a.png</filename><object><name>&l8;</name></object></annotation>"
)


@fuzz(200)
@given(voc_files(), st.sampled_from([None, ["cat", "dog"], ["dog"]]), st.sampled_from(["error", "skip"]))
@example(BILLION_LAUGHS, None, "error")
@example('<?xml version="1.0" encoding="x-unknown"?><annotation/>', None, "error")
@example(b"\xff\xfe<annotation/>", None, "error")
def test_voc_files(xml, labels, on_bad):
    reliability.count("annotations and text")
    path = ROOT / "voc" / "Annotations" / "x.xml"
    path.write_bytes(xml if isinstance(xml, bytes) else xml.encode("utf-8", "surrogatepass"))
    holds(lambda: load_voc(ROOT / "voc", ["x"], on_bad, labels=labels))


@fuzz(100)
@given(st.one_of(st.binary(max_size=40), st.lists(st.text(max_size=12), max_size=4).map("\n".join)))
@example(b"\xff\xfex\n")
@example("../../images/a")
def test_voc_split_files(content):
    """A VOC split file (one image id per line) names the annotations to read: ids are plain names."""
    reliability.count("annotations and text")
    (ROOT / "voc" / "Annotations" / "a.xml").write_text(GOOD_VOC, encoding="utf-8")
    split = ROOT / "voc" / "split.txt"
    split.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    cfg = SimpleNamespace(
        dataset=None, format="voc", path=str(ROOT / "voc"), train_file="split.txt", val_file="split.txt",
        images_dir=None, labels=None, options={}, on_bad_image="error", val_split=0.0, train_limit=None, val_limit=None,
    )  # fmt: skip
    try:
        data = load_detection_data(cfg, 0, registered=None)
    except ZooError as exc:
        assert "\n" not in str(exc) and "\r" not in str(exc), repr(str(exc))
        return
    check_loaded(data.train, data.labels, {"skipped_images": 0, "skipped_annotations": 0})
