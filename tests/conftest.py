"""Shared fixtures for the modelzoo test suite (offline, CPU-only).

* Every test gets its own catalog cache dir (``MODELZOO_CACHE``) and a fresh in-process catalog;
  ``MODELZOO_PLUGINS`` / ``MODELZOO_NO_CACHE`` are unset unless the test sets them. (A test whose
  environment matches an earlier test's finds that test's catalog there; see ``zoo_env``.)
* ``full_catalog`` builds the real catalog (timm + torchvision + core) once per session;
  ``real_catalog`` installs it as the process-wide catalog for one test, so tests that list, resolve
  or build real backbones do not pay for importing timm and torchvision again.
* ``fake_site`` is a throw-away ``site-packages`` directory on ``sys.path`` in which a test writes fake
  plugin distributions (a module plus ``*.dist-info`` with ``METADATA`` and ``entry_points.txt``), so
  ``importlib.metadata`` discovers them exactly as it discovers an installed plugin. Tests about fake
  plugins set ``MODELZOO_PLUGINS=core,<fake>...`` so they never rebuild the timm catalog.
* ``warm_cli_env`` is an environment for ``python -m modelzoo`` subprocesses whose catalog cache was
  warmed once per session (a cold ``zoo`` imports timm and torchvision: several seconds).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def zoo_subprocess(
    *args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m modelzoo ARGS`` in a fresh interpreter and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "modelzoo", *args],
        env=env,
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without the modelzoo variables a test may have set, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("MODELZOO_PLUGINS", "MODELZOO_NO_CACHE", "PYTHONPATH")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def shared_zoo_cache(tmp_path_factory):
    """Session-wide store behind the per-test caches: seed catalogs and converted weights."""
    root = tmp_path_factory.mktemp("shared-zoo-cache")
    (root / "weights").mkdir()
    return root


@pytest.fixture(autouse=True)
def zoo_env(tmp_path, monkeypatch, shared_zoo_cache):
    """An isolated catalog cache and a fresh in-process catalog for every test.

    To keep the suite fast, the per-test cache starts with a hard link to the catalog an earlier test
    built under the same cache key (the key covers the environment and the installed plugins, so a
    test that changes either gets a cold cache), and its ``weights/`` folder is shared: converted
    weights are named by the source file's sha256.
    """
    from modelzoo import catalog as catalog_mod

    cache = tmp_path / "zoo-cache"
    cache.mkdir()
    (cache / "weights").symlink_to(shared_zoo_cache / "weights", target_is_directory=True)
    monkeypatch.setenv("MODELZOO_CACHE", str(cache))
    monkeypatch.delenv("MODELZOO_PLUGINS", raising=False)
    monkeypatch.delenv("MODELZOO_NO_CACHE", raising=False)
    name = f"catalog-{catalog_mod.cache_key()}.json"
    seed = shared_zoo_cache / name
    if seed.exists():
        _link(seed, cache / name)
    catalog_mod.reset()
    yield
    catalog_mod.reset()
    if not seed.exists() and (cache / name).exists():
        _link(cache / name, seed)


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # the cache is replaced atomically, never written in place
    except OSError:
        shutil.copyfile(src, dst)


@pytest.fixture(scope="session")
def full_catalog():
    """The real catalog of the installed plugins, built once (imports timm and torchvision)."""
    from modelzoo import catalog as catalog_mod

    saved = os.environ.pop("MODELZOO_PLUGINS", None)
    try:
        cat = catalog_mod.build_catalog()
    finally:
        if saved is not None:
            os.environ["MODELZOO_PLUGINS"] = saved
    broken = {p.name: p.error for p in cat.plugins.values() if p.status != "ok"}
    assert not broken, f"installed plugins failed to load: {broken}"
    return cat


@pytest.fixture
def real_catalog(full_catalog, monkeypatch):
    """Make the session's real catalog the process-wide one for this test."""
    from modelzoo import catalog as catalog_mod

    monkeypatch.setattr(catalog_mod, "_CATALOG", full_catalog)
    return full_catalog


@pytest.fixture(scope="session")
def warm_cli_env(tmp_path_factory):
    """Environment for CLI subprocesses, with the real catalog already in its cache."""
    env = clean_env(MODELZOO_CACHE=str(tmp_path_factory.mktemp("warm-zoo-cache")))
    proc = zoo_subprocess("list", "--names", env=env)
    assert proc.returncode == 0, proc.stderr
    return env


# -- fake plugin distributions ------------------------------------------------------------------
class FakeSite:
    """A ``site-packages`` directory of fake plugin distributions, on ``sys.path`` for one test."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.modules: set[str] = set()

    def add_module(self, name: str, source: str) -> Path:
        """Write ``NAME.py``; a previously imported module of that name is forgotten."""
        path = self.path / f"{name}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        self.modules.add(name)
        sys.modules.pop(name, None)
        return path

    def add_dist(
        self,
        dist: str,
        version: str = "1.0",
        entry_points: dict[str, str] | None = None,
        modules: dict[str, str] | None = None,
    ) -> Path:
        """Write a distribution: its modules, and a dist-info with METADATA and entry_points.txt.

        ``entry_points`` maps plugin (entry-point) names to module names in the ``modelzoo`` group.
        """
        for name, source in (modules or {}).items():
            self.add_module(name, source)
        info = self.path / f"{_normalize(dist)}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\nSummary: fake modelzoo plugin\n",
            encoding="utf-8",
        )
        lines = ["[modelzoo]", *(f"{ep} = {mod}" for ep, mod in (entry_points or {}).items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (info / "RECORD").write_text("", encoding="utf-8")
        self.refresh()
        return info

    def plugin(self, name: str, source: str, version: str = "1.0") -> Path:
        """One distribution ``zt-NAME`` with one entry point ``NAME = zt_NAME`` and that module."""
        module = f"zt_{name}"
        return self.add_dist(f"zt-{name}", version, {name: module}, {module: source})

    def remove_dist(self, dist: str, version: str = "1.0") -> None:
        shutil.rmtree(self.path / f"{_normalize(dist)}-{version}.dist-info")
        self.refresh()

    def refresh(self) -> None:
        """What an installer's caller must do: forget cached finders and the in-process catalog."""
        from modelzoo import catalog as catalog_mod

        importlib.invalidate_caches()
        catalog_mod.reset()

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess that sees these fake distributions."""
        return clean_env(PYTHONPATH=str(self.path), **extra)


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "_", dist).lower()


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    site = FakeSite(tmp_path / "site-packages")
    site.path.mkdir()
    monkeypatch.syspath_prepend(str(site.path))
    site.refresh()
    yield site
    for name in site.modules:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()


def touch_later() -> None:
    """Let the clock move on so a directory changed next gets a new mtime, even on coarse clocks."""
    time.sleep(0.05)


# Sources of fake plugin modules, shared by several test files.
GOOD_PLUGIN = """
    from modelzoo import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [
            Spec(name="zt_goodnet", kind="backbone", tasks=["classification"], outputs=["pooled"],
                 num_features=8, builder="zt_good_build:build", description="tiny test backbone"),
        ]
"""

GOOD_BUILDER = """
    from torch import nn
    from modelzoo.backbone import Backbone, FeatureInfo

    def build(spec, output="pooled", pretrained=None, width=8):
        net = nn.Sequential(nn.Conv2d(3, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return Backbone(net, FeatureInfo("pooled", num_features=width))
"""


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster on a busy machine (no spinning peers)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
