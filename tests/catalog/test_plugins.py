"""Plugin isolation: broken plugins of each kind are reported and everything else keeps working.

Fake plugin distributions live in a temporary ``site-packages`` on ``sys.path`` (see conftest's
``fake_site``); ``MODELZOO_PLUGINS`` restricts loading to them and ``core`` so timm is never enumerated.
"""

from __future__ import annotations

import pytest

import modelzoo
from modelzoo.catalog import lookup as catalog_mod
from modelzoo.cli.main import main
from modelzoo.errors import ZooError
from modelzoo.testing import GOOD_BUILDER, GOOD_PLUGIN, zoo_subprocess

pytestmark = pytest.mark.attack("plugins")

BAD_IMPORT = """
    import zt_this_dependency_is_not_installed  # noqa: F401
"""

HOOK_RAISES = """
    from modelzoo import hookimpl

    @hookimpl
    def modelzoo_specs():
        raise RuntimeError("boom from the hook")
"""

BAD_SPECS = """
    from modelzoo import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [
            object(),
            Spec(name="zt_no_outputs", kind="backbone", builder="zt_x:build"),
            Spec(name="zt_bad_task", kind="head", consumes=["pooled"], builder="zt_x:build", tasks=["not a task!"]),
            Spec(name="zt_fine_in_badspecs", kind="head", consumes=["pooled"], builder="zt_x:build"),
        ]
"""

ALL_BAD = """
    from modelzoo import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [Spec(name="no spaces allowed", kind="backbone", outputs=["pooled"], builder="zt_x:build")]
"""

NOT_A_LIST = """
    from modelzoo import hookimpl

    @hookimpl
    def modelzoo_specs():
        return 42
"""

DUPLICATES = """
    from modelzoo import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        spec = dict(kind="backbone", outputs=["pooled"], builder="zt_x:build")
        return [Spec(name="zt_dup", **spec), Spec(name="ZT_DUP", **spec), Spec(name="zt_unique", **spec)]
"""

BROKEN = {
    "badimport": BAD_IMPORT,
    "raises": HOOK_RAISES,
    "badspecs": BAD_SPECS,
    "allbad": ALL_BAD,
    "notalist": NOT_A_LIST,
    "dups": DUPLICATES,
}


def add_good(site, version: str = "1.0", source: str = GOOD_PLUGIN):
    return site.add_dist("zt-good", version, {"good": "zt_good"}, {"zt_good": source, "zt_good_build": GOOD_BUILDER})


@pytest.fixture
def broken_site(fake_site, monkeypatch):
    add_good(fake_site)
    for name, source in BROKEN.items():
        fake_site.plugin(name, source)
    monkeypatch.setenv("MODELZOO_PLUGINS", ",".join(["core", "good", *BROKEN]))
    fake_site.refresh()
    return fake_site


def test_each_broken_plugin_is_reported_with_its_reason(broken_site):
    cat = catalog_mod.build_catalog()
    p = cat.plugins
    assert p["core"].status == "ok" and p["good"].status == "ok"
    assert p["good"].dist == "zt-good" and p["good"].version == "1.0"
    assert p["badimport"].status == "failed"
    assert "import failed: ModuleNotFoundError" in p["badimport"].error
    assert "zt_this_dependency_is_not_installed" in p["badimport"].error
    assert p["raises"].status == "failed"
    assert p["raises"].error == "modelzoo_specs raised RuntimeError: boom from the hook"
    assert p["notalist"].status == "failed"
    assert "TypeError" in p["notalist"].error
    assert p["badspecs"].status == "degraded"
    assert p["badspecs"].counts == {"head": 1}
    problems = "\n".join(p["badspecs"].problems)
    assert "expected a modelzoo.sdk.Spec, got object" in problems
    assert "'zt_no_outputs': outputs must be a non-empty subset" in problems
    assert "'zt_bad_task': tasks must be a list of task names" in problems
    assert p["allbad"].status == "failed" and "name must be" in p["allbad"].error
    assert p["dups"].status == "degraded"
    assert "duplicate backbone 'ZT_DUP'" in p["dups"].error
    # everything else still works
    names = [s.name for s in cat.specs]
    assert {"zt_goodnet", "zt_fine_in_badspecs", "zt_dup", "zt_unique", "effnet-lite0-fashion-mnist"} <= set(names)
    assert names.count("zt_dup") + names.count("ZT_DUP") == 1
    assert not any(s.plugin in ("badimport", "raises", "allbad", "notalist") for s in cat.specs)


def test_zoo_plugins_lists_failures_and_exits_0(broken_site):
    env = broken_site.env(MODELZOO_PLUGINS=",".join(["core", "good", *BROKEN]))
    proc = zoo_subprocess("plugins", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:] if not line.startswith(" ")}
    expected = {
        "good": "ok",
        "core": "ok",
        "badimport": "failed",
        "raises": "failed",
        "notalist": "failed",
        "allbad": "failed",
        "badspecs": "degraded",
        "dups": "degraded",
    }
    assert {name: rows[name][3] for name in expected} == expected
    assert rows["good"][1:3] == ["zt-good", "1.0"]
    assert "  badimport: import failed: ModuleNotFoundError" in proc.stdout
    assert "  raises: modelzoo_specs raised RuntimeError: boom from the hook" in proc.stdout
    assert "  badspecs: 3 invalid spec(s): expected a modelzoo.sdk.Spec, got object" in proc.stdout
    assert "  dups: 1 invalid spec(s): duplicate backbone 'ZT_DUP'" in proc.stdout

    proc = zoo_subprocess("list", "--names", env=env, timeout=120)
    assert proc.returncode == 0
    assert "zt_goodnet" in proc.stdout.split()
    proc = zoo_subprocess("list", env=env, timeout=120)
    assert proc.returncode == 0
    assert "warning: plugin(s)" in proc.stderr and "badimport" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plugin_builders_are_imported_only_when_building(broken_site):
    import sys

    assert modelzoo.list_models("zt_goodnet") == ["zt_goodnet"]
    assert "zt_good_build" not in sys.modules
    torch = pytest.importorskip("torch")
    backbone = modelzoo.create_backbone("good:zt_goodnet", pretrained=False)
    assert backbone(torch.zeros(2, 3, 16, 16)).shape == (2, 8)
    # a spec whose builder cannot be imported fails when built, naming the builder
    with pytest.raises(ZooError, match=r"cannot import builder 'zt_x:build'.*reinstall"):
        modelzoo.create_backbone("dups:zt_unique", pretrained=False)


def test_modelzoo_plugins_restricts(fake_site, monkeypatch):
    add_good(fake_site)
    fake_site.plugin("other", GOOD_PLUGIN.replace("zt_goodnet", "zt_othernet"))
    monkeypatch.setenv("MODELZOO_PLUGINS", "good")
    cat = catalog_mod.load_catalog()
    assert [s.qualified_name for s in cat.specs] == ["good:zt_goodnet"]
    assert cat.plugins["core"].status == "disabled"
    assert cat.plugins["other"].status == "disabled"
    assert cat.plugins["timm"].status == "disabled"
    monkeypatch.setenv("MODELZOO_PLUGINS", " other , core ")
    cat = catalog_mod.load_catalog()
    assert {s.plugin for s in cat.specs} == {"core", "other"}


def test_empty_modelzoo_plugins_loads_none(fake_site, monkeypatch, capsys):
    add_good(fake_site)
    monkeypatch.setenv("MODELZOO_PLUGINS", "")
    cat = catalog_mod.load_catalog()
    assert cat.specs == []
    assert {p.status for p in cat.plugins.values()} == {"disabled"}
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "nothing matched" in err


NONE_FIELD = """
    from modelzoo import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [
            Spec(name="zt_none_tags", kind="head", consumes=["pooled"], builder="zt_x:build", pretrained=None),
            Spec(name="zt_ok", kind="head", consumes=["pooled"], builder="zt_x:build"),
        ]
"""

NOT_JSON = """
    from modelzoo import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [
            Spec(name="zt_not_json", kind="head", consumes=["pooled"], builder="zt_x:build", options={"x": object()}),
            Spec(name="zt_ok", kind="head", consumes=["pooled"], builder="zt_x:build"),
        ]
"""


# A wrongly typed field (pretrained=None) or a spec that is not plain JSON data must be reported
# against its plugin, never crash the catalog build or the cache write.
@pytest.mark.parametrize("source", [NONE_FIELD, NOT_JSON], ids=["pretrained-None", "options-not-json"])
def test_wrongly_typed_spec_is_reported_not_fatal(fake_site, monkeypatch, source):
    fake_site.plugin("typed", source)
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,typed")
    cat = catalog_mod.load_catalog()
    assert cat.plugins["typed"].status == "degraded"
    assert "zt_ok" in [s.name for s in cat.specs]
