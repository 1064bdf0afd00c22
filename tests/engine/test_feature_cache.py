"""The shared feature cache stays under its cap: the least recently used files go first, a hit counts
as a use, the file just published always stays, and a bad MODELZOO_FEATURE_CACHE_GB is one line
before any feature is computed."""

from __future__ import annotations

import os

import pytest
import torch

from modelzoo.engine import featurecache
from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import Trainer
from modelzoo.errors import ZooError


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MODELZOO_FEATURE_CACHE_GB", raising=False)
    return tmp_path


def run_file(tmp_path, key: str, size: int, mtime: float):
    """A run folder's feature file of ``size`` bytes, published under ``key`` and last used at ``mtime``."""
    path = tmp_path / "runs" / key / "features.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * size)
    assert featurecache.publish(path, key, limit=10**9) == []
    os.utime(featurecache.shared_path(key), (mtime, mtime))
    return path


def test_publishing_past_the_cap_evicts_the_least_recently_used(cache):
    for i, key in enumerate(["old", "mid", "new"]):
        run_file(cache, key, 400, mtime=1000 + i)
    featurecache.touch(featurecache.shared_path("old"))  # a hit: "old" is now the most recently used
    newest = run_file(cache, "newest", 400, mtime=2e9)
    removed = featurecache.publish(newest, "newest", limit=1000)
    assert sorted(p.name for p in removed) == ["features-mid.pt", "features-new.pt"]
    assert sorted(p.name for p in featurecache.shared_path("x").parent.iterdir()) == [
        "features-newest.pt",
        "features-old.pt",
    ]
    assert (cache / "runs" / "mid" / "features.pt").read_bytes() == b"x" * 400  # the run keeps its own link
    # the file just published stays, even alone over the cap
    assert featurecache.publish(newest, "newest", limit=10) == [featurecache.shared_path("old")]
    assert featurecache.shared_path("newest").is_file()


def test_a_companion_file_the_caller_still_needs_is_never_evicted(cache):
    """zoo select publishes a candidate's entry features right after its final features: with a cap
    of 0, publishing the entry file must not evict the final one it belongs to."""
    run_file(cache, "older", 400, mtime=1000)
    run_file(cache, "final", 400, mtime=2000)
    entry = run_file(cache, "final-entry-group5", 100, mtime=3000)
    removed = featurecache.publish(entry, "final-entry-group5", 0, also_keep=(featurecache.shared_path("final"),))
    assert removed == [featurecache.shared_path("older")]
    assert featurecache.shared_path("final").is_file() and featurecache.shared_path("final-entry-group5").is_file()


@pytest.mark.parametrize("value, expected", [("", 10**10), ("0.5", 5 * 10**8), ("0", 0)])
def test_the_cap_comes_from_the_environment(cache, monkeypatch, value, expected):
    monkeypatch.setenv("MODELZOO_FEATURE_CACHE_GB", value)
    assert featurecache.limit_bytes() == expected


@pytest.fixture
def trainer(cache) -> Trainer:
    from modelzoo.testing import write_color_images

    write_color_images(cache / "data" / "train", 2, seed=0)
    write_color_images(cache / "data" / "val", 1, seed=1)
    recipe = validate(
        {
            "name": "tiny",
            "device": "cpu",
            "model": {"backbone": "timm:test_convnext", "pretrained": False, "head": "linear"},
            "data": {"path": str(cache / "data"), "image_size": 32, "batch_size": 4},
            "stages": [{"name": "head", "train": "head", "epochs": 1}],
        }
    )
    trainer = Trainer(recipe, cache / "run", quiet=True)
    trainer.setup()
    return trainer


def test_a_run_that_reads_cached_features_marks_them_used(trainer):
    first = trainer.cached_features(0)
    shared = featurecache.shared_path(trainer.feature_key())
    os.utime(shared, (1000, 1000))
    again = trainer.cached_features(0)
    torch.testing.assert_close(again, first)
    assert shared.stat().st_mtime > 1000


def test_temporary_files_of_a_killed_copy_are_removed(cache):
    folder = featurecache.shared_path("x").parent
    folder.mkdir(parents=True)
    old, live = folder / ".features-a.pt.1.tmp", folder / ".features-b.pt.2.tmp"
    for path in (old, live):
        path.write_bytes(b"x")
    os.utime(old, (1000, 1000))
    run_file(cache, "new", 10, mtime=2e9)
    assert not old.exists() and live.exists()


@pytest.mark.parametrize("value", ["ten", "-1", "nan", "inf"])
def test_a_bad_cap_stops_the_run_before_the_feature_pass(trainer, monkeypatch, value):
    monkeypatch.setenv("MODELZOO_FEATURE_CACHE_GB", value)
    calls = []
    monkeypatch.setattr("modelzoo.engine.compute_features", lambda *a, **k: calls.append(1) or torch.zeros(1))
    with pytest.raises(ZooError, match=r"^MODELZOO_FEATURE_CACHE_GB='.*' is not a size in GB; set it to a number"):
        trainer.cached_features(0)
    assert calls == []
