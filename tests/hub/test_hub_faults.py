"""The Hub misbehaving, through the real ``huggingface_hub`` client against the local server's faults:
the connection dropped mid-upload and mid-download, bytes damaged in transit, a repo whose files do not
match its recorded sha256s, and a ``zoo.lock`` that disagrees with the server.

Each ends in one ``error:`` line (or, where the client can resume, in the right files), and leaves no
partial local state: no half-written ``--to`` folder, and no damaged file in the HF cache that a later
pull would use. Every process's output is searched for the token. (Bad tokens and each kind of 404 are
in ``test_hub.py``.)
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from modelzoo.hub.manifest import MANIFEST
from modelzoo.testing import hub_env
from modelzoo.testing.hubserver import TEST_TOKEN, HubServer

pytestmark = pytest.mark.attack("hub")

ARCH = "timm:test_efficientnet"


def zoo(*args, env: dict[str, str], cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m modelzoo ARGS``; fails the test if the token shows up anywhere in its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "modelzoo", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert TEST_TOKEN not in proc.stdout + proc.stderr, "the token was printed"
    return proc


def ok(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout.strip().splitlines()


def one_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def no_partial(folder: Path) -> None:
    """Nothing of a refused ``--to FOLDER``: neither the folder nor a temporary sibling."""
    assert not folder.exists(), f"{folder} was written"
    assert not list(folder.parent.glob(f".{folder.name}.*")), "a temporary pull folder was left behind"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A model folder as a run leaves it: config, safetensors weights, recipe, metrics."""
    import torch

    import modelzoo

    folder = tmp_path_factory.mktemp("run") / "run"
    torch.manual_seed(0)
    model = modelzoo.assemble(ARCH, "classification:linear", labels=["a", "b"], pretrained=False)
    modelzoo.save_model(model, folder)
    (folder / "recipe.toml").write_text('name = "faulty"\n')
    (folder / "metrics.jsonl").write_text('{"epoch": 0, "val_accuracy": 0.5}\n')
    return folder


@pytest.fixture(scope="module")
def server():
    with HubServer() as srv:
        yield srv
        assert srv.unknown == [], f"client called endpoints the test server does not know: {srv.unknown}"


@pytest.fixture(scope="module")
def pushed(server, run, tmp_path_factory) -> str:
    _, sha = ok(zoo("push", run, "org/faulty", env=hub_env(server, tmp_path_factory.mktemp("home"))))
    return sha


# -- uploads ------------------------------------------------------------------------------------------
def test_push_cut_off_mid_upload_commits_nothing(server, run, tmp_path):
    env = hub_env(server, tmp_path / "home")
    with server.fault("drop-request", "POST", "/api/models/org/cut/commit/", after=200) as fault:
        one_error(zoo("push", run, "org/cut", env=env), "connection to the Hub", "run the command again")
    assert fault.hits >= 1
    assert server.history("org/cut") == [server.history("org/cut")[-1]]  # only the repo's initial commit
    assert set(server.files("org/cut")) == {".gitattributes"}
    _, sha = ok(zoo("push", run, "org/cut", env=env))  # the network is back: the push goes through
    assert server.files("org/cut", sha)["model.safetensors"].sha256 == sha256(run / "model.safetensors")


def test_lfs_upload_cut_off_once_is_resent(run, tmp_path):
    """An LFS upload (HF_HUB_DISABLE_XET=1) cut off once: the client sends it again; what lands is exact."""
    with HubServer(lfs_threshold=1000) as lfs:
        env = hub_env(lfs, tmp_path / "home", HF_HUB_DISABLE_XET="1")
        with lfs.fault("drop-request", "PUT", "/lfs-upload/", after=500, times=1) as fault:
            _, sha = ok(zoo("push", run, "org/lfs", env=env))
        blobs = lfs.files("org/lfs", sha)
        assert fault.hits == 1 and lfs.count("PUT", "/lfs-upload/") == sum(b.lfs for b in blobs.values()) + 1
        blob = blobs["model.safetensors"]
        assert blob.lfs and blob.sha256 == sha256(run / "model.safetensors")
        assert lfs.read(blob) == (run / "model.safetensors").read_bytes()


# -- downloads ----------------------------------------------------------------------------------------
def test_pull_cut_off_once_resumes_to_the_exact_files(server, run, pushed, tmp_path):
    env = hub_env(server, tmp_path / "home")
    with server.fault("drop-response", "GET", "/resolve/", after=100, times=2) as fault:
        sha, path = ok(zoo("pull", f"org/faulty@{pushed}", "--to", tmp_path / "out", env=env))
    assert fault.hits == 2 and sha == pushed
    assert sha256(Path(path) / "model.safetensors") == sha256(run / "model.safetensors")


def test_pull_cut_off_for_good_leaves_nothing_half_written(server, run, pushed, tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    with server.fault("drop-response", "GET", "/resolve/" + pushed + "/model.safetensors", after=0):
        one_error(zoo("pull", f"org/faulty@{pushed}", "--to", out, env=hub_env(server, home), timeout=60))
    no_partial(out)
    # nothing partial is taken for the real thing: offline it is not there; online it is fetched whole
    one_error(zoo("pull", f"org/faulty@{pushed}", env=hub_env(server, home, HF_HUB_OFFLINE="1")))
    assert ok(zoo("pull", f"org/faulty@{pushed}", "--to", out, env=hub_env(server, home)))[0] == pushed
    assert sha256(out / "model.safetensors") == sha256(run / "model.safetensors")


def test_bytes_damaged_in_transit_are_refused_and_never_used(server, run, pushed, tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    with server.fault("corrupt", "GET", "/model.safetensors") as fault:
        one_error(
            zoo("pull", f"org/faulty@{pushed}", "--to", out, env=hub_env(server, home)),
            "model.safetensors has sha256",
            f"but {MANIFEST} records",
        )
    assert fault.hits == 2  # downloaded, found wrong, downloaded once more, still wrong: refused
    no_partial(out)
    one_error(
        zoo("pull", f"org/faulty@{pushed}", env=hub_env(server, home, HF_HUB_OFFLINE="1")),
        "model.safetensors has sha256",
        "corrupt",
    )
    ok(zoo("pull", f"org/faulty@{pushed}", "--to", out, env=hub_env(server, home)))  # repaired from the Hub
    assert sha256(out / "model.safetensors") == sha256(run / "model.safetensors")


def test_a_repo_whose_files_do_not_match_their_manifest(server, run, pushed, tmp_path):
    files = {name: server.read(blob) for name, blob in server.files("org/faulty", pushed).items()}
    weights = bytearray(files["model.safetensors"])
    weights[-1] ^= 0x01  # the recorded sha256 (manifest) no longer holds
    server.commit("org/tampered", {**files, "model.safetensors": bytes(weights)})
    home, out = tmp_path / "home", tmp_path / "out"
    line = one_error(
        zoo("pull", "org/tampered", "--to", out, env=hub_env(server, home)),
        "org/tampered@",
        "model.safetensors has sha256",
        "do not use this commit",
    )
    assert "\n" not in line
    no_partial(out)
    script = (
        "import modelzoo\n"
        "from modelzoo.errors import ZooError\n"
        "try:\n"
        "    modelzoo.load('hf-hub:org/tampered')\n"
        "except ZooError as exc:\n"
        "    print('ZooError:', exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=hub_env(server, home), capture_output=True, text=True, timeout=120
    )
    assert TEST_TOKEN not in proc.stdout + proc.stderr
    assert proc.returncode == 0 and proc.stdout.startswith("ZooError: org/tampered@"), proc.stdout + proc.stderr
    assert "do not use this commit" in proc.stdout


# -- zoo.lock -----------------------------------------------------------------------------------------
def test_a_lock_that_disagrees_with_the_server(server, run, pushed, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    env = hub_env(server, tmp_path / "home")
    files = {name: server.read(blob) for name, blob in server.files("org/faulty", pushed).items()}
    server.commit("org/moving", files)
    ok(zoo("lock", "org/moving", env=env, cwd=project))
    lock_text = (project / "zoo.lock").read_text()
    locked = tomllib.loads(lock_text)["model"][0]

    # the branch moved on the server: the lock still pulls what it pinned
    moved = server.commit("org/moving", {"metrics.jsonl": b'{"epoch": 1}\n'})
    assert moved != locked["sha"]
    sha, _, repo = ok(zoo("pull", "--locked", env=env, cwd=project))[0].split()
    assert (sha, repo) == (locked["sha"], "org/moving")

    def with_lock(text: str, repo: str = "org/moving") -> subprocess.CompletedProcess:
        (project / "zoo.lock").write_text(text)
        return zoo("pull", repo, "--locked", "--to", tmp_path / "out", env=env, cwd=project)

    # the lock records a file the commit does not have, or lacks one it has
    extra = lock_text.replace("[model.files]", f'[model.files]\n"extra.json" = "{"0" * 64}"')
    one_error(with_lock(extra), "does not match", "extra.json is missing")
    fewer = "\n".join(line for line in lock_text.splitlines() if not line.startswith('"metrics.jsonl"'))
    one_error(with_lock(fewer), "does not match", "metrics.jsonl is not in the lock")
    # the locked commit, or the whole repo, is gone from the server
    one_error(with_lock(lock_text.replace(locked["sha"], "f" * 40)), "not found")
    one_error(with_lock(lock_text.replace("org/moving", "org/deleted"), "org/deleted"), "repo org/deleted not found")
    # a lock that is not a lock
    one_error(with_lock("version = 1\n[[model]]\nrepo = 3\n"), "is not a valid zoo.lock")
    one_error(with_lock("\xff not toml"), "is not a valid zoo.lock")
    no_partial(tmp_path / "out")
    assert json.loads(json.dumps(locked))  # (the lock itself stayed plain data throughout)


# -- tokens -------------------------------------------------------------------------------------------
BATCH = """
import contextlib, io, json, os, sys
from modelzoo.cli.main import main
from modelzoo.errors import ZooError
import modelzoo
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
try:
    modelzoo.load("hf-hub:org/faulty")
    results.append([0, "loaded", ""])
except ZooError as exc:
    results.append([2, "", f"error: {exc}"])
print(json.dumps(results))
"""


@pytest.mark.parametrize("token", ["hf_bad\nX-Injected: 1", "hf_naïve_token"], ids=["line-break", "non-ascii"])
def test_odd_tokens_are_one_line_everywhere(server, run, pushed, tmp_path, token):
    """A token that cannot be sent at all is one line for every Hub command and the Python API, never shown.
    (A wrong token, a read-only one and none at all are in test_hub.py.)"""
    env = hub_env(server, tmp_path / "home", token=token)
    argvs = [["pull", "org/faulty"], ["lock", "org/faulty"], ["list", "--hub", "org"], ["push", str(run), "org/x"]]
    proc = subprocess.run(
        [sys.executable, "-c", BATCH, json.dumps(argvs)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for secret in (token.splitlines()[0], TEST_TOKEN):
        assert secret not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr
    for code, out, err in json.loads(proc.stdout):
        one_error(subprocess.CompletedProcess([], code, out, err), "token", "copy it again")
    assert not (tmp_path / "zoo.lock").exists()
