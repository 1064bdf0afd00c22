"""The fixtures of the ``modelzoo.testing`` pytest plugin: an isolated catalog cache per test, the real
catalog once per session, fake and throw-away plugin sites, the local Hub server, and a fine-tune
interrupted after its n-th checkpoint (resume tests).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator

import pytest

from .fakes import FakeSite, PluginEnv
from .processes import clean_env, zoo_subprocess


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


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster on a busy machine (no spinning peers)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def plugin_env(tmp_path) -> PluginEnv:
    """A throw-away environment (over this one) for real ``pip install`` of plugins in tests."""
    return PluginEnv(tmp_path / "layer-env", tmp_path / "layer-cache")


@pytest.fixture(scope="module")
def hub_server():
    """A local Hub-compatible server for one test module; fails the module if the client called an
    endpoint the server does not know."""
    from .hubserver import HubServer

    with HubServer() as server:
        yield server
        assert server.unknown == [], f"client called endpoints the test server does not know: {server.unknown}"


@contextlib.contextmanager
def interrupted_after_checkpoints(n: int) -> Iterator[list[tuple[int, int]]]:
    """Inside the block, a fine-tune stops as Ctrl-C stops it right after its ``n``-th checkpoint has
    landed (``modelzoo.engine.trainer.Interrupted``); yields the ``(stage, epoch)`` of each checkpoint.
    For resume tests: set ``MODELZOO_CHECKPOINT_SECONDS=0`` for a checkpoint after every epoch."""
    from ..engine import trainer as trainer_mod

    real = trainer_mod.Trainer.save_checkpoint
    saved: list[tuple[int, int]] = []

    def stop(self, stage, epoch, opt, sched):
        real(self, stage, epoch, opt, sched)
        saved.append((stage, epoch))
        if len(saved) == n:
            self.checkpoints.wait()
            raise KeyboardInterrupt

    trainer_mod.Trainer.save_checkpoint = stop
    try:
        yield saved
    finally:
        trainer_mod.Trainer.save_checkpoint = real
