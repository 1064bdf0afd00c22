"""``modelzoo.testing``: a pytest plugin with the fixtures modelzoo's tests and plugin tests share.

Load it with ``-p modelzoo.testing`` (the repository's pytest config does), or from a plugin's own
``conftest.py`` with ``pytest_plugins = ["modelzoo.testing"]``. It is never auto-loaded: its autouse
fixture isolates the catalog cache of every test, which only a modelzoo test suite wants.

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

from .reliability import (  # noqa: F401  (pytest hooks: the RELIABILITY.md table of a run)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_terminal_summary,
)


def zoo_subprocess(
    *args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m modelzoo ARGS`` in a fresh interpreter and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "modelzoo", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without the modelzoo variables a test may have set, plus ``extra``."""
    drop = ("MODELZOO_PLUGINS", "MODELZOO_NO_CACHE", "MODELZOO_REGISTRY", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
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
    """An isolated cache folder and a fresh in-process catalog for every test.

    To keep the suite fast, two of its sub-folders are shared by the whole session, because their
    files are named by content and so can never be stale: ``catalog/`` (each plugin's entries, named
    by the plugin's fingerprint) and ``weights/`` (converted weights, named by the source's sha256).
    A test that needs a truly cold catalog points ``MODELZOO_CACHE`` elsewhere.
    """
    from modelzoo.catalog import lookup as catalog_mod

    cache = tmp_path / "zoo-cache"
    cache.mkdir()
    for shared in ("weights", "catalog"):
        (shared_zoo_cache / shared).mkdir(exist_ok=True)
        (cache / shared).symlink_to(shared_zoo_cache / shared, target_is_directory=True)
    monkeypatch.setenv("MODELZOO_CACHE", str(cache))
    for name in ("MODELZOO_PLUGINS", "MODELZOO_NO_CACHE", "MODELZOO_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    catalog_mod.reset()
    yield
    catalog_mod.reset()


@pytest.fixture(scope="session")
def full_catalog():
    """The catalog of the installed plugins, loaded once per session (from the shipped registry and the
    cache where they are current, live where not), checked to have loaded cleanly."""
    from modelzoo.catalog import lookup as catalog_mod

    saved = os.environ.pop("MODELZOO_PLUGINS", None)
    try:
        cat = catalog_mod.load_catalog()
    finally:
        if saved is not None:
            os.environ["MODELZOO_PLUGINS"] = saved
    broken = {p.name: p.error for p in cat.plugins.values() if p.status != "ok"}
    assert not broken, f"installed plugins failed to load: {broken}"
    return cat


@pytest.fixture
def real_catalog(full_catalog, monkeypatch):
    """Make the session's real catalog the process-wide one for this test."""
    from modelzoo.catalog import lookup as catalog_mod

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
        from modelzoo.catalog import lookup as catalog_mod

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
    from modelzoo.model.backbone import Backbone, FeatureInfo

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


# -- a throw-away environment to pip-install plugins into ---------------------------------------
class PluginEnv:
    """A fresh virtualenv layered over this one: it sees every installed distribution (modelzoo,
    torch...) through a ``.pth`` file, while ``pip install`` / ``uninstall`` only change the layer.

    Real pip, real entry points, real ``zoo`` processes, and this environment is never touched.
    """

    def __init__(self, root: Path, cache: Path) -> None:
        import site
        import sysconfig
        import venv

        self.root = root
        venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
        self.python = root / "bin" / "python"
        purelib = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        below = [p for p in [*site.getsitepackages(), sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in dict.fromkeys(below))
        Path(purelib, "_modelzoo_layer.pth").write_text(lines, encoding="utf-8")
        self.env = clean_env(
            MODELZOO_CACHE=str(cache),
            PIP_NO_INDEX="1",
            PIP_NO_BUILD_ISOLATION="0",  # pip's (inverted) spelling of --no-build-isolation
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PATH=f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            VIRTUAL_ENV=str(root),
        )

    def run(
        self, *args: str, timeout: float = 600, cwd: str | Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """``python ARGS`` in the layer (``env`` adds to its environment, e.g. :func:`hub_env`'s)."""
        return subprocess.run(
            [str(self.python), *map(str, args)],
            env={**self.env, **(env or {})},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def zoo(self, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return self.run("-m", "modelzoo", *args, timeout=timeout, env=env)

    def pip(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.run("-m", "pip", *args, timeout=timeout)


@pytest.fixture
def plugin_env(tmp_path) -> PluginEnv:
    """A throw-away environment (over this one) for real ``pip install`` of plugins in tests."""
    return PluginEnv(tmp_path / "layer-env", tmp_path / "layer-cache")


# -- the local Hub --------------------------------------------------------------------------------
def hub_env(server, home: str | Path, token: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a process that talks to a local :class:`~modelzoo.testing.hubserver.HubServer`
    (``huggingface_hub`` reads these when it is imported, so Hub work runs in subprocesses)."""
    from .hubserver import TEST_TOKEN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "ZOO_LOCK"))}
    env.update(
        HF_ENDPOINT=server if isinstance(server, str) else server.url,
        HF_HOME=str(home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    token = TEST_TOKEN if token is None else token
    if token:
        env["HF_TOKEN"] = token
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def hub_server():
    """A local Hub-compatible server for one test module; fails the module if the client called an
    endpoint the server does not know."""
    from .hubserver import HubServer

    with HubServer() as server:
        yield server
        assert server.unknown == [], f"client called endpoints the test server does not know: {server.unknown}"


# -- tiny real data -------------------------------------------------------------------------------
COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def write_color_images(root: Path, per_class: int, seed: int, size: int = 24) -> Path:
    """An ImageFolder of noisy red / green / blue PNGs (``root/<colour>/<i>.png``): a task any backbone
    learns in a few steps, for tests of the engine rather than of a model."""
    import torch
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)
    for name, rgb in COLORS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = torch.randint(-40, 40, (size, size, 3), generator=gen)
            arr = (torch.tensor(rgb) + noise).clamp(0, 255).to(torch.uint8).numpy()
            Image.fromarray(arr).save(root / name / f"{i}.png")
    return root


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``), e.g. a launcher's workers."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


def finetune_one_and_two(recipe: Path, root: Path, env: dict[str, str] | None = None) -> tuple[dict, dict]:
    """``summary.json`` of ``recipe`` fine-tuned by one process and by two (``zoo finetune --nproc 2``,
    gloo), each in its own run folder and cache, for equivalence tests of a task under DDP."""
    import json

    summaries = []
    for nproc in (1, 2):
        out = root / f"run-{nproc}p"
        run_env = {**(env or clean_env()), "MODELZOO_CACHE": str(root / f"cache-{nproc}p")}
        proc = zoo_subprocess("finetune", str(recipe), "--out", str(out), "--quiet", "--nproc", str(nproc), env=run_env)
        assert proc.returncode == 0, f"--nproc {nproc}:\n{proc.stdout}\n{proc.stderr}"
        summaries.append(json.loads((out / "summary.json").read_text()))
    assert [s["processes"] for s in summaries] == [1, 2]
    return summaries[0], summaries[1]
