"""``zoo compare`` says when the machine was busier than its cores while it measured."""

from __future__ import annotations

import os

from modelzoo.select.compare import compare


def test_compare_notes_a_busy_machine(monkeypatch):
    monkeypatch.setenv("MODELZOO_CORES", "2")
    monkeypatch.setattr(os, "getloadavg", lambda: (6.8, 6.0, 5.0))
    rows = compare(["timm:test_convnext"], image_size=32, seconds=0.01, batch_size=2)
    assert rows[0].busy == "note: load 6.8 on 2 cores: speeds are ~3.4x low; rerun when idle"
    assert rows[0].to_dict()["busy"] == rows[0].busy  # --json carries it too
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert compare(["timm:test_convnext"], image_size=32, seconds=0.01, batch_size=2)[0].busy is None
