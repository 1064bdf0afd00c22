"""The core test suite's own helpers; the shared fixtures come from the ``modelzoo.testing`` plugin
(loaded by the repository's pytest config: ``-p modelzoo.testing``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
