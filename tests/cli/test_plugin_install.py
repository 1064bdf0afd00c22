"""Installing and removing plugins with real pip, then listing in new processes: the catalog is never
wrong. Each test works in a throw-away environment layered over this one (``plugin_env``), so real
``pip install`` / ``uninstall`` runs without touching the project's environment."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.attack("catalog")]


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def listed(env, pattern: str) -> list[str]:
    proc = env.zoo("list", pattern, "--names")
    ok(proc)
    return proc.stdout.split()


def plugin_row(env, name: str) -> list[str] | None:
    rows = [line.split() for line in ok(env.zoo("plugins")).splitlines()]
    return next((r for r in rows if r and r[0] == name), None)


@pytest.mark.parametrize("editable", [True, False], ids=["editable", "regular"])
def test_zoo_plugins_install_then_uninstall(plugin_env, tmp_path, editable):
    ok(plugin_env.zoo("plugins", "new", "zoo-ztfresh", "--dir", tmp_path))
    flags = ["-e"] if editable else []
    out = ok(plugin_env.zoo("plugins", "install", "--no-deps", *flags, tmp_path / "zoo-ztfresh"))
    assert "installed; 1 new catalog entry" in out and "+ backbone ztfresh:ztfresh_tiny" in out
    assert "warning" not in out  # the catalog is read by a new process, which can import the new plugin
    assert listed(plugin_env, "ztfresh*") == ["ztfresh_tiny"]
    assert plugin_row(plugin_env, "ztfresh")[1:4] == ["zoo-ztfresh", "0.1.0", "ok"]
    assert "Traceback" not in ok(plugin_env.zoo("info", "ztfresh:ztfresh_tiny"))

    out = ok(plugin_env.zoo("plugins", "uninstall", "zoo-ztfresh"))
    assert "uninstalled zoo-ztfresh (plugins: ztfresh)" in out
    assert listed(plugin_env, "ztfresh*") == []
    assert plugin_row(plugin_env, "ztfresh") is None
    proc = plugin_env.zoo("info", "ztfresh:ztfresh_tiny")
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown model")


def test_plain_pip_install_and_uninstall_are_seen(plugin_env, tmp_path):
    ok(plugin_env.zoo("plugins", "new", "zoo-ztplain", "--dir", tmp_path))
    assert listed(plugin_env, "ztplain*") == []  # a listing before the install (warm cache after it)
    ok(plugin_env.pip("install", "--no-deps", "-e", tmp_path / "zoo-ztplain"))
    assert listed(plugin_env, "ztplain*") == ["ztplain_tiny"]
    ok(plugin_env.pip("uninstall", "-y", "zoo-ztplain"))
    assert listed(plugin_env, "ztplain*") == []


LIBRARY = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "zt-animals"
version = "{version}"

[tool.setuptools]
py-modules = ["zt_animals"]
"""


def write_library(root, version: str, models: list[str]):
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(LIBRARY.format(version=version))
    (root / "zt_animals.py").write_text(f"MODELS = {models!r}\n")
    return root


def test_upgrading_a_library_a_plugin_enumerates_is_seen(plugin_env, tmp_path):
    ok(plugin_env.zoo("plugins", "new", "zoo-ztzoo", "--dir", tmp_path))
    plugin = tmp_path / "zoo-ztzoo"
    pyproject = plugin / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"torch"]', '"torch", "zt-animals"]'))
    (plugin / "src" / "zoo_ztzoo" / "plugin.py").write_text(
        "import zt_animals\n"
        "from modelzoo.sdk import Spec, hookimpl\n\n\n"
        "@hookimpl\n"
        "def modelzoo_specs():\n"
        "    return [Spec(name=f'ztzoo_{m}', kind='backbone', outputs=['pooled'], builder='zoo_ztzoo.models:build_tiny')\n"
        "            for m in zt_animals.MODELS]\n"
    )
    ok(plugin_env.pip("install", "--no-deps", write_library(tmp_path / "lib1", "1.0", ["cat"])))
    ok(plugin_env.pip("install", "--no-deps", plugin))
    assert listed(plugin_env, "ztzoo*") == ["ztzoo_cat"]
    assert listed(plugin_env, "ztzoo*") == ["ztzoo_cat"]  # warm
    ok(plugin_env.pip("install", "--no-deps", write_library(tmp_path / "lib2", "2.0", ["cat", "dog"])))
    assert listed(plugin_env, "ztzoo*") == ["ztzoo_cat", "ztzoo_dog"]
