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

from . import reliability
from .data import COLORS, write_color_images
from .fakes import GOOD_BUILDER, GOOD_PLUGIN, FakeSite, PluginEnv, touch_later
from .fixtures import (
    fake_site,
    full_catalog,
    hub_server,
    interrupted_after_checkpoints,
    one_thread,
    plugin_env,
    real_catalog,
    shared_zoo_cache,
    warm_cli_env,
    zoo_env,
)
from .processes import child_pids, clean_env, finetune_one_and_two, free_port, hub_env, zoo_subprocess
from .reliability import (  # noqa: F401  (pytest hooks: the RELIABILITY.md table of a run)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_terminal_summary,
)

__all__ = [
    "COLORS",
    "GOOD_BUILDER",
    "GOOD_PLUGIN",
    "FakeSite",
    "PluginEnv",
    "child_pids",
    "clean_env",
    "fake_site",
    "finetune_one_and_two",
    "free_port",
    "full_catalog",
    "hub_env",
    "hub_server",
    "interrupted_after_checkpoints",
    "one_thread",
    "plugin_env",
    "real_catalog",
    "reliability",
    "shared_zoo_cache",
    "touch_later",
    "warm_cli_env",
    "write_color_images",
    "zoo_env",
    "zoo_subprocess",
]
