"""docs/recipes.md is generated from the schema (the recipe dataclasses and every installed task's
``Data``), and ``zoo recipe new`` writes a commented recipe that ``zoo finetune`` runs as written."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelzoo.cli.main import main
from modelzoo.engine.recipedoc import recipe_fields, recipes_markdown
from modelzoo.errors import ZooError

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def test_docs_recipes_md_is_what_the_schema_says():
    assert DOC.read_text(encoding="utf-8") == recipes_markdown(), (
        "docs/recipes.md drifted from the recipe schema; regenerate it: zoo recipe fields --markdown > docs/recipes.md"
    )


def test_every_core_field_has_a_type_a_default_and_a_meaning():
    sections = recipe_fields(tasks=[])
    rows = [row for rows in sections.values() for row in rows]
    names = {row.name for row in rows}
    assert {"model.backbone", "stages[].lr", "optimizer.layer_decay", "data.batch_size", "seed"} <= names
    assert [row.name for row in rows if not row.meaning] == []
    lr = next(row for row in rows if row.name == "stages[].lr")
    assert (lr.type, lr.default) == ("float or unset", "unset")


def test_recipe_new_writes_a_commented_recipe_that_finetune_runs(tmp_path, monkeypatch, capsys):
    from modelzoo.testing import write_color_images

    monkeypatch.chdir(tmp_path)
    write_color_images(tmp_path / "shapes", per_class=4, seed=0)
    args = ["recipe", "new", "--data", "shapes", "--backbone", "timm:test_efficientnet", "--out", "r.toml"]
    assert main(args) == 0
    text = (tmp_path / "r.toml").read_text()
    data = tomllib.loads(text)
    assert data["task"] == "image-classification" and data["data"]["path"] == str(tmp_path / "shapes")
    assert "# an ImageFolder" in text and "# the global batch size" in text
    assert main(args) == 2 and "exists" in capsys.readouterr().err  # never overwritten silently
    sets = ["--set", "data.image_size=16", "--set", "model.pretrained=false"]
    sets += ["--set", "stages.0.epochs=1", "--set", "stages.1.epochs=1", "--quiet"]
    assert main(["finetune", "r.toml", "--out", "run", *sets]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_recipe_new_says_in_one_line_what_it_cannot_read(tmp_path):
    from modelzoo.engine.starter import starter_recipe

    (tmp_path / "empty").mkdir()
    with pytest.raises(ZooError, match=r"^no installed task recognises .*empty; name one with --task"):
        starter_recipe(tmp_path / "empty")
    with pytest.raises(ZooError, match=r"^--data .*nowhere: no such file or folder$"):
        starter_recipe(tmp_path / "nowhere")
