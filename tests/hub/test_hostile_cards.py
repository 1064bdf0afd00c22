"""Model cards written by someone else: ``zoo list --hub`` on card data of the wrong types (model-index as
a string, metrics that are not numbers, lists where a name belongs, a 10 MB card) shows the row with '-'
where a value is unusable, never a bug line; a run's torn ``metrics.jsonl`` never stops a card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelzoo.hub.card import build_card, metric_rows
from modelzoo.testing import hub_env, zoo_subprocess
from modelzoo.testing.reliability import count

GOOD = "---\nlibrary_name: modelzoo\nlicense: mit\npipeline_tag: image-classification\n---\n# good\n"
HOSTILE = {
    "org/index-string": "---\nlibrary_name: modelzoo\nmodel-index: just a string\n---\n",
    "org/metric-words": (
        "---\nlibrary_name: modelzoo\nmodel-index:\n- name: x\n  results:\n  - task: {type: image-classification}\n"
        "    dataset: {name: d, type: d}\n    metrics:\n    - {type: accuracy, value: high}\n"
        "    - {type: [1, 2], value: {a: 1}}\n---\n"
    ),
    "org/results-junk": "---\nlibrary_name: modelzoo\nmodel-index:\n- results: 7\n- 5\n- name: [x]\n---\n",
    "org/list-license": "---\nlibrary_name: modelzoo\nlicense: [mit, apache-2.0]\npipeline_tag: 5\ntags: [1, 2]\n---\n",
    "org/name-list": "---\nlibrary_name: [modelzoo, timm]\nlicense: {a: b}\n---\n",
    "org/not-mapping": "---\n- a\n- b\n---\n",
    "org/huge": "---\nlibrary_name: modelzoo\ndescription: '" + "x" * 10_000_000 + "'\n---\n",
    "org/nan-metric": (
        "---\nlibrary_name: modelzoo\nmodel-index:\n- name: x\n  results:\n  - task: {type: t}\n"
        "    dataset: {name: d, type: d}\n    metrics:\n    - {type: accuracy, value: .nan}\n---\n"
    ),
}


@pytest.mark.attack("hub")
def test_zoo_list_hub_survives_malformed_cards(hub_server, tmp_path):
    hub_server.commit("org/good", {"README.md": GOOD.encode()})
    for repo, card in HOSTILE.items():
        hub_server.commit(repo, {"README.md": card.encode()})
    count("hub", len(HOSTILE))
    env = hub_env(hub_server, tmp_path / "home")
    shown = zoo_subprocess("list", "--hub", "org", env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr and "bug" not in shown.stderr.lower(), shown.stderr
    assert "org/good" in shown.stdout and "org/index-string" in shown.stdout, shown.stdout
    assert "org/metric-words" in shown.stdout and "org/huge" in shown.stdout
    for line in shown.stdout.splitlines():
        assert len(line) < 300, line[:300]
    listed = zoo_subprocess("list", "--hub", "org", "--json", env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows["org/good"]["license"] == "mit"
    for repo in ("org/metric-words", "org/nan-metric", "org/index-string", "org/results-junk"):
        assert rows[repo]["metrics"] == {}, rows[repo]
    assert rows["org/list-license"]["license"] is None and rows["org/list-license"]["task"] is None


RUN_CONFIG = {
    "task": "image-classification",
    "backbone": {"name": "timm:test_efficientnet", "pretrained": None},
    "head": {"name": "classification:linear"},
    "num_classes": 2,
    "labels": ["a", "b"],
}


@pytest.mark.attack("files")
def test_a_torn_metrics_file_is_skipped_and_said(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    good = json.dumps({"epoch": 1, "loss": 0.5, "val_accuracy": 0.75})
    torn = [
        good + "\n" + good[:17],  # killed mid-write
        good + "\nnot json at all\n[1, 2]\n" + "[" * 100_000 + "\n" + '{"epoch": 2, "loss": 1' + "0" * 5000 + "}\n",
        good + "\n\xff\xfe garbage \x00\n",
    ]
    for text in torn:
        metrics.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text else text.encode("latin-1"))
        rows, skipped = metric_rows(metrics)
        assert rows and rows[0]["epoch"] == 1 and skipped >= 1
        card = build_card("org/torn", RUN_CONFIG, {"metrics.jsonl": metrics})
        assert "Per-epoch metrics" in card and f"{skipped} torn or non-JSON line(s) of `metrics.jsonl` skipped" in card
    count("files", len(torn))
    assert metric_rows(Path(tmp_path / "absent.jsonl")) == ([], 0)
