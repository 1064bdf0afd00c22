"""Hub push/pull/lock against a local Hub-compatible server, driven through the REAL huggingface_hub client.

``huggingface_hub`` reads HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE when it is imported, so every Hub
operation runs in a subprocess (``python -m modelzoo ...`` or a short ``python -c`` script) with its
own environment; the pytest process only builds tiny models and compares predictions.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from modelzoo.testing import hub_env as _hub_env
from modelzoo.testing.hubserver import READ_TOKEN, TEST_TOKEN, HubServer

torch = pytest.importorskip("torch")
from safetensors.torch import save_file  # noqa: E402

import modelzoo  # noqa: E402
from modelzoo.hub.manifest import MANIFEST, parse_manifest  # noqa: E402

ARCH = "timm:test_efficientnet"
LABELS = ["cat", "dog", "eel"]
HUB_PRETRAINED = {
    "tag": "test_efficientnet.r160_in1k",
    "source": "hf-hub:timm/test_efficientnet.r160_in1k",
    "sha256": "ab" * 32,
    "license": "apache-2.0",
}
#: no process's output may show any of these (every helper below checks)
SECRETS = (TEST_TOKEN, READ_TOKEN, "hf_this_is_a_wrong_secret")
PUSHED = {
    ".gitattributes",
    "README.md",
    MANIFEST,
    "config.json",
    "model.safetensors",
    "recipe.toml",
    "metrics.jsonl",
    "training_curves.png",
    "timm_model.safetensors",  # a timm backbone + linear head is also a timm repo (zoo_timm.hubexport)
}


# -- fixtures ---------------------------------------------------------------------------------
def sample_input() -> torch.Tensor:
    return torch.linspace(-1, 1, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64)


def write_run(out: Path, model, accuracy: float, confusion: bool = True) -> Path:
    """A run folder in the engine's format (config.json is exactly assemble(...).config + dataset)."""
    out.mkdir(parents=True)
    config = json.loads(json.dumps(model.config))
    config["backbone"]["pretrained"] = HUB_PRETRAINED  # provenance as if built from Hub weights
    config["dataset"] = {"name": "fashion-mnist", "hub_id": "zalando-datasets/fashion_mnist", "license": "mit"}
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt", "library": "modelzoo"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "recipe.toml").write_text(
        'name = "tiny"\ntask = "image-classification"\nseed = 0\n\n[model]\nbackbone = "test_efficientnet"\n'
        'head = "linear"\n\n[[stages]]\nname = "head"\ntrain = "head"\nepochs = 2\nlr = 0.003\n'
    )
    rows = [
        {"stage": 0, "epoch": e, "train_loss": 1.0 / (e + 1), "val_accuracy": accuracy - 0.1 * (1 - e)}
        for e in range(2)
    ]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {
        "task": "image-classification",
        "recipe": "tiny",
        "metrics": {"accuracy": accuracy, "loss": 0.5},
        "per_class": [{"precision": 0.5, "recall": 0.5, "support": 4}] * 3,
        "dataset": {"name": "fashion-mnist", "source": "/home/someone/private/data", "val_is": "official test split"},
    }
    (out / "summary.json").write_text(json.dumps(summary))
    (out / "training_curves.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    if confusion:
        (out / "confusion_matrix.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (out / "checkpoint").mkdir()
    (out / "checkpoint" / "last.pt").write_bytes(b"resumable state, never pushed")
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one tiny model (v2: different head weights, no confusion plot) + reference outputs."""
    root = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    model = modelzoo.assemble(ARCH, "classification:linear", num_classes=3, labels=LABELS, pretrained=False).eval()
    x = sample_input()
    with torch.no_grad():
        ref1 = model(x)
        v1 = write_run(root / "v1", model, accuracy=0.75)
        model.head[-1].bias.add_(1.0)
        ref2 = model(x)
        v2 = write_run(root / "v2", model, accuracy=0.8, confusion=False)
    assert not torch.equal(ref1, ref2)
    return {"v1": v1, "v2": v2, "ref1": ref1, "ref2": ref2}


@pytest.fixture(scope="module")
def server():
    with HubServer() as srv:
        yield srv
        assert srv.unknown == [], f"client called endpoints the test server does not know: {srv.unknown}"


def hub_env(server: HubServer | str, home: Path, token: str | None = TEST_TOKEN, **extra: str) -> dict[str, str]:
    return _hub_env(server, home, token=token or "", **extra)


def no_secrets(*outputs: str) -> None:
    for secret in SECRETS:
        assert all(secret not in text for text in outputs), "a token was printed"


def zoo(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "modelzoo", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    no_secrets(proc.stdout, proc.stderr)
    return proc


BATCH = """
import contextlib, io, json, sys
from modelzoo.cli.main import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def zoo_many(*argvs: list, env: dict[str, str], cwd: Path | None = None) -> list[subprocess.CompletedProcess]:
    """Several ``zoo`` commands in one interpreter (same environment), to keep the suite fast."""
    argvs = [[str(a) for a in argv] for argv in argvs]
    proc = subprocess.run(
        [sys.executable, "-c", BATCH, json.dumps(argvs)], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    no_secrets(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    return [subprocess.CompletedProcess(argv, code, o, e) for argv, (code, o, e) in zip(argvs, json.loads(proc.stdout))]


def ok(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout.strip().splitlines()


def expect_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2 with exactly one ``error: ...`` line on stderr (no traceback) containing ``fragments``."""
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_outputs(path: Path) -> torch.Tensor:
    with torch.no_grad():
        return modelzoo.load(path)(sample_input())


@pytest.fixture(scope="module")
def pushed(server, runs, tmp_path_factory):
    """org/tiny: v1 pushed (tag v1), then v2 pushed on main."""
    home = tmp_path_factory.mktemp("push-home")
    env = hub_env(server, home)
    url, sha1 = ok(zoo("push", runs["v1"], "org/tiny", "--tag", "v1", env=env))
    assert url == f"{server.url}/org/tiny"
    commits_after_v1 = server.history("org/tiny")
    repush = zoo("push", runs["v1"], "org/tiny", "--tag", "v1", env=env)
    assert ok(repush) == [url, sha1] and "no changes" in repush.stderr
    assert server.history("org/tiny") == commits_after_v1
    _, sha2 = ok(zoo("push", runs["v2"], "org/tiny", env=env))
    return {"sha1": sha1, "sha2": sha2, "history_v1": commits_after_v1}


# -- round trip -------------------------------------------------------------------------------
def test_push_pull_roundtrip_gives_identical_predictions(server, runs, pushed, tmp_path):
    files = server.files("org/tiny", pushed["sha1"])
    assert set(files) == PUSHED | {"confusion_matrix.png"}  # never checkpoint/ or summary.json
    manifest = parse_manifest(server.read(files[MANIFEST]).decode())
    assert set(manifest) == set(files) - {".gitattributes", MANIFEST}
    assert manifest["model.safetensors"] == sha256(runs["v1"] / "model.safetensors")

    out = tmp_path / "pulled"
    sha, path = ok(zoo("pull", f"org/tiny@{pushed['sha1']}", "--to", out, env=hub_env(server, tmp_path / "home")))
    assert sha == pushed["sha1"] and Path(path) == out.absolute()
    assert sha256(out / "model.safetensors") == sha256(runs["v1"] / "model.safetensors")
    assert torch.equal(load_outputs(out), runs["ref1"])
    assert not list(tmp_path.glob(".pulled.*")), "temporary pull folder left behind"


def test_repush_unchanged_creates_no_commit(server, runs, pushed, tmp_path):
    before = server.history("org/tiny")
    commits = server.count("POST", "/commit/")
    result = zoo("push", runs["v2"], "org/tiny", env=hub_env(server, tmp_path))
    assert ok(result)[1] == pushed["sha2"] and "no changes" in result.stderr
    assert server.history("org/tiny") == before and server.count("POST", "/commit/") == commits


def test_card_yaml_parses_and_carries_metrics(server, pushed, tmp_path):
    from huggingface_hub import ModelCard

    readme = tmp_path / "README.md"
    readme.write_bytes(server.read(server.files("org/tiny", pushed["sha1"])["README.md"]))
    card = ModelCard.load(readme)
    data = card.data
    assert data.library_name == "modelzoo"
    assert data.license == "apache-2.0"
    assert data.base_model == "timm/test_efficientnet.r160_in1k"
    assert data.datasets == ["zalando-datasets/fashion_mnist"]
    assert data.pipeline_tag == "image-classification"
    assert "modelzoo" in data.tags
    results = {r.metric_type: r for r in data.eval_results}
    assert results["accuracy"].metric_value == 0.75 and results["loss"].metric_value == 0.5
    assert results["accuracy"].dataset_type == "zalando-datasets/fashion_mnist"
    assert results["accuracy"].task_type == "image-classification"
    # the card of a tagged push names its tag
    assert 'modelzoo.load("hf-hub:org/tiny@v1")' in card.text and "zoo predict hf-hub:org/tiny@v1" in card.text
    assert "epochs=`2`" in card.text and "training_curves.png" in card.text
    assert "/home/someone" not in card.content  # local paths in summary.json stay local


def test_card_is_honest_about_license_and_base_model():
    from huggingface_hub import ModelCard

    from modelzoo.errors import ZooError
    from modelzoo.hub.card import build_card

    config = {
        "task": "image-classification",
        "backbone": {"name": ARCH},
        "head": {"name": "classification:linear"},
        "num_classes": 3,
    }
    pkg = {"tag": "x.pkg", "source": "pkg:some-dist/w.pth", "sha256": None, "license": "mit"}
    card = ModelCard(build_card("org/m", {**config, "backbone": {"name": ARCH, "pretrained": pkg}}, {}))
    assert card.data.license == "mit" and card.data.base_model is None
    assert "not a Hub repo" in card.text
    scratch = ModelCard(build_card("org/m", {**config, "backbone": {"name": ARCH, "pretrained": None}}, {}))
    assert scratch.data.license is None and "trained from scratch" in scratch.text
    declared = ModelCard(build_card("org/m", {**config, "backbone": {"name": ARCH}}, {}, license="cc-by-4.0"))
    assert declared.data.license == "cc-by-4.0"
    with pytest.raises(ZooError, match="licensed 'mit'"):
        build_card("org/m", {**config, "backbone": {"name": ARCH, "pretrained": pkg}}, {}, license="apache-2.0")


# -- pinning, branches, tags ------------------------------------------------------------------
def test_pinned_sha_and_tag_survive_main_moving_on(server, runs, pushed, tmp_path):
    env = hub_env(server, tmp_path / "home")
    assert pushed["sha2"] != pushed["sha1"] and server.history("org/tiny")[1] == pushed["sha1"]
    assert "confusion_matrix.png" not in server.files("org/tiny")  # v2 dropped it: the stale file is deleted
    sha, path = ok(zoo("pull", f"org/tiny@{pushed['sha1']}", env=env))
    assert sha == pushed["sha1"] and sha256(Path(path) / "model.safetensors") == sha256(
        runs["v1"] / "model.safetensors"
    )
    assert ok(zoo("pull", "org/tiny@v1", env=env))[0] == pushed["sha1"]
    sha, path = ok(zoo("pull", "org/tiny", env=env))
    assert sha == pushed["sha2"] and torch.equal(load_outputs(Path(path)), runs["ref2"])
    # a tag is a pin: pushing different content under an existing tag fails before committing
    before = server.history("org/tiny")
    expect_error(zoo("push", runs["v1"], "org/tiny", "--tag", "v1", env=env), "tag 'v1' already points to")
    assert server.history("org/tiny") == before


def test_branch_push_leaves_main_alone(server, runs, pushed, tmp_path):
    env = hub_env(server, tmp_path / "home")
    main_before = server.history("org/tiny")
    _, sha = ok(zoo("push", runs["v1"], "org/tiny", "--branch", "exp", env=env))
    assert server.history("org/tiny") == main_before and server.history("org/tiny", "exp")[0] == sha
    assert ok(zoo("pull", "org/tiny@exp", env=env))[0] == sha


# -- cache and offline ------------------------------------------------------------------------
@pytest.mark.attack("hub")
def test_cached_sha_needs_no_network_and_loads_offline(server, runs, pushed, tmp_path):
    home = tmp_path / "home"
    assert ok(zoo("pull", "org/tiny@v1", env=hub_env(server, home)))[0] == pushed["sha1"]
    ok(zoo("pull", "org/tiny", env=hub_env(server, home)))
    requests = len(server.requests)
    assert ok(zoo("pull", f"org/tiny@{pushed['sha1']}", env=hub_env(server, home)))[0] == pushed["sha1"]
    assert len(server.requests) == requests, "a cached commit must not touch the network"

    # offline, with the Hub gone: branch, tag and sha all resolve from the cache, and load
    dead = f"http://127.0.0.1:{closed_port()}"
    refs = {f"org/tiny@{pushed['sha1']}": "ref1", "org/tiny": "ref2", "org/tiny@v1": "ref1"}
    results = zoo_many(*(["pull", ref] for ref in refs), env=hub_env(dead, home, HF_HUB_OFFLINE="1"))
    for result, expected in zip(results, refs.values()):
        sha, path = ok(result)
        assert sha == pushed["sha1" if expected == "ref1" else "sha2"]
        assert torch.equal(load_outputs(Path(path)), runs[expected])
    assert len(server.requests) == requests


@pytest.mark.attack("hub")
def test_corrupt_cache_is_detected_and_repaired(server, pushed, tmp_path):
    home = tmp_path / "home"
    _, path = ok(zoo("pull", f"org/tiny@{pushed['sha1']}", env=hub_env(server, home)))
    blob = (Path(path) / "config.json").resolve()
    blob.write_text(blob.read_text().replace("cat", "cow"))
    expect_error(
        zoo("pull", f"org/tiny@{pushed['sha1']}", env=hub_env(server, home, HF_HUB_OFFLINE="1")),
        "config.json has sha256",
        "corrupt",
    )
    ok(zoo("pull", f"org/tiny@{pushed['sha1']}", env=hub_env(server, home)))  # online: re-downloaded
    assert '"cat"' in (Path(path) / "config.json").read_text()
    (Path(path) / "metrics.jsonl").unlink()  # an interrupted download: the snapshot lacks a file
    expect_error(
        zoo("pull", f"org/tiny@{pushed['sha1']}", env=hub_env(server, home, HF_HUB_OFFLINE="1")),
        "file metrics.jsonl not found",
        "incomplete",
    )
    ok(zoo("pull", f"org/tiny@{pushed['sha1']}", env=hub_env(server, home)))
    assert (Path(path) / "metrics.jsonl").is_file()


# -- lock -------------------------------------------------------------------------------------
@pytest.mark.attack("hub")
def test_lock_and_pull_locked(server, pushed, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    env = hub_env(server, tmp_path / "home")
    assert ok(zoo("lock", "org/tiny@v1", env=env, cwd=project)) == [f"org/tiny  v1  {pushed['sha1']}"]
    lock = tomllib.loads((project / "zoo.lock").read_text())
    (entry,) = lock["model"]
    assert entry["sha"] == pushed["sha1"] and entry["repo"] == "org/tiny"
    manifest = parse_manifest(server.read(server.files("org/tiny", pushed["sha1"])[MANIFEST]).decode())
    assert {k: v for k, v in entry["files"].items() if k != MANIFEST} == manifest

    fresh = hub_env(server, tmp_path / "home2")
    locked_all, unpinned, explicit, conflict = zoo_many(
        ["pull", "--locked"],
        ["pull", "org/tiny"],  # the lock pins code that names a repo without a revision...
        ["pull", "org/tiny@main"],  # ...an explicit revision wins...
        ["pull", "org/tiny@main", "--locked"],  # ...unless --locked
        env=fresh,
        cwd=project,
    )
    assert ok(locked_all)[0].split()[:3] == [pushed["sha1"], str(fresh_snapshot(tmp_path, pushed["sha1"])), "org/tiny"]
    assert ok(unpinned)[0] == pushed["sha1"] and ok(explicit)[0] == pushed["sha2"]
    expect_error(conflict, "conflicts with zoo.lock")

    # any mismatch with the lock fails, and --to writes nothing
    tampered = (project / "zoo.lock").read_text().replace(entry["files"]["config.json"], "0" * 64)
    (project / "zoo.lock").write_text(tampered)
    to_dir, relock = zoo_many(
        ["pull", "org/tiny", "--locked", "--to", tmp_path / "out"], ["lock"], env=fresh, cwd=project
    )
    expect_error(to_dir, "does not match zoo.lock", "config.json")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    expect_error(relock, "does not match")

    repair, update = zoo_many(["lock", "org/tiny@v1"], ["lock", "--update"], env=fresh, cwd=project)
    assert ok(repair) == ok(update) == [f"org/tiny  v1  {pushed['sha1']}"]
    gone = (project / "zoo.lock").read_text().replace(pushed["sha1"], "f" * 40)
    (project / "zoo.lock").write_text(gone)
    missing, nothing = zoo_many(
        ["pull", "--locked"], ["lock", "--lockfile", tmp_path / "none.lock"], env=fresh, cwd=project
    )
    expect_error(missing, "revision", "not found")
    expect_error(nothing, "nothing to lock")


def fresh_snapshot(tmp_path: Path, sha: str) -> Path:
    return tmp_path / "home2" / "hub" / "models--org--tiny" / "snapshots" / sha


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.attack("hub")
def test_errors_are_one_clear_line(server, runs, pushed, tmp_path):
    env = hub_env(server, tmp_path / "home")
    expect_error(
        zoo("push", runs["v1"], "org/new", env=hub_env(server, tmp_path / "h0", token=None)), "no Hugging Face token"
    )
    bad = "hf_this_is_a_wrong_secret"
    result = zoo("push", runs["v1"], "org/new", env=hub_env(server, tmp_path / "h1", token=bad))
    expect_error(result, "rejected your token")
    assert bad not in result.stdout + result.stderr
    expect_error(zoo("pull", "org/tiny", env=hub_env(server, tmp_path / "h1", token=bad)), "rejected your token")
    expect_error(
        zoo("push", runs["v1"], "org/new", env=hub_env(server, tmp_path / "h2", token=READ_TOKEN)), "may not write"
    )
    assert ("model", "org/new") not in server.repos

    server.commit("org/plain", {"README.md": b"# not a modelzoo repo\n"})
    files = server.files("org/tiny", pushed["sha1"])
    server.commit("org/partial", {n: server.read(b) for n, b in files.items() if n != "model.safetensors"})
    results = zoo_many(
        ["pull", "org/missing"],
        ["pull", "org/tiny@no-such-branch"],
        ["pull", f"org/tiny@{'e' * 40}"],
        ["pull", "org/plain"],
        ["pull", "org/partial", "--to", tmp_path / "p"],
        ["pull", "not a ref"],
        ["push", tmp_path / "nope", "org/x"],
        env=env,
    )
    expect_error(results[0], "repo org/missing not found")
    expect_error(results[1], "revision 'no-such-branch' not found")
    expect_error(results[2], "not found")
    expect_error(results[3], f"file {MANIFEST} not found", "not a modelzoo model")
    expect_error(results[4], "file model.safetensors not found")
    assert not (tmp_path / "p").exists()
    expect_error(results[5], "not a Hub model reference")
    expect_error(results[6], "not a run folder")

    dead = f"http://127.0.0.1:{closed_port()}"
    for result in zoo_many(
        ["pull", "org/tiny"],
        ["push", runs["v1"], "org/tiny"],
        ["list", "--hub", "org"],
        env=hub_env(dead, tmp_path / "h3"),
    ):
        expect_error(result, "cannot reach the Hub")
    expect_error(
        zoo("pull", "org/tiny@v1", env=hub_env(server, tmp_path / "h4", HF_HUB_OFFLINE="1")),
        "not in the local HF cache",
        "HF_HUB_OFFLINE=1",
    )
    assert not list((tmp_path / "home").rglob("*.incomplete"))
    for folder in (tmp_path, server.root):  # the token never lands in files
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert TEST_TOKEN.encode() not in path.read_bytes(), path


# -- safety -----------------------------------------------------------------------------------
@pytest.mark.attack("hub")
def test_pull_downloads_only_data_never_code(server, pushed, tmp_path):
    files = {n: server.read(b) for n, b in server.files("org/tiny", pushed["sha1"]).items()}
    evil = b"open('/tmp/pwned-by-modelzoo-test', 'w').write('x')\n"
    extras = {"modeling.py": evil, "pytorch_model.bin": b"pickle!"}
    manifest = files[MANIFEST].decode() + "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in extras.items())
    server.commit("org/evil", {**files, **extras, MANIFEST: manifest.encode()})
    _, path = ok(zoo("pull", "org/evil", env=hub_env(server, tmp_path / "home")))
    names = {p.name for p in Path(path).iterdir()}
    assert "modeling.py" not in names and "pytorch_model.bin" not in names and "model.safetensors" in names
    load_outputs(Path(path))
    assert not Path("/tmp/pwned-by-modelzoo-test").exists()


# -- LFS, listing, Python API -----------------------------------------------------------------
def test_plain_lfs_upload_path(runs, tmp_path):
    """HF_HUB_DISABLE_XET=1 + a server that asks for LFS: batch, PUT, verify, lfsFile commit, pull."""
    with HubServer(lfs_threshold=100_000) as server:
        env = hub_env(server, tmp_path / "home", HF_HUB_DISABLE_XET="1")
        _, sha = ok(zoo("push", runs["v1"], "org/lfs", env=env))
        repush = zoo("push", runs["v1"], "org/lfs", env=env)
        assert ok(repush)[1] == sha and "no changes" in repush.stderr
        blob = server.files("org/lfs")["model.safetensors"]
        assert blob.lfs and blob.sha256 == sha256(runs["v1"] / "model.safetensors")
        assert not server.files("org/lfs")["config.json"].lfs
        assert server.count("POST", "/org/lfs.git/info/lfs/objects/batch") == 1
        # model.safetensors and the timm form's timm_model.safetensors
        assert server.count("PUT", "/lfs-upload/") == 2 and server.count("POST", "/lfs-verify/") == 2
        out = tmp_path / "out"
        assert ok(zoo("pull", f"org/lfs@{sha}", "--to", out, env=env))[0] == sha
        assert torch.equal(load_outputs(out), runs["ref1"])
        assert server.unknown == []


def test_list_hub_and_private_repos(server, runs, pushed, tmp_path):
    env = hub_env(server, tmp_path / "home")
    ok(zoo("push", runs["v2"], "org/secret", "--private", env=env))
    lines = ok(zoo("list", "--hub", "org", env=env))
    assert lines[0].split() == ["NAME", "TASK", "ACCURACY", "LICENSE", "SHA", "UPDATED"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "org/tiny" in rows and "0.8000" in rows["org/tiny"] and "apache-2.0" in rows["org/tiny"]
    assert "(private)" in rows["org/secret"] and "org/plain" not in rows
    anonymous = hub_env(server, tmp_path / "anon", token=None)
    assert "org/secret" not in zoo("list", "--hub", "org", env=anonymous).stdout
    expect_error(zoo("pull", "org/secret", env=anonymous), "not found")


def test_python_api_push_model_and_load_hf_hub(server, tmp_path):
    script = (
        "import torch, modelzoo\n"
        f"model = modelzoo.assemble({ARCH!r}, 'classification:linear', num_classes=3, labels={LABELS!r}, pretrained=False).eval()\n"
        "url, sha = modelzoo.hub.push(model, 'org/api', license='cc-by-4.0')\n"
        "x = torch.linspace(-1, 1, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64)\n"
        "with torch.no_grad():\n"
        "    same = torch.equal(modelzoo.load(f'hf-hub:org/api@{sha}')(x), model(x))\n"
        "print(url, sha, same)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import modelzoo.hub.upload\n" + script],
        env=hub_env(server, tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    no_secrets(result.stdout, result.stderr)
    url, sha, same = ok(result)[-1].split()
    assert url == f"{server.url}/org/api" and sha == server.history("org/api")[0] and same == "True"
    assert set(server.files("org/api")) == {
        ".gitattributes",
        "README.md",
        MANIFEST,
        "config.json",
        "model.safetensors",
        "timm_model.safetensors",
    }
    assert "license: cc-by-4.0" in server.read(server.files("org/api")["README.md"]).decode()


def test_zoo_finetune_run_round_trips(server, tmp_path):
    """A real run folder written by the engine: push, pull at the sha, same predictions, complete card."""
    from PIL import Image

    from modelzoo.engine.recipe import validate
    from modelzoo.engine.trainer import finetune

    images = []
    for split, count in (("train", 6), ("val", 2)):
        for name, rgb in {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}.items():
            (tmp_path / "data" / split / name).mkdir(parents=True)
            for i in range(count):
                path = tmp_path / "data" / split / name / f"{i}.png"
                Image.new("RGB", (24, 24), tuple(c + 5 * i for c in rgb)).save(path)
                images.append(path)
    recipe = {
        "name": "colors",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": ARCH, "pretrained": False, "head": "linear"},
        "data": {"path": str(tmp_path / "data"), "image_size": 32, "batch_size": 8},
        "stages": [{"name": "head", "train": "head", "epochs": 1}, {"name": "tune", "train": "last:1", "epochs": 1}],
    }
    run = finetune(validate(recipe), out=tmp_path / "run", quiet=True).path
    env = hub_env(server, tmp_path / "home")
    _, sha = ok(zoo("push", run, "org/colors", env=env))
    assert {"checkpoint", "cache"}.isdisjoint(p.split("/")[0] for p in server.files("org/colors"))
    out = tmp_path / "pulled"
    assert ok(zoo("pull", f"org/colors@{sha}", "--to", out, env=env))[0] == sha
    assert modelzoo.load(out).predict(images) == modelzoo.load(run).predict(images)
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    summary = json.loads((run / "summary.json").read_text())
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["accuracy"] == pytest.approx(summary["metrics"]["accuracy"], abs=1e-6)
    assert card.data.license is None and "License: not declared" in card.text  # random init: no weights license
