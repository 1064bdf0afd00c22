"""Where each plugin's catalog entries come from: the cache, the shipped registry, or a live load.

Each plugin is cached under its fingerprint (distribution, version, required versions, source digest),
so adding, upgrading, removing or editing a plugin, or upgrading what it requires, is seen by the very
next load with no invalidation step; failures are never cached; a stale shipped registry never wins.
Fake plugins live in a throw-away ``site-packages`` (``fake_site``) exactly as pip would lay them out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from modelzoo.catalog import lookup as catalog_mod
from modelzoo.catalog.load import catalog_cache_dir, shipped_registry_path
from modelzoo.testing import GOOD_BUILDER, GOOD_PLUGIN, clean_env

pytestmark = pytest.mark.attack("catalog")

EXTRA = GOOD_PLUGIN.replace("zt_goodnet", "zt_extranet")
GOOD_V2 = GOOD_PLUGIN.replace(
    "        ]",
    """            Spec(name="zt_goodnet_v2", kind="backbone", outputs=["pooled"], builder="zt_good_build:build"),
        ]""",
)
NEEDS_LIB = """
    import zt_lib  # the library this plugin enumerates
    from modelzoo import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [Spec(name=f"zt_libnet_{name}", kind="backbone", outputs=["pooled"], builder="zt_x:build")
                for name in zt_lib.MODELS]
"""


def add_good(site, version="1.0", source=GOOD_PLUGIN):
    return site.add_dist("zt-good", version, {"good": "zt_good"}, {"zt_good": source, "zt_good_build": GOOD_BUILDER})


def names(cat):
    return sorted(s.qualified_name for s in cat.specs)


def sources(cat):
    return {name: p.source for name, p in cat.plugins.items() if p.status != "disabled"}


@pytest.fixture
def site(fake_site, monkeypatch, tmp_path):
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "own-cache"))  # cold: not the session's shared cache
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,good,extra,lib")
    add_good(fake_site)
    return fake_site


def test_a_warm_load_comes_from_the_cache(site):
    cold = catalog_mod.load_catalog()
    assert sources(cold)["good"] == "live"
    assert {p.name.split("-")[0] for p in catalog_cache_dir().glob("*.json")} >= {"core", "good"}
    warm = catalog_mod.load_catalog()
    assert sources(warm)["good"] == "cache"
    assert [s.to_dict() for s in warm.specs] == [s.to_dict() for s in cold.specs]
    assert {k: (p.status, p.counts) for k, p in warm.plugins.items()} == {
        k: (p.status, p.counts) for k, p in cold.plugins.items()
    }
    assert catalog_mod.catalog().plugins["good"].source == "cache"
    assert catalog_mod.catalog(refresh=True).plugins["good"].source == "live"


def test_adding_a_plugin_shows_at_once(site):
    assert "extra:zt_extranet" not in names(catalog_mod.load_catalog())
    site.plugin("extra", EXTRA)
    cat = catalog_mod.load_catalog()
    assert "extra:zt_extranet" in names(cat)
    assert sources(cat) == {**sources(cat), "good": "cache", "extra": "live"}


def test_removing_a_plugin_hides_it_at_once(site):
    site.plugin("extra", EXTRA)
    assert "extra:zt_extranet" in names(catalog_mod.load_catalog())
    site.remove_dist("zt-extra")
    cat = catalog_mod.load_catalog()
    assert "extra:zt_extranet" not in names(cat)
    # MODELZOO_PLUGINS still names it, so it stays listed, as missing, with nothing from it
    assert "extra" not in cat.plugins or cat.plugins["extra"].status == "missing"


def test_upgrading_a_plugin_shows_its_new_entries(site):
    assert catalog_mod.load_catalog().plugins["good"].version == "1.0"
    site.remove_dist("zt-good", "1.0")
    add_good(site, "2.0", GOOD_V2)
    cat = catalog_mod.load_catalog()
    assert cat.plugins["good"].version == "2.0" and "good:zt_goodnet_v2" in names(cat)


def test_editing_a_plugin_in_place_is_seen(site):
    """An editable install changes code, not versions: the source digest catches it."""
    catalog_mod.load_catalog()
    site.add_module("zt_good", GOOD_V2)  # same distribution, same version
    cat = catalog_mod.load_catalog()
    assert "good:zt_goodnet_v2" in names(cat) and cat.plugins["good"].source == "live"


def test_upgrading_a_library_the_plugin_enumerates_re_enumerates_it(site):
    site.add_dist("zt-lib", "1.0", modules={"zt_lib": "MODELS = ['a']\n"})
    site.add_dist("zt-libplugin", "1.0", {"lib": "zt_libplugin"}, {"zt_libplugin": NEEDS_LIB})
    info = site.path / "zt_libplugin-1.0.dist-info"
    (info / "METADATA").write_text((info / "METADATA").read_text() + "Requires-Dist: zt-lib\n")
    site.refresh()
    assert "lib:zt_libnet_a" in names(catalog_mod.load_catalog())
    assert catalog_mod.load_catalog().plugins["lib"].source == "cache"
    site.remove_dist("zt-lib", "1.0")  # pip install -U zt-lib: a new version, new models
    site.add_dist("zt-lib", "2.0", modules={"zt_lib": "MODELS = ['a', 'b']\n"})
    sys.modules.pop("zt_libplugin", None)  # (a new process would import both afresh)
    cat = catalog_mod.load_catalog()
    assert {"lib:zt_libnet_a", "lib:zt_libnet_b"} <= set(names(cat)) and cat.plugins["lib"].source == "live"


def test_a_failure_is_never_cached(site):
    """A plugin that cannot import (its library is missing) works as soon as the library is there."""
    site.add_dist("zt-libplugin", "1.0", {"lib": "zt_libplugin"}, {"zt_libplugin": NEEDS_LIB})
    cat = catalog_mod.load_catalog()
    assert cat.plugins["lib"].status == "failed" and "zt_lib" in cat.plugins["lib"].error
    assert not list(catalog_cache_dir().glob("lib-*.json"))
    site.add_module("zt_lib", "MODELS = ['c']\n")  # the same fingerprint: only the import now succeeds
    site.refresh()
    cat = catalog_mod.load_catalog()
    assert cat.plugins["lib"].status == "ok" and "lib:zt_libnet_c" in names(cat)


def test_plugin_selection_only_filters(site, monkeypatch):
    assert catalog_mod.load_catalog().plugins["good"].status == "ok"
    monkeypatch.setenv("MODELZOO_PLUGINS", "core")
    cat = catalog_mod.load_catalog()
    assert cat.plugins["good"].status == "disabled"
    assert {s.plugin for s in cat.specs} <= {"core"}
    monkeypatch.setenv("MODELZOO_PLUGINS", "")
    assert catalog_mod.load_catalog().specs == []


@pytest.mark.parametrize(
    "garbage", ["{not json", "", "[]", '{"format": 2}', '{"format": 2, "plugin": {}, "specs": []}']
)
def test_a_corrupt_cache_file_is_reloaded(site, garbage):
    catalog_mod.load_catalog()
    [path] = catalog_cache_dir().glob("good-*.json")
    path.write_text(garbage, encoding="utf-8")
    cat = catalog_mod.load_catalog()
    assert cat.plugins["good"].source == "live" and "good:zt_goodnet" in names(cat)
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == 2  # rewritten whole
    assert catalog_mod.load_catalog().plugins["good"].source == "cache"


def test_no_cache_env_writes_nothing(site, monkeypatch):
    monkeypatch.setenv("MODELZOO_NO_CACHE", "1")
    assert catalog_mod.load_catalog().plugins["good"].source == "live"
    assert catalog_mod.load_catalog().plugins["good"].source == "live"
    assert not catalog_cache_dir().exists()


def test_unwritable_cache_dir_only_costs_speed(site, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should be")
    monkeypatch.setenv("MODELZOO_CACHE", str(blocker / "cache"))
    assert "good:zt_goodnet" in names(catalog_mod.load_catalog())


# -- the shipped registry ---------------------------------------------------------------------------
COLD = (
    "import sys, json\n"
    "from modelzoo.catalog import catalog\n"
    "cat = catalog()\n"
    "heavy = [m for m in ('torch', 'timm', 'torchvision', 'transformers') if m in sys.modules]\n"
    "print(json.dumps({'sources': {n: p.source for n, p in cat.plugins.items() if p.status != 'disabled'},\n"
    "                  'heavy': heavy,\n"
    "                  'names': sorted(f'{s.plugin}:{s.name}' for s in cat.specs)}))\n"
)


def cold_load(tmp_path, **env: str) -> dict:
    cache = tmp_path / f"cold-{len(list(tmp_path.glob('cold-*')))}"
    proc = subprocess.run(
        [sys.executable, "-c", COLD],
        env=clean_env(MODELZOO_CACHE=str(cache), **env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_cold_list_of_first_party_plugins_reads_the_shipped_registry(tmp_path):
    got = cold_load(tmp_path)
    assert set(got["sources"].values()) == {"registry"}, got["sources"]
    assert got["heavy"] == []  # no torch, timm, torchvision or transformers
    assert len(got["names"]) >= 1400


def _stale_registry(tmp_path, edit) -> str:
    data = json.loads(shipped_registry_path().read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_a_stale_shipped_registry_never_shows_wrong_entries(tmp_path):
    def bump(data):  # registry built against another timm: its timm entries must not be used
        data["plugins"]["timm"]["requires"]["timm"] = "0.0.1"
        data["entries"] = [e for e in data["entries"] if not (e["plugin"] == "timm" and e["name"] == "resnet18")]

    got = cold_load(tmp_path, MODELZOO_REGISTRY=_stale_registry(tmp_path, bump))
    assert got["sources"]["timm"] == "live" and got["sources"]["torchvision"] == "registry"
    assert "timm:resnet18" in got["names"]  # the live enumeration wins

    def ghost(data):  # a plugin the registry knows but that is not installed
        data["plugins"]["ghost"] = {**data["plugins"]["timm"], "distribution": "zoo-ghost"}
        data["entries"].append({**data["entries"][0], "plugin": "ghost", "name": "ghostnet_only_here"})

    got = cold_load(tmp_path, MODELZOO_REGISTRY=_stale_registry(tmp_path, ghost))
    assert not any(n.startswith("ghost:") for n in got["names"]) and "ghost" not in got["sources"]


def test_a_plugin_the_registry_does_not_know_is_loaded_live(fake_site, tmp_path):
    add_good(fake_site)
    got = cold_load(tmp_path, PYTHONPATH=str(fake_site.path))
    assert got["sources"]["good"] == "live" and got["sources"]["timm"] == "registry"
    assert "good:zt_goodnet" in got["names"]


def test_a_damaged_registry_only_costs_speed(tmp_path):
    bad = tmp_path / "registry.json"
    shutil.copyfile(shipped_registry_path(), bad)
    bad.write_text(bad.read_text()[:1000], encoding="utf-8")
    got = cold_load(tmp_path, MODELZOO_REGISTRY=str(bad), MODELZOO_PLUGINS="core,classification")
    assert got["sources"] == {"core": "live", "classification": "live"}
