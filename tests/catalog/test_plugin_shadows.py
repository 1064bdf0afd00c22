"""Plugins that reach outside themselves: a builder that is not the plugin's own code (``os:system``, the
core's, another distribution's package) is refused when the catalog loads the spec, naming the plugin;
a plugin reusing the built-in names (a head ``linear``, a dataset, a recipe name, a task alias) never
makes the shipped recipes fail: they name every entry ``plugin:name``, and ``core:NAME`` always resolves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelzoo.catalog.load import foreign_builder
from modelzoo.catalog.plugins import PluginInfo
from modelzoo.testing import FakeSite, zoo_subprocess
from modelzoo.testing.reliability import count

pytestmark = pytest.mark.attack("plugins")

REAL = ["classification", "core", "timm", "torchvision", "text", "detection", "segmentation"]

HOSTILE = """
    from modelzoo.sdk import Spec, hookimpl

    def head(name, builder):
        return Spec(name=name, kind="head", consumes=["pooled"], builder=builder)

    @hookimpl
    def modelzoo_specs():
        return [
            Spec(name="zt-evil-set", kind="dataset", builder="os:system"),
            head("zt_evil_subprocess", "subprocess:run"),
            head("zt_evil_builtins", "builtins:eval"),
            head("zt_evil_core", "modelzoo.model.assembly:create_backbone"),
            Spec(name="zt_evil_timm", kind="backbone", outputs=["pooled"], builder="timm:create_model"),
            head("zt_evil_torch", "torch.hub:load"),
            head("zt_own_head", "zt_hostile:build"),
            head("zt_helper_head", "zt_hostile_helpers:build"),
        ]
"""

SHADOW = """
    from modelzoo.sdk import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [
            Spec(name="linear", kind="head", consumes=["pooled"], tasks=["image-classification"],
                 builder="zt_shadow:head"),
            Spec(name="fashion-mnist", kind="dataset", tasks=["image-classification"], builder="zt_shadow:data"),
            Spec(name="tf_efficientnet_lite0", kind="backbone", outputs=["pooled"], builder="zt_shadow:build"),
            Spec(name="effnet-lite0-fashion-mnist", kind="recipe", description="a shadow of the zoo's recipe"),
            Spec(name="zt-shadow-task", kind="task", builder="zt_shadow:Task",
                 meta={"metric": "accuracy", "aliases": ["classification", "image-classification"]}),
        ]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> FakeSite:
    site = FakeSite(tmp_path_factory.mktemp("shadows") / "site-packages")
    site.path.mkdir()
    site.add_dist(
        "zt-hostile", "1.0", {"hostile": "zt_hostile"}, {"zt_hostile": HOSTILE, "zt_hostile_helpers": "build = None\n"}
    )
    site.plugin("shadow", SHADOW)
    return site


def env_for(site: FakeSite, tmp_path: Path, *plugins: str) -> dict[str, str]:
    return site.env(MODELZOO_PLUGINS=",".join([*REAL, *plugins]), MODELZOO_CACHE=str(tmp_path / "cache"))


def test_a_builder_outside_the_plugin_is_refused_naming_the_plugin(site, tmp_path):
    shown = zoo_subprocess("plugins", "--json", env=env_for(site, tmp_path, "hostile"), timeout=300)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    plugins = {p["name"]: p for p in json.loads(shown.stdout)}
    hostile = plugins["hostile"]
    assert hostile["status"] == "degraded", hostile
    problems = "\n".join(hostile["problems"])
    for builder in ("os:system", "subprocess:run", "builtins:eval", "modelzoo.model.assembly:create_backbone"):
        assert f"builder {builder!r}" in problems, problems
    assert "'timm:create_model' belongs to timm" in problems and "'torch.hub:load' belongs to torch" in problems
    assert "standard library's, not code of plugin 'hostile'" in problems
    assert "zt_own_head" not in problems and "zt_helper_head" not in problems  # its own modules pass
    assert all(plugins[p]["status"] == "ok" for p in REAL), {p: plugins[p]["status"] for p in REAL}
    heads = zoo_subprocess("list", "--json", "--kind", "head", env=env_for(site, tmp_path, "hostile"))
    names = {h["name"] for h in json.loads(heads.stdout)}
    assert {"zt_own_head", "zt_helper_head", "linear"} <= names and "zt_evil_subprocess" not in names
    count("plugins", 6)


def test_the_rule_for_the_cores_own_builders():
    core = PluginInfo(name="core", module="modelzoo.catalog.builtin", dist="modelzoo", version="1")
    other = PluginInfo(name="x", module="zt_x", dist="zt-x", version="1")
    assert foreign_builder("modelzoo.model.assembly:assemble", core) is None
    assert "the core's" in foreign_builder("modelzoo.model.assembly:assemble", other)
    assert foreign_builder("zt_x.sub:build", other) is None
    assert foreign_builder("zoo_timm.build:build", other) is None  # another plugin's builder may be reused
    assert "standard library" in foreign_builder("importlib:import_module", other)
    assert "belongs to" in foreign_builder("numpy:load", other)


def test_a_plugin_reusing_built_in_names_leaves_the_shipped_recipes_working(site, tmp_path):
    env = env_for(site, tmp_path, "shadow")
    for name in ("classification:linear", "core:effnet-lite0-fashion-mnist", "classification:fashion-mnist"):
        shown = zoo_subprocess("info", name, "--json", env=env, timeout=300)
        assert shown.returncode == 0, shown.stderr
    run = zoo_subprocess(
        "finetune", "core:effnet-lite0-fashion-mnist", "--out", str(tmp_path / "run"), "--json",
        "--set", "data.train_limit=40", "--set", "data.val_limit=20", "--set", "data.image_size=32",
        "--set", "stages.0.epochs=1", "--set", "stages.1.epochs=1", "--set", "device=cpu",
        env={**env, "OMP_NUM_THREADS": "1"}, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["head"]["name"] == "classification:linear" and config["backbone"]["name"].startswith("timm:")
    # a bare name two plugins provide still needs its plugin (the error names both)
    bare = zoo_subprocess("info", "linear", env=env, timeout=300)
    assert bare.returncode == 0 or "classification:linear" in bare.stderr, bare.stderr
    count("plugins", 4)
