"""Fresh ``zoo`` processes for tests: the command, a clean environment, a local Hub's environment, children."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server or rendezvous a test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
