"""Fake plugin distributions (a ``site-packages`` folder on ``sys.path``) and a throw-away environment to
``pip install`` real plugins into, so tests meet plugins the way users install them.
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

from .processes import clean_env


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
