"""Matching class folders to a model's labels.

An ImageFolder names classes by directory, but labels are free text: Fashion-MNIST's ``T-shirt/top``
cannot be a folder name anywhere, and ``Ankle boot`` is awkward on some systems. A folder matches a
label when its name is, in this order: what an explicit label map says (``data.label_map``: a JSON
object or a two-column CSV, folder -> label); the label itself; the label's filesystem-safe form
(:func:`safe_name`: ``T-shirt/top`` -> ``T-shirt_top``); or that form ignoring case. A folder that
matches nothing is an error naming the closest labels and the folder names they would match.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from modelzoo.sdk import ZooError, did_you_mean

#: characters no portable folder name may hold (Windows forbids them all; POSIX forbids the slash)
_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f]')


def safe_name(label: str) -> str:
    """The folder name a label is saved under: unsafe characters become ``_``; no trailing dots or spaces."""
    return _UNSAFE.sub("_", label).rstrip(". ") or "_"


def read_label_map(path: str | Path) -> dict[str, str]:
    """``folder -> label`` from a JSON object or a CSV with two columns (a ``folder,label`` header is optional)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ZooError(f"data.label_map: no such file {str(path)!r}; give a JSON object or a folder,label CSV")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"data.label_map: cannot read {path} ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ZooError(f"data.label_map: {path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ZooError(
                f'data.label_map: {path} must be a JSON object of folder names to labels, e.g. {{"T-shirt_top": "T-shirt/top"}}'
            )
        return dict(data)
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0]] == ["folder", "label"]:
        rows = rows[1:]
    mapping = {}
    for number, row in enumerate(rows, 1):
        if len(row) != 2:
            raise ZooError(f"data.label_map: {path} row {number} has {len(row)} columns; write folder,label")
        mapping[row[0].strip()] = row[1].strip()
    return mapping


def match_folders(folders: list[str], labels: list[str], label_map: dict[str, str] | None = None) -> list[int]:
    """The index into ``labels`` of each folder (see the module docstring for the rules)."""
    label_map = label_map or {}
    exact = {label: i for i, label in enumerate(labels)}
    safe = {safe_name(label): i for i, label in enumerate(labels)}
    loose = {safe_name(label).lower(): i for i, label in enumerate(labels)}
    out, used = [], {}
    for folder in folders:
        if folder in label_map:
            target = label_map[folder]
            if target not in exact:
                raise ZooError(
                    f"data.label_map maps folder {folder!r} to {target!r}, which is not a label of the model"
                    f"{did_you_mean(target, labels)}"
                )
            index = exact[target]
        else:
            index = exact.get(folder, safe.get(folder, loose.get(folder.lower())))
        if index is None:
            hint = did_you_mean(folder, [safe_name(label) for label in labels]) or ";"
            raise ZooError(
                f"class folder {folder!r} matches no label of the model{hint} name each folder by its label"
                f"{_safe_form_example(labels)}, or map folders to labels with --set data.label_map=FILE"
            )
        if index in used:
            raise ZooError(f"folders {used[index]!r} and {folder!r} both match label {labels[index]!r}; keep one")
        used[index] = folder
        out.append(index)
    return out


def _safe_form_example(labels: list[str]) -> str:
    """`` or the label's safe form (e.g. 'a/b' -> 'a_b')`` for the first label whose safe form differs
    from it; empty when every label is its own safe form (an example ``'0' -> '0'`` shows nothing)."""
    for label in labels:
        if safe_name(label) != label:
            return f" or the label's safe form (e.g. {label!r} -> {safe_name(label)!r})"
    return ""
