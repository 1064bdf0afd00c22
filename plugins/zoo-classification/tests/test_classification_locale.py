"""A non-UTF-8 locale never corrupts labels: an ImageFolder class folder whose name does not decode (bytes
that are not UTF-8, or UTF-8 read under an ASCII locale) is refused with one line naming the folder,
before a model with lone surrogates as labels could be trained or saved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelzoo.sdk import ZooError
from modelzoo.testing import clean_env, write_color_images
from modelzoo.testing.reliability import count

pytestmark = pytest.mark.attack("names")


def folder_with(tmp_path: Path, raw_name: bytes) -> Path:
    root = write_color_images(tmp_path / "data", 2, seed=0, size=16)
    os.rename(root / "red", os.path.join(os.fsencode(root), raw_name))
    return root


@pytest.mark.parametrize("raw", [b"caf\xe9", b"\xff\xfe", b"ok\x1b[2Jred", b"x" * 201])
def test_a_class_folder_that_is_no_label_is_refused_naming_it(tmp_path, raw):
    from zoo_classification.data import image_folder_split

    root = folder_with(tmp_path, raw)
    with pytest.raises(ZooError) as info:
        image_folder_split(root, "error")
    text = str(info.value)
    assert "\n" not in text and "class folder" in text, text
    assert ascii(os.fsdecode(raw))[:30] in text, text
    text.encode("utf-8")  # the message itself never carries a surrogate


SCAN = """
import sys
from pathlib import Path
from modelzoo.sdk import ZooError
from zoo_classification.data import image_folder_split
try:
    classes, _, _ = image_folder_split(Path(sys.argv[1]), "error")
except ZooError as exc:
    print("error:", exc)
else:
    print("labels:", ascii(classes))
"""


def test_utf8_names_under_an_ascii_locale_are_refused_not_corrupted(tmp_path):
    root = folder_with(tmp_path, "café".encode())
    env = clean_env(LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    done = subprocess.run([sys.executable, "-c", SCAN, os.fsencode(root)], env=env, capture_output=True, timeout=120)
    out = done.stdout.decode("ascii", "replace")
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    # either the locale decodes UTF-8 (Python's UTF-8 mode) and the label is right, or it is refused
    assert "labels: ['blue', 'caf\\xe9', 'green']" in out or ("error:" in out and "class folder" in out), out
    assert "\\udc" not in out.split("error:")[0], out
    count("names", 5)
