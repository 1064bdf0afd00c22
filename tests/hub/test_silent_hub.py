"""A Hub that takes the connection and never answers (a stalled server) is named as one: "did not
answer within N s", with the setting that bounded the wait, never "cannot reach the Hub", which is what
a refused connection gets. The waits are set to a couple of seconds, so each case ends in a few."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from modelzoo.testing import free_port, hub_env
from modelzoo.testing.hub import HubServer

pytestmark = pytest.mark.attack("hub")


def zoo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelzoo", *args], env=env, capture_output=True, text=True, timeout=120
    )


def one_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def server():
    with HubServer() as hub:
        hub.commit("org/stalled", {"modelzoo.sha256": b"", "config.json": b"{}"})
        yield hub


def test_a_silent_hub_did_not_answer(server, tmp_path):
    env = hub_env(server, tmp_path / "hf", HF_HUB_ETAG_TIMEOUT="2")
    with server.fault("silent", "*", "") as fault:
        for args in (["pull", "org/stalled"], ["info", "hf-hub:org/stalled"], ["list", "--hub", "org"]):
            start = time.monotonic()
            line = one_line(
                zoo(env, *args),
                f"the Hub at {server.url} took the connection but did not answer within 2 s (HF_HUB_ETAG_TIMEOUT)",
            )
            assert "cannot reach" not in line
            assert time.monotonic() - start < 30, args  # the wait, not a hang (the interpreter's start included)
    assert fault.hits >= 3


def test_a_download_that_never_answers_meets_the_deadline(server, tmp_path):
    """The metadata answers; then every file request is held: the pull's overall deadline ends it."""
    env = hub_env(server, tmp_path / "hf", HF_HUB_ETAG_TIMEOUT="2", MODELZOO_HUB_TIMEOUT="4")
    with server.fault("silent", "*", "/resolve/"):
        start = time.monotonic()
        proc = zoo(env, "pull", "org/stalled")
    line = one_line(proc)
    assert "did not finish within 4 s (MODELZOO_HUB_TIMEOUT)" in line or "did not answer within 2 s" in line, line
    assert "cannot reach" not in line
    assert time.monotonic() - start < 30


def test_a_refused_connection_cannot_reach_the_hub(tmp_path):
    env = hub_env(f"http://127.0.0.1:{free_port()}", tmp_path / "hf", HF_HUB_ETAG_TIMEOUT="2")
    one_line(zoo(env, "pull", "org/stalled"), "cannot reach the Hub at http://127.0.0.1:")


def test_a_push_to_a_hub_that_never_answers_meets_the_deadline(server, tmp_path):
    """Uploads take no socket timeout in huggingface_hub: the push's overall deadline ends it, one line."""
    import torch

    import modelzoo

    torch.manual_seed(0)
    model = modelzoo.assemble("timm:test_convnext", "classification:linear", labels=["a", "b"], pretrained=False)
    modelzoo.save_model(model, tmp_path / "run")
    env = hub_env(server, tmp_path / "hf", MODELZOO_HUB_TIMEOUT="4")
    with server.fault("silent", "*", ""):
        start = time.monotonic()
        proc = zoo(env, "push", str(tmp_path / "run"), "org/pushed")
    one_line(proc, "pushing to org/pushed did not finish within 4 s (MODELZOO_HUB_TIMEOUT)", "run zoo push again later")
    assert time.monotonic() - start < 40
