"""registry.json: the committed catalog of the first-party plugins and zoo/ recipes stays fresh."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROOT

from modelzoo.catalog.registry_file import build_registry, check_registry, registry_plugins, render, write_registry
from modelzoo.cli.main import main
from modelzoo.errors import ZooError

REGISTRY = ROOT / "registry.json"


@pytest.fixture(scope="module")
def fresh(full_catalog):
    return build_registry(registry_plugins(ROOT))


@pytest.fixture
def repo(tmp_path):
    """A folder that declares the repository's registry plugins, as the repository root does."""
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_registry_json_is_fresh(full_catalog):
    stale = check_registry(REGISTRY)
    assert stale is None, f"registry.json is stale ({stale}); run: zoo registry build (at the repo root) and commit it"


def test_registry_contents(fresh):
    assert set(fresh["plugins"]) == {
        "core",
        "classification",
        "detection",
        "segmentation",
        "text",
        "timm",
        "torchvision",
    }
    assert fresh["plugins"]["timm"]["distribution"] == "zoo-timm"
    assert set(fresh["plugins"]["timm"]["requires"]) == {"modelzoo", "timm"}
    assert fresh["plugins"]["torchvision"]["requires"]["torchvision"]
    keys = [(e["kind"], e["plugin"], e["name"]) for e in fresh["entries"]]
    assert keys == sorted(keys)
    assert sum(1 for k in keys if k[0] == "backbone") >= 1000
    assert ("head", "classification", "linear") in keys
    tasks = {k[2] for k in keys if k[0] == "task"}
    assert tasks == {
        "image-classification",
        "multilabel-classification",
        "object-detection",
        "semantic-segmentation",
        "text-classification",
    }
    # only first-party plugins are published
    assert {e["plugin"] for e in fresh["entries"]} <= set(fresh["plugins"])
    assert render(fresh) == render(json.loads(render(fresh)))  # stable, round-trips


def test_stale_registry_is_detected(fresh, repo):
    path = repo / "registry.json"
    write_registry(fresh, path)
    assert check_registry(path) is None
    data = json.loads(path.read_text())
    data["entries"] = [e for e in data["entries"] if e["name"] != "linear"]
    data["entries"][0]["description"] = "edited by hand"
    path.write_text(json.dumps(data))
    assert check_registry(path) == "1 added, 0 removed, 1 changed"
    data["plugins"]["timm"]["requires"]["timm"] = "0.0.1"
    path.write_text(json.dumps(data))
    assert check_registry(path).endswith(", versions differ")
    path.write_text("{oops")
    assert check_registry(path) == "not valid JSON"
    assert check_registry(repo / "absent.json") == "missing"


def test_registry_needs_its_plugin_list(tmp_path):
    with pytest.raises(ZooError, match=r"registry-plugins"):
        registry_plugins(tmp_path)


def test_registry_cli_build_and_check(full_catalog, repo, capsys):
    path = repo / "registry.json"
    assert main(["registry", "build", "--output", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"wrote {path}: ")
    assert main(["registry", "build", "--check", "--output", str(path)]) == 0
    assert "is up to date" in capsys.readouterr()[0]
    data = json.loads(path.read_text())
    data["entries"].pop()
    path.write_text(json.dumps(data))
    assert main(["registry", "build", "--check", "--output", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {path} is stale (1 added")
    assert err.rstrip().endswith("run: zoo registry build")
    assert len(err.strip().splitlines()) == 1
