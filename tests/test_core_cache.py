"""The on-disk catalog cache: warm loads, invalidation on plugin add/remove/upgrade, corrupt files.

The cache key hashes the mtimes of the ``site-packages`` directories on ``sys.path``; the fake plugins
live in ``tmp/site-packages``, so adding, upgrading or removing a dist-info there is exactly what pip
does to the real one.
"""

from __future__ import annotations

import json

import pytest

from modelzoo import catalog as catalog_mod
from modelzoo.testing import GOOD_BUILDER, GOOD_PLUGIN, touch_later

EXTRA = GOOD_PLUGIN.replace("zt_goodnet", "zt_extranet")
GOOD_V2 = GOOD_PLUGIN.replace(
    "        ]",
    """            Spec(name="zt_goodnet_v2", kind="backbone", outputs=["pooled"], builder="zt_good_build:build"),
        ]""",
)


def add_good(site, version="1.0", source=GOOD_PLUGIN):
    return site.add_dist("zt-good", version, {"good": "zt_good"}, {"zt_good": source, "zt_good_build": GOOD_BUILDER})


def cache_files():
    return sorted(catalog_mod.cache_dir().glob("catalog-*.json"))


def names(cat):
    return sorted(s.qualified_name for s in cat.specs)


@pytest.fixture
def site(fake_site, monkeypatch):
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,good,extra")
    add_good(fake_site)
    touch_later()
    return fake_site


def test_warm_load_comes_from_cache(site):
    cold = catalog_mod.load_catalog()
    assert not cold.from_cache
    assert len(cache_files()) == 1
    warm = catalog_mod.load_catalog()
    assert warm.from_cache
    assert names(warm) == names(cold)
    assert [s.to_dict() for s in warm.specs] == [s.to_dict() for s in cold.specs]
    assert warm.plugins == cold.plugins
    # the process-wide catalog uses the cache too, and refresh rebuilds
    assert catalog_mod.catalog().from_cache
    assert not catalog_mod.catalog(refresh=True).from_cache


def test_adding_a_plugin_invalidates(site):
    assert "extra:zt_extranet" not in names(catalog_mod.load_catalog())
    assert catalog_mod.load_catalog().from_cache
    touch_later()
    site.plugin("extra", EXTRA)
    cat = catalog_mod.load_catalog()
    assert not cat.from_cache
    assert "extra:zt_extranet" in names(cat)
    assert catalog_mod.load_catalog().from_cache
    assert len(cache_files()) == 1  # the stale entry was replaced


def test_removing_a_plugin_invalidates(site):
    site.plugin("extra", EXTRA)
    touch_later()
    assert "extra:zt_extranet" in names(catalog_mod.load_catalog())
    assert catalog_mod.load_catalog().from_cache
    touch_later()
    site.remove_dist("zt-extra")
    cat = catalog_mod.load_catalog()
    assert not cat.from_cache
    assert "extra:zt_extranet" not in names(cat)
    assert "extra" not in cat.plugins


def test_upgrading_a_plugin_invalidates(site):
    cat = catalog_mod.load_catalog()
    assert cat.plugins["good"].version == "1.0"
    assert catalog_mod.load_catalog().from_cache
    touch_later()
    site.remove_dist("zt-good", "1.0")
    add_good(site, "2.0", GOOD_V2)
    cat = catalog_mod.load_catalog()
    assert not cat.from_cache
    assert cat.plugins["good"].version == "2.0"
    assert "good:zt_goodnet_v2" in names(cat)


def test_plugin_selection_is_part_of_the_key(site, monkeypatch):
    assert catalog_mod.load_catalog().plugins["good"].status == "ok"
    monkeypatch.setenv("MODELZOO_PLUGINS", "core")
    cat = catalog_mod.load_catalog()
    assert not cat.from_cache
    assert cat.plugins["good"].status == "disabled"
    assert {s.plugin for s in cat.specs} == {"core"}


# `MODELZOO_PLUGINS=` (load none) and an unset variable (load all) must not share a cache entry.
def test_empty_plugin_selection_has_its_own_key(site, monkeypatch):
    monkeypatch.setenv("MODELZOO_PLUGINS", "")
    none_key = catalog_mod.cache_key()
    assert catalog_mod.load_catalog().specs == []
    monkeypatch.delenv("MODELZOO_PLUGINS")
    assert catalog_mod.cache_key() != none_key


@pytest.mark.parametrize("garbage", ["{not json", "", "[]", '{"format": 1}', '{"plugins": [{"x": 1}], "specs": []}'])
def test_corrupt_cache_is_rebuilt(site, garbage):
    catalog_mod.load_catalog()
    [path] = cache_files()
    path.write_text(garbage, encoding="utf-8")
    cat = catalog_mod.load_catalog()
    assert not cat.from_cache
    assert "good:zt_goodnet" in names(cat)
    data = json.loads(path.read_text(encoding="utf-8"))  # rewritten whole
    assert data["key"] == catalog_mod.cache_key()
    assert catalog_mod.load_catalog().from_cache


def test_no_cache_env_writes_nothing(site, monkeypatch):
    monkeypatch.setenv("MODELZOO_NO_CACHE", "1")
    assert not catalog_mod.load_catalog().from_cache
    assert not catalog_mod.load_catalog().from_cache
    assert cache_files() == []


def test_unwritable_cache_dir_only_costs_speed(site, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should be")
    monkeypatch.setenv("MODELZOO_CACHE", str(blocker / "cache"))
    cat = catalog_mod.load_catalog()
    assert "good:zt_goodnet" in names(cat)
