"""`zoo plugins new` writes a working skeleton (a backbone, or a whole task); a failed install is one line.

Installing and uninstalling real plugins with pip is tested in tests/cli/test_plugin_install.py (in a
throw-away environment); the task skeleton's whole lifecycle in tests/model/test_task_plugin.py.
"""

from __future__ import annotations

import ast
import tomllib

import pytest

from modelzoo.cli.main import main
from modelzoo.testing import clean_env, zoo_subprocess


def test_plugins_new_writes_a_skeleton(tmp_path, capsys):
    assert main(["plugins", "new", "zoo-myplugin", "--dir", str(tmp_path)]) == 0
    out, _ = capsys.readouterr()
    root = tmp_path / "zoo-myplugin"
    assert f"wrote plugin skeleton {root}" in out
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/zoo_myplugin/__init__.py",
        "src/zoo_myplugin/models.py",
        "src/zoo_myplugin/plugin.py",
        "tests/test_myplugin.py",
    ]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "zoo-myplugin"
    assert project["project"]["entry-points"]["modelzoo"] == {"myplugin": "zoo_myplugin.plugin"}
    for path in root.rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    plugin_src = (root / "src/zoo_myplugin/plugin.py").read_text()
    assert "@hookimpl" in plugin_src and 'builder="zoo_myplugin.models:build_tiny"' in plugin_src
    assert "import torch" not in plugin_src  # listing must not need torch


def test_plugins_new_task_writes_a_task_plugin(tmp_path, capsys):
    """The task skeleton is a whole task (tests/model/test_task_plugin.py runs it through its lifecycle)."""
    assert main(["plugins", "new", "zoo-ages", "--task", "image-regression", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "zoo-ages"
    assert f"wrote task plugin skeleton (image-regression) {root}" in capsys.readouterr()[0]
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/zoo_ages/__init__.py",
        "src/zoo_ages/models.py",
        "src/zoo_ages/plugin.py",
        "src/zoo_ages/task.py",
        "tests/test_ages.py",
    ]
    for path in root.rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    plugin_src = (root / "src/zoo_ages/plugin.py").read_text()
    assert 'kind="task"' in plugin_src and 'builder="zoo_ages.task:ImageRegression"' in plugin_src
    assert "import torch" not in plugin_src
    assert "class ImageRegression(Task):" in (root / "src/zoo_ages/task.py").read_text()
    assert main(["plugins", "new", "zoo-other", "--task", "Bad Task", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr()[1].startswith("error: task name 'Bad Task' must be lowercase")
    assert not (tmp_path / "zoo-other").exists()


@pytest.mark.parametrize("name", ["Zoo_Bad", "zoo myplugin", "zoo_x", "1zoo", "zoo.x"])
def test_plugins_new_rejects_bad_names(tmp_path, capsys, name):
    parent = tmp_path / "plugins"
    parent.mkdir()
    assert main(["plugins", "new", name, "--dir", str(parent)]) == 2
    _, err = capsys.readouterr()
    assert err == f"error: plugin name {name!r} must be lowercase letters, digits and '-', e.g. zoo-myplugin\n"
    assert list(parent.iterdir()) == []


# "zoo-" leaves an empty plugin name (entry point ` = "zoo_.plugin"`): refused.
def test_plugins_new_rejects_an_empty_plugin_part(tmp_path, capsys):
    assert main(["plugins", "new", "zoo-", "--dir", str(tmp_path)]) == 2


def test_plugins_new_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / "zoo-taken").mkdir()
    assert main(["plugins", "new", "zoo-taken", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr()[1]
    assert list((tmp_path / "zoo-taken").iterdir()) == []


def test_skeleton_registers_when_on_the_path(tmp_path, fake_site, monkeypatch):
    """Without pip: the skeleton's module plus a dist-info naming its entry point is a plugin."""
    from modelzoo.catalog import lookup as catalog_mod

    assert main(["plugins", "new", "zoo-onpath", "--dir", str(tmp_path)]) == 0
    monkeypatch.syspath_prepend(str(tmp_path / "zoo-onpath" / "src"))
    fake_site.add_dist("zoo-onpath", "0.1.0", {"onpath": "zoo_onpath.plugin"})
    fake_site.modules.update({"zoo_onpath", "zoo_onpath.plugin", "zoo_onpath.models"})
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,onpath")
    cat = catalog_mod.catalog()
    assert cat.plugins["onpath"].status == "ok"
    assert cat.get("onpath_tiny").qualified_name == "onpath:onpath_tiny"


def _pip_env(cache, plugin):
    # offline pip: --no-deps (given by the test) and no build isolation (setuptools is installed),
    # so pip never needs an index; PIP_NO_BUILD_ISOLATION=0 is pip's (inverted) spelling of that.
    return clean_env(
        MODELZOO_CACHE=str(cache),
        MODELZOO_PLUGINS=f"core,{plugin}",
        PIP_NO_BUILD_ISOLATION="0",
        PIP_NO_INDEX="1",
    )


def test_plugins_install_failure_is_one_line(tmp_path):
    env = _pip_env(tmp_path / "cache", "none")
    proc = zoo_subprocess("plugins", "install", "--no-deps", str(tmp_path / "no-such-dir"), env=env, timeout=300)
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" not in proc.stderr.split("$ ", 1)[0]
    assert proc.stderr.rstrip().splitlines()[-1] == (
        "error: pip install failed (see its output above); the installed plugins are unchanged"
    )
