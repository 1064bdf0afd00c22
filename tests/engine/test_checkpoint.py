"""The background checkpoint writer: snapshots are frozen in time, writes are ordered, errors surface."""

from __future__ import annotations

import threading

import pytest
import torch

from modelzoo.engine.checkpoint import BackgroundWriter, snapshot


def test_snapshot_is_unaffected_by_training_after_it():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = snapshot({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 1})
    before = state["model"]["weight"].clone(), state["optimizer"]["state"][0]["exp_avg"].clone()
    model(torch.ones(1, 3)).sum().backward()
    opt.step()  # mutates parameters and Adam moments in place
    assert torch.equal(state["model"]["weight"], before[0])
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], before[1])
    assert not torch.equal(model.weight.detach(), before[0]) and state["epoch"] == 1


def test_jobs_run_one_at_a_time_in_order():
    writer, done, release = BackgroundWriter(), [], threading.Event()
    writer.submit(lambda: (release.wait(5), done.append(1)))
    assert done == []  # the first job is still in flight
    release.set()
    writer.submit(lambda: done.append(2))  # waits for job 1 first
    writer.wait()
    assert done == [1, 2]


def test_a_failed_write_is_raised_on_the_training_thread():
    writer = BackgroundWriter()
    writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        writer.wait()
    writer.wait()  # reported once
