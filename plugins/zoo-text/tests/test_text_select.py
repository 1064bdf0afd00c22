"""zoo select on text: the tiny local BERT's pooled embeddings are scored exactly like image features
(linear probe, kNN, LogME through the classification task zoo-text builds on), and the recipe it
writes fine-tunes on those cached embeddings."""

from __future__ import annotations

import json

import pytest
from test_text import sentiment, tiny, tiny_dir, tiny_recipe, write_csv  # noqa: F401  (fixtures)

from modelzoo.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread", "tiny")  # tiny: the fake plugin registering tiny-bert


def test_select_scores_a_text_encoder_on_pooled_embeddings(tmp_path, capsys, monkeypatch):
    train = write_csv(tmp_path / "train.csv", sentiment(60, 0))
    val = write_csv(tmp_path / "val.csv", sentiment(20, 1))
    recipe = tmp_path / "text.toml"
    import tomli_w

    recipe.write_text(tomli_w.dumps(tiny_recipe(train, val)), encoding="utf-8")
    out = tmp_path / "sel"
    args = ["select", "--recipe", str(recipe), "--candidates", "tiny-bert", "--samples", "30", "--draws", "2"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "selection.json").read_text())
    (cand,) = record["candidates"]
    assert record["task"] == "text-classification" and cand["name"] == "tiny-bert.rand"
    assert set(cand["scores"]) == {"probe", "knn", "logme"} and 0.0 <= cand["scores"]["probe"] <= 1.0
    assert cand["prior"] is None and cand["p_rank1"] == 1.0
    assert record["examples"] == {"train": 60, "per_draw": 30, "draws": 2}
    ref = record["reference"]
    assert ref is not None and ref["name"] == "tiny-bert (random init)"
    capsys.readouterr()
    import modelzoo.engine

    computed = []
    original = modelzoo.engine.compute_features
    monkeypatch.setattr(modelzoo.engine, "compute_features", lambda *a, **k: computed.append(1) or original(*a, **k))
    assert main(["finetune", record["recipe_file"], "--out", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["accuracy"] >= 0.5
    assert computed == []  # the head stage trained on the embeddings select had cached
