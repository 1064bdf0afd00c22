"""A Hub that lies: it resolves any revision (even a path) to its main branch. What the user pinned or
named must hold anyway: revisions are names, never paths, and a pinned sha is checked against the answer."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from modelzoo.testing import hub_env
from modelzoo.testing.hub import HubServer

pytestmark = pytest.mark.attack("hub")


class LyingHub(HubServer):
    """Resolves every revision it does not know to the head of ``main``."""

    def _resolve(self, repo, revision: str) -> str:
        try:
            return super()._resolve(repo, revision)
        except Exception:
            return repo.branches["main"]


PUSH = """
import modelzoo, torch
torch.manual_seed(0)
model = modelzoo.assemble("timm:test_efficientnet", "classification:linear", labels=["a", "b"], pretrained=False,
                           task="image-classification")
print(modelzoo.push(model, "org/good", license="mit").sha)
"""


@contextmanager
def lying_hub_with_a_model(home: Path):
    """A fresh :class:`LyingHub` holding ``org/good`` (pushed by the real client): ``(server, env, sha)``."""
    with LyingHub() as server:
        env = hub_env(server, home / "hf")
        pushed = subprocess.run([sys.executable, "-c", PUSH], env=env, capture_output=True, text=True, timeout=300)
        assert pushed.returncode == 0, pushed.stderr
        yield server, env, pushed.stdout.split()[-1]


@pytest.fixture(scope="module")
def lying(tmp_path_factory):
    home = tmp_path_factory.mktemp("lying")
    with lying_hub_with_a_model(home) as (_, env, sha):
        yield env, home, sha


def zoo(env, *args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "modelzoo", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def one_line(proc, *fragments):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "revision",
    ["../../../../../outside/x", "..", "refs/../../x", "a" * 5000, "main\n", "/abs"],
    ids=["dotdot", "bare-dotdot", "refs-dotdot", "5000-chars", "newline", "absolute"],
)
def test_a_revision_is_a_name_never_a_path(lying, revision):
    env, home, _ = lying
    work = home / "work"
    work.mkdir(exist_ok=True)
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    for args in (["pull", f"org/good@{revision}"], ["lock", f"org/good@{revision}"]):
        one_line(zoo(env, *args, cwd=work), "revision")
    assert not (home / "outside").exists() and not Path("/outside").exists()
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before


def test_a_pinned_sha_is_the_commit_used_or_nothing(lying):
    env, _, sha = lying
    other = "0123456789abcdef0123456789abcdef01234567"
    assert other != sha
    one_line(zoo(env, "pull", f"org/good@{other}"), f"org/good@{other[:12]} was pinned", sha[:12])
    done = zoo(env, "pull", f"org/good@{sha}")
    assert done.returncode == 0, done.stderr


def test_pulling_again_into_a_folder_keeps_what_the_user_added(lying, tmp_path):
    env, _, sha = lying
    to = tmp_path / "model"
    assert zoo(env, "pull", "org/good", "--to", str(to)).returncode == 0
    (to / "notes.txt").write_text("mine")
    (to / "experiments").mkdir()
    (to / "experiments" / "a.csv").write_text("1,2\n")
    again = zoo(env, "pull", f"org/good@{sha}", "--to", str(to))
    assert again.returncode == 0, again.stderr
    assert (to / "notes.txt").read_text() == "mine" and (to / "experiments" / "a.csv").read_text() == "1,2\n"
    assert (to / "config.json").is_file()
    (to / "config.json").unlink()
    (to / "config.json").mkdir()  # a user's folder where a pulled file belongs: refused, nothing lost
    clash = zoo(env, "pull", "org/good", "--to", str(to))
    assert clash.returncode == 2 and "was not written by zoo pull" in clash.stderr
    assert (to / "notes.txt").read_text() == "mine" and (to / "config.json").is_dir()


def test_a_pull_takes_only_what_the_manifest_lists(tmp_path_factory):
    with lying_hub_with_a_model(tmp_path_factory.mktemp("unlisted")) as (server, env, _):
        server.commit(
            "org/good",
            {"huge.png": b"\x89PNG" + b"\0" * 300_000, **{f"deep/{i}/x.png": b"\x89PNG" for i in range(40)}},
        )
        done = zoo(env, "pull", "org/good")
        assert done.returncode == 0, done.stderr
        snapshot = Path(done.stdout.split()[-1])
        assert (snapshot / "config.json").is_file()
        assert not (snapshot / "huge.png").exists() and not (snapshot / "deep").exists()


def test_a_trickling_hub_meets_an_overall_deadline(tmp_path_factory):
    with lying_hub_with_a_model(tmp_path_factory.mktemp("trickle")) as (server, env, _):
        with server.fault("trickle", "GET", "model.safetensors", after=500):
            slow = zoo({**env, "MODELZOO_HUB_TIMEOUT": "3"}, "pull", "org/good")
        one_line(slow, "did not finish within 3 s", "MODELZOO_HUB_TIMEOUT")
        bad = zoo({**env, "MODELZOO_HUB_TIMEOUT": "never"}, "pull", "org/good")
        one_line(bad, "MODELZOO_HUB_TIMEOUT='never'")
