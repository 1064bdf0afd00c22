"""Property tests: any CSV/TSV or JSONL text-classification file (plain, .gz or .bz2) loads into valid
examples or stops with one ``ZooError`` line naming the file (and the line); never another exception.

Files are built from random rows by hypothesis: missing or extra columns, empty or whitespace texts and
labels, labels of other JSON types, quotes, NUL, CR/LF and delimiters inside fields, a BOM, odd
delimiters, non-UTF-8 bytes, cut-short and corrupt compressed files. What loads is usable: every text
and label a non-empty one-line-safe string, as many labels as texts, and a corpus of at least 2 classes.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from zoo_text.task import TextData
from zoo_text.textdata import load_text_data, read_split

from modelzoo.sdk import ZooError
from modelzoo.testing import reliability

pytestmark = pytest.mark.attack("annotations and text")

fuzz = reliability.fuzz_settings

FIELD = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "pos", "neg", "a,b", 'say "hi"', "line\nbreak", "cr\rlf", "\x00", "\ufeff", "é", "\t"]),
)
LABELS = st.sampled_from(["pos", "neg", "neu", "", " ", "pos\n", "1", "x\ny"])
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        FIELD,
        st.sampled_from([10**30, "9" * 5000]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=5,
)


def check_split(split) -> None:
    assert len(split.texts) == len(split.labels) == len(split.where)
    for text, label in zip(split.texts, split.labels):
        assert isinstance(text, str) and text.strip() == text and text
        assert isinstance(label, str) and label.strip() == label and label


def one_line(exc: ZooError) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)


def compress(data: bytes, how: str) -> bytes:
    return gzip.compress(data, mtime=0) if how == ".gz" else bz2.compress(data) if how == ".bz2" else data


@st.composite
def csv_files(draw) -> tuple[bytes, str, str | None]:
    """(file bytes, suffix, delimiter option): a header and rows written by csv, then maybe damaged."""
    delimiter = draw(st.sampled_from([",", ",", "\t", ";", "|"]))
    header = draw(
        st.one_of(st.just(["text", "label"]), st.just(["label", "text", "extra"]), st.lists(FIELD, max_size=3))
    )
    rows = draw(st.lists(st.lists(st.one_of(FIELD, LABELS), max_size=4), max_size=6))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):
        text = "\ufeff" + text
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:  # bytes that are not UTF-8, or cut anywhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80\x80", b""])) + raw[at + 1 :]
    suffix = draw(st.sampled_from([".csv", ".csv", ".tsv", ".csv.gz", ".csv.bz2"]))
    raw = compress(raw, Path(suffix).suffix)
    if suffix.endswith((".gz", ".bz2")) and draw(st.integers(0, 3)) == 0:  # a damaged archive
        raw = raw[: draw(st.integers(0, len(raw)))] + draw(st.binary(max_size=4))
    option = draw(st.sampled_from([None, None, delimiter, ";", "", "ab"]))
    return raw, suffix, option


@st.composite
def jsonl_files(draw) -> tuple[bytes, str, None]:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["row", "row", "row", "value", "garbage", "blank"]))
        if kind == "row":
            row = {"text": draw(st.one_of(FIELD, JSON_VALUES)), "label": draw(st.one_of(LABELS, JSON_VALUES))}
            for key in draw(st.lists(st.sampled_from(["text", "label"]), max_size=1)):
                row.pop(key)
            lines.append(json.dumps(row))
        elif kind == "value":
            lines.append(json.dumps(draw(JSON_VALUES)))
        elif kind == "garbage":
            lines.append(draw(st.sampled_from(["{", "[" * 50_000, '{"text": NaN, "label": "pos"}', "\x00", "{}}"])))
        else:
            lines.append(draw(st.sampled_from(["", "  ", "\r"])))
    raw = ("\ufeff" if draw(st.booleans()) else "").encode() + "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:
        raw += draw(st.sampled_from([b"\xff\n", b'{"text": "\xe9", "label": "pos"}\n']))
    suffix = draw(st.sampled_from([".jsonl", ".jsonl", ".ndjson", ".jsonl.gz", ".jsonl.bz2"]))
    raw = compress(raw, Path(suffix).suffix)
    if suffix.endswith((".gz", ".bz2")) and draw(st.integers(0, 3)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))] + draw(st.binary(max_size=4))
    return raw, suffix, None


def write(folder: Path, name: str, raw: bytes, suffix: str) -> Path:
    path = folder / f"{name}{suffix}"
    path.write_bytes(raw)
    return path


@fuzz(250)
@given(st.one_of(csv_files(), jsonl_files()))
@example((b'{"text": ' + b"9" * 5000 + b', "label": "pos"}\n', ".jsonl", None))  # longer than int() takes
@example((b"[" * 50_000 + b"\n", ".jsonl", None))  # deeper than the JSON parser's recursion
@example((gzip.compress(b"text,label\nok,pos\n")[:-6], ".csv.gz", None))  # a cut-short archive
@example((b"BZh91AY&SY" + b"\x00" * 20, ".csv.bz2", None))  # a corrupt bzip2 stream
@example((b"text,label\nok,pos\n", ".csv", "ab"))  # a delimiter the csv module refuses
@example((b'{"text": "ok", "label": ["pos", "neg"]}\n', ".jsonl", None))  # a list is no class name
def test_read_split(tmp_path_factory, case):
    reliability.count("annotations and text")
    raw, suffix, delimiter = case
    path = write(tmp_path_factory.mktemp("split"), "data", raw, suffix)
    cfg = TextData(train_file=str(path), options={"delimiter": delimiter} if delimiter is not None else {})
    try:
        split = read_split(str(path), None, cfg, "data.train_file")
    except ZooError as exc:
        one_line(exc)
        return
    check_split(split)


GOOD_TEXT = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=20)
DAMAGE = st.sampled_from(["none", "none", "none", "empty text", "empty label", "odd label", "bom", "not utf-8", "crlf"])


@st.composite
def corpus_files(draw) -> tuple[bytes, str]:
    """A mostly valid split: rows of real-looking texts and labels, with at most one kind of damage."""
    rows = draw(st.lists(st.tuples(GOOD_TEXT, st.sampled_from(["pos", "neg", "neu"])), min_size=2, max_size=8))
    damage = draw(DAMAGE)
    if damage in ("empty text", "empty label", "odd label"):
        i = draw(st.integers(0, len(rows) - 1))
        text, label = rows[i]
        rows[i] = (
            ("  ", label) if damage == "empty text" else (text, "") if damage == "empty label" else (text, draw(LABELS))
        )
    if draw(st.booleans()):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n" if damage == "crlf" else "\n").writerows([("text", "label"), *rows])
        text, suffix = buffer.getvalue(), ".csv"
    else:
        text = "\n".join(json.dumps({"text": t, "label": lbl}) for t, lbl in rows) + "\n"
        suffix = ".jsonl"
    raw = (b"\xef\xbb\xbf" if damage == "bom" else b"") + text.encode()
    if damage == "not utf-8":
        raw += b"\xff"
    return raw, suffix


@fuzz(150)
@given(corpus_files(), corpus_files(), st.sampled_from([None, None, ["pos", "neg"], ["neg", "x\ny"]]))
def test_load_text_data(tmp_path_factory, train, val, labels):
    """Two files as train and validation splits: a corpus the task can train on, or one line."""
    reliability.count("annotations and text")
    folder = tmp_path_factory.mktemp("corpus")
    train_path = write(folder, "train", *train)
    val_path = write(folder, "val", *val)
    cfg = TextData(train_file=str(train_path), val_file=str(val_path), labels=labels)
    try:
        corpus = load_text_data(cfg, 0)
    except ZooError as exc:
        one_line(exc)
        return
    check_split(corpus.train)
    check_split(corpus.val)
    assert len(corpus.labels) >= 2 and set(corpus.train.labels) == set(corpus.labels)
    assert set(corpus.val.labels) <= set(corpus.labels) and len(corpus.val) > 0


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl.bz2"])
def test_a_decompression_bomb_is_refused_before_it_fills_memory(tmp_path, monkeypatch, suffix):
    """A few KiB that expand a thousandfold stop with one line; a file within the limit still loads."""
    from zoo_text import textdata

    monkeypatch.setattr(textdata, "EXPANSION_FLOOR", 1 << 20)  # the real floor (256 MiB) is too big for a test
    header = b"text,label\n" if suffix.startswith(".csv") else b""
    row = b"ok,pos\n" if suffix.startswith(".csv") else b'{"text": "ok", "label": "pos"}\n'
    how = suffix[suffix.rindex(".") :]
    bomb = write(tmp_path, "bomb", compress(header + row * ((4 << 20) // len(row)), how), suffix)
    assert bomb.stat().st_size < 40 << 10
    cfg = TextData(train_file=str(bomb))
    with pytest.raises(ZooError, match=r"expands to over 1 MiB from .* \(more than 100x\): a decompression bomb") as e:
        read_split(str(bomb), None, cfg, "data.train_file")
    one_line(e.value)
    other = b"no,neg\n" if suffix.startswith(".csv") else b'{"text": "no", "label": "neg"}\n'
    small = write(tmp_path, "small", compress(header + row * 1000 + other, how), suffix)
    assert len(read_split(str(small), None, TextData(train_file=str(small)), "data.train_file").texts) > 1000
    # the limit is never allocated up front: a 1 TiB limit costs nothing for a small file
    monkeypatch.setattr(textdata, "EXPANSION_FLOOR", 1 << 40)
    assert len(read_split(str(small), None, TextData(train_file=str(small)), "data.train_file").texts) > 1000
