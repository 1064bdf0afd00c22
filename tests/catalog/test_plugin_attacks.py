"""Hostile and broken plugins, each installed beside the real ones, in real ``zoo`` processes.

Each culprit is a fake distribution in one throw-away ``site-packages`` (``modelzoo.testing.FakeSite``)
that the ``zoo`` subprocesses see through ``PYTHONPATH``; ``MODELZOO_PLUGINS`` enables the culprit with
``core``, ``classification`` and ``timm``. With each one: ``zoo list --json`` is valid JSON on stdout and
still lists the good entries, ``zoo info`` of a good entry works, ``zoo plugins`` names the culprit and
why, a tiny ``zoo finetune`` that does not need the culprit succeeds, and using what the culprit broke
is one ``error:`` line. (``zoo plugins uninstall`` runs real pip in ``tests/cli/test_plugin_install.py``.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from modelzoo.testing import FakeSite, write_color_images, zoo_subprocess

pytestmark = pytest.mark.attack("plugins")

REAL = ["core", "classification", "timm"]
MARK = "ZT-PRINTED-THIS"

CULPRITS = {
    # fails to import
    "badimport": """
        raise RuntimeError("zt_badimport needs libfoo, which is not installed")
    """,
    # raises in its hook
    "hookraises": """
        from modelzoo.sdk import hookimpl

        @hookimpl
        def modelzoo_specs():
            raise KeyError("boom from the hook")
    """,
    # returns malformed specs (wrong types where the catalog, zoo list and zoo info read them) + one good one
    "malformed": """
        from modelzoo.sdk import Level, PretrainedTag, Spec, hookimpl

        def head(name, **kw):
            return Spec(name=name, kind="head", consumes=["pooled"], builder="zt_nowhere:build", **kw)

        @hookimpl
        def modelzoo_specs():
            yield object()
            yield {"name": "zt_a_dict", "kind": "head"}
            yield head("zt_params_text", num_params="many")
            yield head("zt_license_list", license=["mit"])
            yield head("zt_meta_text", meta="not a table")
            yield head("zt_options_list", options=[1, 2])
            yield head("zt_description_int", description=5)
            yield Spec(name="zt_dataset_consumes", kind="dataset", consumes=[1, 2])
            yield Spec(name="zt_pyramid_ints", kind="backbone", outputs=["pyramid"], builder="zt_nowhere:build",
                       pyramid=[1, 2])
            yield Spec(name="zt_features_bool", kind="backbone", outputs=["pooled"], builder="zt_nowhere:build",
                       num_features=True)
            yield head("zt_tag_license_int", pretrained=[PretrainedTag("a", ["file:/x"], license=5)])
            yield head("zt_tag_mean_nan", pretrained=[PretrainedTag("a", ["file:/x"], mean=[float("nan")] * 3)])
            yield Spec(name="zt_task_json_flag", kind="task", builder="zt_nowhere:Task",
                       meta={"metric": "acc", "predict_options": [{"name": "json", "type": "int"}]})
            yield Spec(name="zt_level_ok", kind="backbone", outputs=["pyramid"], builder="zt_nowhere:build",
                       pyramid=[Level(8, 4)])
            yield head("zt_malformed_ok", description="the one good entry")
    """,
    # registers names other plugins have: a backbone (timm's), the good fake plugin's backbone, and the
    # classification task's alias and name as aliases of its own task (sorted first: "a-..." < "image-...")
    "collide": """
        from modelzoo.sdk import Spec, hookimpl

        @hookimpl
        def modelzoo_specs():
            return [
                Spec(name="test_convnext", kind="backbone", outputs=["pooled"], num_features=8,
                     builder="zt_nowhere:build"),
                Spec(name="zt_goodnet", kind="backbone", outputs=["pooled"], num_features=8,
                     builder="zt_nowhere:build"),
                Spec(name="a-hijack", kind="task", builder="zt_nowhere:Task",
                     meta={"metric": "acc", "aliases": ["classification", "image-classification"]}),
            ]
    """,
    # takes ~2 s to import
    "slow": """
        import time

        from modelzoo.sdk import Spec, hookimpl

        time.sleep(2)

        @hookimpl
        def modelzoo_specs():
            return [Spec(name="zt_slownet", kind="backbone", outputs=["pooled"], builder="zt_nowhere:build")]
    """,
    # prints to stdout at import (Python and the raw file descriptor) and in its hook
    "printer": f"""
        import os, sys

        from modelzoo.sdk import Spec, hookimpl

        print("{MARK} print at import")
        sys.stdout.write("{MARK} sys.stdout at import\\n")
        os.write(1, b"{MARK} fd 1 at import\\n")

        @hookimpl
        def modelzoo_specs():
            print("{MARK} print in the hook")
            os.write(1, b"{MARK} fd 1 in the hook\\n")
            return [Spec(name="zt_printnet", kind="backbone", outputs=["pooled"], builder="zt_nowhere:build")]
    """,
    # registers tasks whose class is broken: its module raises on import / it is not a Task subclass
    "brokentask": """
        from modelzoo.sdk import Spec, hookimpl

        @hookimpl
        def modelzoo_specs():
            return [
                Spec(name="zt-task-import", kind="task", builder="zt_brokentask_cls:RaisingTask",
                     meta={"metric": "accuracy"}),
                Spec(name="zt-task-notask", kind="task", builder="zt_brokentask_plain:NotATask",
                     meta={"metric": "accuracy"}),
                Spec(name="zt-task-missing", kind="task", builder="zt_brokentask_not_installed:Task",
                     meta={"metric": "accuracy"}),
            ]
    """,
}
EXTRA_MODULES = {
    "brokentask": {
        "zt_brokentask_cls": "raise ImportError('zt_brokentask_cls is broken on purpose')\n",
        "zt_brokentask_plain": "class NotATask:\n    pass\n",
    }
}
GOOD = """
    from modelzoo.sdk import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [Spec(name="zt_goodnet", kind="backbone", outputs=["pooled"], num_features=8,
                     builder="zt_nowhere:build", description="the good plugin's backbone")]
"""
#: what `zoo plugins --json` notes about a working plugin that misbehaves
NOTED = {
    "slow": ["importing it took 2."],
    "printer": ["it printed 100 characters to stdout while importing", "hook printed 67 characters to stdout"],
}
#: what `zoo plugins` must say about each culprit (its status, then fragments of its reason)
REPORTED = {
    "badimport": ("failed", "import failed: RuntimeError: zt_badimport needs libfoo"),
    "hookraises": ("failed", "modelzoo_specs raised KeyError: 'boom from the hook'"),
    "malformed": ("degraded", "invalid spec(s): expected a modelzoo.sdk.Spec, got object"),
    "collide": ("ok", "name collisions (use plugin:name):", "test_convnext: collide:test_convnext, timm:test_convnext"),
    "slow": ("ok",),
    "printer": ("ok",),
    "brokentask": ("ok",),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> FakeSite:
    root = tmp_path_factory.mktemp("culprits")
    site = FakeSite(root / "site-packages")
    site.path.mkdir()
    site.plugin("good", GOOD)
    for name, source in CULPRITS.items():
        site.add_dist(f"zt-{name}", "1.0", {name: f"zt_{name}"}, {f"zt_{name}": source, **EXTRA_MODULES.get(name, {})})
    return site


@pytest.fixture(scope="module")
def cache(tmp_path_factory, site) -> Path:
    """A catalog cache holding the real plugins' entries (listing them live imports timm: seconds)."""
    path = tmp_path_factory.mktemp("culprit-cache")
    proc = zoo_subprocess("list", "--names", env=env_for(site, path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return path


def fresh_cache(tmp_path: Path, cache: Path) -> Path:
    """A new cache with only the real plugins' entries: the culprits are enumerated live."""
    path = tmp_path / "cache"
    (path / "catalog").mkdir(parents=True)
    for name in REAL:
        for entry in (cache / "catalog").glob(f"{name}-*.json"):
            shutil.copy(entry, path / "catalog" / entry.name)
    return path


def env_for(site: FakeSite, cache: Path, *plugins: str) -> dict[str, str]:
    return site.env(MODELZOO_PLUGINS=",".join([*REAL, *plugins]), MODELZOO_CACHE=str(cache))


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert MARK not in proc.stdout, f"a plugin's print reached stdout:\n{proc.stdout}"


def one_error_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    no_traceback(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and MARK not in line]
    assert proc.returncode == 2 and lines and lines[-1].startswith("error: "), proc.stderr
    assert [line for line in lines if line.startswith(("error", "Error"))] == [lines[-1]], proc.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


@pytest.mark.parametrize("culprit", list(CULPRITS))
def test_list_info_and_plugins_keep_working(site, cache, culprit):
    env = env_for(site, cache, "good", culprit)
    for attempt in ("cold", "warm"):  # the culprit enumerated live, then its entries from the cache
        listed = zoo_subprocess("list", "--json", env=env, timeout=120)
        no_traceback(listed)
        assert listed.returncode == 0, listed.stderr
        entries = json.loads(listed.stdout)
        names = {(e["plugin"], e["name"]) for e in entries}
        assert {("timm", "test_convnext"), ("classification", "linear"), ("good", "zt_goodnet")} <= names, attempt
        assert ("classification", "image-classification") in names
        if culprit == "malformed":
            assert {n for p, n in names if p == "malformed"} == {"zt_malformed_ok", "zt_level_ok"}

    info = zoo_subprocess("info", "timm:test_convnext", env=env, timeout=120)
    no_traceback(info)
    assert info.returncode == 0 and info.stdout.startswith("timm:test_convnext  (backbone; plugin timm)")
    shown = zoo_subprocess("info", "good:zt_goodnet", "--json", env=env, timeout=120)
    no_traceback(shown)
    assert json.loads(shown.stdout)["description"] == "the good plugin's backbone"

    plugins = zoo_subprocess("plugins", env=env, timeout=120)
    no_traceback(plugins)
    assert plugins.returncode == 0, plugins.stderr
    rows = {line.split()[0]: line.split() for line in plugins.stdout.splitlines()[1:] if line[:1] not in (" ", "n")}
    status, *reason = REPORTED[culprit]
    assert rows[culprit][1:4] == [f"zt-{culprit}", "1.0", status]
    assert {rows[p][3] for p in [*REAL, "good"]} == {"ok"}
    for fragment in reason:
        assert fragment in plugins.stdout, plugins.stdout
    as_json = zoo_subprocess("plugins", "--json", env=env, timeout=120)
    no_traceback(as_json)
    info = {p["name"]: p for p in json.loads(as_json.stdout)}[culprit]
    assert info["status"] == status
    for fragment in NOTED.get(culprit, []):
        assert any(fragment in note for note in info["notes"]), info["notes"]
    assert not info["notes"] or culprit in NOTED


def test_a_slow_plugin_is_imported_once_then_listed_from_the_cache(site, cache, tmp_path):
    env = env_for(site, fresh_cache(tmp_path, cache), "slow")
    first = json.loads(zoo_subprocess("plugins", "--json", env=env, timeout=120).stdout)
    second = json.loads(zoo_subprocess("plugins", "--json", env=env, timeout=120).stdout)
    assert {p["name"]: p["source"] for p in first}["slow"] == "live"
    assert {p["name"]: p["source"] for p in second}["slow"] == "cache"


def test_a_printing_plugin_never_reaches_stdout(site, cache, tmp_path):
    env = env_for(site, fresh_cache(tmp_path, cache), "printer")
    proc = zoo_subprocess("list", "--names", "--plugin", "printer", env=env, timeout=120)
    assert proc.stdout == "zt_printnet\n"
    assert proc.stderr.count(MARK) == 5  # said on stderr instead: three at import, two in the hook


def test_collisions_need_the_plugin_name_and_aliases_are_not_hijacked(site, cache):
    env = env_for(site, cache, "good", "collide")
    both = zoo_subprocess("info", "test_convnext", "--json", env=env, timeout=120)
    no_traceback(both)
    assert sorted(e["plugin"] for e in json.loads(both.stdout)) == ["collide", "timm"]
    # a task's alias never takes over another task's name, nor an alias another task claims too
    task = zoo_subprocess("info", "image-classification", "--json", env=env, timeout=120)
    no_traceback(task)
    assert json.loads(task.stdout)["plugin"] == "classification"
    one_error_line(
        zoo_subprocess("info", "classification", env=env, timeout=120),
        "task alias 'classification' is claimed by several tasks: a-hijack (plugin collide),"
        " image-classification (plugin classification); name the task itself",
    )
    heads = zoo_subprocess("list", "--json", "--kind", "head", "--task", "image-classification", env=env)
    assert ("classification", "linear") in {(h["plugin"], h["name"]) for h in json.loads(heads.stdout)}
    plugins = zoo_subprocess("plugins", env=env, timeout=120).stdout
    assert "  classification: classification:image-classification, collide:a-hijack" in plugins
    assert "  image-classification: classification:image-classification, collide:a-hijack" in plugins


# -- fine-tuning beside the culprits ----------------------------------------------------------------
FINETUNE_ALL = """
import contextlib, io, json, os, sys
from modelzoo.catalog import lookup as catalog
from modelzoo.cli.main import main

results = {}
for culprit, recipe, out in json.loads(sys.argv[1]):
    os.environ["MODELZOO_PLUGINS"] = ",".join([*json.loads(sys.argv[2]), culprit])
    catalog.reset()
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["finetune", recipe, "--out", out, "--json"])
    results[f"{culprit} {os.path.basename(out)}"] = [code, stdout.getvalue(), stderr.getvalue()]
print(json.dumps(results))
"""


def recipe(path: Path, data: Path, **top) -> Path:
    doc = {
        "name": "beside-culprits",
        "seed": 0,
        "device": "cpu",
        **top,
        "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
        "data": {"path": str(data), "image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3},
        "stages": [{"name": "head", "train": "head", "epochs": 1}],
    }
    path.write_text(tomli_w.dumps(doc))
    return path


def test_finetune_beside_each_culprit_and_using_a_broken_task(site, cache, tmp_path):
    """One interpreter runs ``zoo finetune`` once per culprit (the catalog rebuilt each time), so the suite
    pays for importing torch and timm once; the culprits' entries come live, as in a fresh process."""
    data = tmp_path / "data"
    write_color_images(data / "train", 4, seed=0, size=16)
    write_color_images(data / "val", 2, seed=1, size=16)
    plain = recipe(tmp_path / "plain.toml", data)
    runs = [(c, str(plain), str(tmp_path / f"run-{c}")) for c in CULPRITS]
    unqualified = recipe(tmp_path / "unqualified.toml", data)
    unqualified.write_text(unqualified.read_text().replace("timm:test_convnext", "test_convnext"))
    runs.append(("collide", str(unqualified), str(tmp_path / "ambiguous")))
    for task in ("zt-task-import", "zt-task-notask", "zt-task-missing"):
        runs.append(("brokentask", str(recipe(tmp_path / f"{task}.toml", data, task=task)), str(tmp_path / task)))
    proc = subprocess.run(
        [sys.executable, "-c", FINETUNE_ALL, json.dumps(runs), json.dumps(REAL)],
        env=env_for(site, fresh_cache(tmp_path, cache)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)  # nothing a plugin printed reached the real stdout either
    for culprit in CULPRITS:
        code, out, err = results[f"{culprit} run-{culprit}"]
        assert code == 0, f"{culprit}: {err}"
        assert MARK not in out and "Traceback" not in err
        summary = json.loads(out)
        assert summary["epochs"] == 1 and 0 <= summary["metrics"]["accuracy"] <= 1
        assert (Path(summary["run"]) / "model.safetensors").is_file()

    def error(key: str, *fragments: str) -> None:
        code, out, err = results[key]
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: "), err
        for fragment in fragments:
            assert fragment in lines[0], lines[0]

    error("collide ambiguous", "'test_convnext' is provided by several plugins", "timm:test_convnext")
    error("brokentask zt-task-import", "zt_brokentask_cls:RaisingTask", "zt_brokentask_cls is broken on purpose")
    error("brokentask zt-task-notask", "zt_brokentask_plain:NotATask is not a modelzoo.Task subclass")
    error("brokentask zt-task-missing", "cannot import builder 'zt_brokentask_not_installed:Task'")
    for task in ("zt-task-import", "zt-task-notask", "zt-task-missing", "ambiguous"):
        assert not (tmp_path / task).exists(), "a refused run left a folder behind"


# -- plugins that never answer, end the process, or print at exit ---------------------------------
ENDERS = {
    "hangs": """
        import time

        from modelzoo.sdk import hookimpl

        @hookimpl
        def modelzoo_specs():
            while True:
                time.sleep(1)
    """,
    "hangsonimport": """
        import time

        while True:
            time.sleep(1)
    """,
    "exits": """
        import os

        from modelzoo.sdk import hookimpl

        @hookimpl
        def modelzoo_specs():
            os._exit(0)
    """,
    "atexit": f"""
        import atexit

        from modelzoo.sdk import Spec, hookimpl

        atexit.register(lambda: print("{MARK} at exit"))

        @hookimpl
        def modelzoo_specs():
            return [Spec(name="zt_atexitnet", kind="backbone", outputs=["pooled"], builder="zt_nowhere:build")]
    """,
}


@pytest.mark.parametrize("culprit", list(ENDERS))
def test_a_plugin_that_hangs_or_exits_cannot_take_zoo_down(tmp_path, cache, culprit):
    site = FakeSite(tmp_path / "site-packages")
    site.path.mkdir()
    site.plugin(culprit, ENDERS[culprit])
    env = {**env_for(site, fresh_cache(tmp_path, cache), culprit), "MODELZOO_PLUGIN_TIMEOUT": "4"}
    listed = zoo_subprocess("list", "--json", env=env, timeout=120)
    no_traceback(listed)
    assert listed.returncode == 0, listed.stderr
    names = {(e["plugin"], e["name"]) for e in json.loads(listed.stdout)}  # stdout is the JSON and nothing else
    assert ("timm", "test_convnext") in names
    plugins = json.loads(zoo_subprocess("plugins", "--json", env=env, timeout=120).stdout)
    info = {p["name"]: p for p in plugins}[culprit]
    if culprit == "atexit":
        assert info["status"] == "ok" and ("atexit", "zt_atexitnet") in names
    else:
        assert info["status"] == "failed", info
        assert ("did not finish within 4 s" if culprit.startswith("hangs") else "called os._exit(0)") in info["error"]
    bad = zoo_subprocess("list", "--json", env={**env, "MODELZOO_PLUGIN_TIMEOUT": "soon"}, timeout=120)
    one_error_line(bad, "MODELZOO_PLUGIN_TIMEOUT='soon'")
