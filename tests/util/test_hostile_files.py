"""Hostile and damaged files: truncated or bit-flipped safetensors, sha256 mismatches, pickles whose
``__reduce__`` runs a command (offered as pretrained weights, as a checkpoint and inside a pulled Hub
repo), ``config.json`` files with wrong shapes or unknown keys, and paths that lead out of their folder.

Each is refused with one clear line: nothing executed (the pickles would create a marker file), nothing
loaded half-way, nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from modelzoo.catalog import lookup as catalog_mod
from modelzoo.cli.main import main
from modelzoo.errors import RecipeError, ZooError
from modelzoo.testing import hub_env, write_color_images
from modelzoo.testing.hubserver import TEST_TOKEN

torch = pytest.importorskip("torch")

import modelzoo  # noqa: E402

pytestmark = [pytest.mark.attack("files"), pytest.mark.usefixtures("one_thread")]


class Evil:
    """A pickle that runs a command when loaded; it creates ``marker``, which must never appear."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_bytes(marker: Path) -> bytes:
    """A .pth file as torch.save writes it, whose unpickling would run ``touch marker``."""
    path = marker.parent / "evil.pth"
    torch.save({"state_dict": Evil(marker)}, path)
    return path.read_bytes()


def one_line(exc: BaseException, *fragments: str) -> str:
    message = str(exc)
    assert message and "\n" not in message, repr(message)
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture
def model_folder(real_catalog, tmp_path) -> Path:
    torch.manual_seed(0)
    model = modelzoo.assemble("timm:test_convnext", "classification:linear", labels=["a", "b", "c"], pretrained=False)
    folder = tmp_path / "model"
    modelzoo.save_model(model, folder)
    return folder


# -- links out of a run folder ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["loss.png", "metrics.jsonl"])
def test_a_link_out_of_the_folder_is_never_published(model_folder, tmp_path, name):
    """A plot or metrics file that is a symbolic link to a secret elsewhere: push names it and stops."""
    from modelzoo.model.folder import model_files

    secret = tmp_path / "id_ed25519"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (model_folder / name).symlink_to(secret)
    with pytest.raises(ZooError) as info:
        model_files(model_folder)
    one_line(info.value, str(model_folder / name), "outside the run folder", "replace the link with a copy")
    (model_folder / name).unlink()
    (model_folder / "copy").write_bytes(b"{}\n")
    (model_folder / name).symlink_to(model_folder / "copy")  # a link within the folder is its own file
    assert model_files(model_folder)[name] == model_folder / name


# -- damaged weights ----------------------------------------------------------------------------------
def damaged(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    flipped = bytearray(data)
    flipped[{"header bit": 12, "data bit": len(data) - 3}[how]] ^= 0x04
    return bytes(flipped)


@pytest.mark.parametrize("how", ["truncated", "header bit", "data bit"])
def test_damaged_safetensors_are_refused_by_load_and_predict(model_folder, tmp_path, capsys, how):
    weights = model_folder / "model.safetensors"
    weights.write_bytes(damaged(weights.read_bytes(), how))
    with pytest.raises(ZooError) as info:
        modelzoo.load(model_folder)
    one_line(info.value, str(weights), "has sha256", "config.json records", "damaged or was replaced")
    image = write_color_images(tmp_path / "images", 1, seed=0) / "red" / "0.png"
    assert main(["predict", str(model_folder), str(image)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and "has sha256" in err


@pytest.mark.parametrize("how", ["truncated", "header bit"])
def test_damaged_safetensors_without_recorded_digests(model_folder, how):
    """A folder saved before config.json recorded digests: the safetensors reader still refuses it."""
    config = json.loads((model_folder / "config.json").read_text())
    del config["sha256"], config["config_sha256"]
    (model_folder / "config.json").write_text(json.dumps(config))
    weights = model_folder / "model.safetensors"
    weights.write_bytes(damaged(weights.read_bytes(), how))
    with pytest.raises(ZooError) as info:
        modelzoo.load(model_folder)
    one_line(info.value, str(weights))


# -- config.json ----------------------------------------------------------------------------------------
def edit(config: dict, change: str) -> dict:
    config = json.loads(json.dumps(config))
    config.pop("config_sha256")  # a config written by hand: its own digest (tested in test_run_digests) is gone
    if change == "num_classes without labels":
        config["num_classes"] = 5
    elif change == "more classes than the weights":
        config["num_classes"], config["labels"] = 5, list("abcde")
    elif change == "unknown top-level key":
        config["trust_remote_code"] = True
    elif change == "unknown backbone key":
        config["backbone"]["code"] = "import os"
    elif change == "unknown head option":
        config["head"]["options"]["hidden"] = 10**9
    elif change == "file out of the folder":
        config["files"] = ["../outside.json"]
    elif change == "pickle as a data file":
        config["files"] = ["weights.pth"]
    elif change == "digests not a table":
        config["sha256"] = ["x"]
    elif change == "labels not names":
        config["labels"] = [1, 2, 3]
    return config


@pytest.mark.parametrize(
    "change, fragment",
    [
        ("num_classes without labels", "num_classes 5 does not match its 3 labels"),
        ("more classes than the weights", "does not match"),
        ("unknown top-level key", "unknown field 'trust_remote_code'"),
        ("unknown backbone key", "unknown field 'backbone.code'"),
        ("unknown head option", "has no option(s) ['hidden']"),
        ("file out of the folder", "declared '../outside.json'"),
        ("pickle as a data file", "declared 'weights.pth'"),
        ("digests not a table", "'sha256' must map"),
        ("labels not names", "'labels' must be the list"),
    ],
)
def test_config_json_with_wrong_shapes_or_unknown_keys(model_folder, change, fragment):
    path = model_folder / "config.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()), change)))
    (model_folder / "weights.pth").write_bytes(b"not even a pickle")
    with pytest.raises(ZooError) as info:
        modelzoo.load(model_folder)
    one_line(info.value, fragment)


# -- malicious pickles ------------------------------------------------------------------------------------
EVIL_PLUGIN = """
    from modelzoo.sdk import PretrainedTag, Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [
            Spec(name="zt_evilnet", kind="backbone", outputs=["pooled"], num_features=8, builder="zt_evil_build:build",
                 pretrained=[PretrainedTag(tag, [source], sha256=sha) for tag, source, sha in TAGS]),
        ]
"""
EVIL_BUILDER = """
    from torch import nn

    from modelzoo.sdk import Backbone, FeatureInfo, pretrained_state_dict

    def build(spec, output="pooled", pretrained=None):
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        if pretrained is not None:
            state, _ = pretrained_state_dict(spec, pretrained)
            net.load_state_dict(state)
        return Backbone(net, FeatureInfo("pooled", num_features=8))
"""


def add_evil_plugin(site, tags: list[tuple[str, str, str | None]]) -> None:
    source = EVIL_PLUGIN.replace("TAGS]", f"{tags!r}]")
    site.add_dist("zt-evil", "1.0", {"evil": "zt_evil"}, {"zt_evil": source, "zt_evil_build": EVIL_BUILDER})


def test_a_malicious_pth_offered_as_pretrained_weights_never_runs(fake_site, monkeypatch, tmp_path):
    marker = tmp_path / "pwned-weights"
    evil = tmp_path / "weights" / "evil.pth"
    evil.parent.mkdir()
    evil.write_bytes(evil_bytes(marker))
    fake_safetensors = tmp_path / "weights" / "fake.safetensors"
    fake_safetensors.write_bytes(evil.read_bytes())  # a pickle under a safetensors name
    digest = hashlib.sha256(evil.read_bytes()).hexdigest()
    add_evil_plugin(
        fake_site,
        [
            ("pth", f"file:{evil}", digest),
            ("renamed", f"file:{fake_safetensors}", digest),
            ("wrongsha", f"file:{evil}", "0" * 64),
        ],
    )
    monkeypatch.setenv("MODELZOO_PLUGINS", "evil")
    fake_site.refresh()
    with pytest.raises(ZooError) as info:
        modelzoo.create_backbone("zt_evilnet.pth")
    one_line(info.value, f"cannot read weights {evil} safely (UnpicklingError)")
    with pytest.raises(ZooError) as info:
        modelzoo.create_backbone("zt_evilnet.renamed")
    one_line(info.value, f"weights {fake_safetensors} are not a readable safetensors file")
    with pytest.raises(ZooError) as info:
        modelzoo.create_backbone("zt_evilnet.wrongsha")
    one_line(info.value, "sha256 mismatch for zt_evilnet.wrongsha: expected 0000")
    assert not marker.exists()
    assert not list((Path(os.environ["MODELZOO_CACHE"]) / "weights").glob("zt_evilnet*")), "a refused file was cached"


def test_a_malicious_checkpoint_never_runs(real_catalog, tmp_path, capsys):
    from modelzoo.engine.recipe import validate
    from modelzoo.engine.trainer import CHECKPOINT, finetune

    data = tmp_path / "data"
    write_color_images(data / "train", 3, seed=0, size=16)
    write_color_images(data / "val", 2, seed=1, size=16)
    recipe = {
        "name": "hostile",
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False},
        "data": {"path": str(data), "image_size": 32, "batch_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3},
        "stages": [{"train": "head", "epochs": 1}],
    }
    run = finetune(validate(recipe), out=tmp_path / "run", quiet=True).path
    marker = tmp_path / "pwned-checkpoint"
    (run / CHECKPOINT).write_bytes(evil_bytes(marker))
    (run / "model.safetensors").unlink()  # an unfinished run, so --resume reads the checkpoint
    with pytest.raises(ZooError) as info:
        finetune(resume=run, quiet=True)
    one_line(info.value, "unreadable")
    assert main(["finetune", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert not marker.exists()


PUSH_BY_HAND = """
import hashlib, json, sys
from huggingface_hub import CommitOperationAdd, HfApi

repo, files = sys.argv[1], json.loads(sys.argv[2])
contents = {name: open(path, "rb").read() for name, path in files.items()}
manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\\n" for name, data in sorted(contents.items()))
contents["modelzoo.sha256"] = manifest.encode()
api = HfApi()
api.create_repo(repo, exist_ok=True)
api.create_commit(repo, [CommitOperationAdd(n, d) for n, d in contents.items()], commit_message="by hand")
"""

LOAD = """
import sys
import modelzoo
from modelzoo.errors import ZooError
try:
    modelzoo.load(sys.argv[1])
    print("loaded")
except ZooError as exc:
    print("ZooError:", exc)
"""


def unchecked_config(config: dict) -> dict:
    """A config written by hand: without the digest of its own content (that check: test_run_digests)."""
    return {k: v for k, v in config.items() if k != "config_sha256"}


def test_a_malicious_pickle_inside_a_pulled_repo_never_runs(hub_server, model_folder, fake_site, tmp_path):
    """Repos pushed by hand (not by zoo push) holding pickles: as the weights file itself (under its
    safetensors name), as the weights a config.json declares, and as the pretrained weights of a backbone."""
    marker = tmp_path / "pwned-hub"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(evil_bytes(marker))
    config = json.loads((model_folder / "config.json").read_text())
    unchecked = tmp_path / "unchecked.json"  # as a modelzoo that recorded no digests would have written it
    unchecked.write_text(json.dumps({k: v for k, v in unchecked_config(config).items() if k != "sha256"}))
    declares = tmp_path / "declares.json"
    declares.write_text(json.dumps({**unchecked_config(config), "files": ["evil.pth"]}))
    digest = hashlib.sha256(evil.read_bytes()).hexdigest()
    add_evil_plugin(fake_site, [("hub", "hf-hub:org/evil-weights::evil.pth", digest)])
    env = {**hub_env(hub_server, tmp_path / "home"), "PYTHONPATH": str(fake_site.path)}
    env["MODELZOO_PLUGINS"] = "core,classification,timm,evil"
    repos = {
        "org/evil-renamed": {"config.json": model_folder / "config.json", "model.safetensors": evil},
        "org/evil-unchecked": {"config.json": unchecked, "model.safetensors": evil, "pytorch_model.bin": evil},
        "org/evil-declared": {"config.json": declares, "model.safetensors": model_folder / "model.safetensors"}
        | {"evil.pth": evil},
        "org/evil-weights": {"evil.pth": evil},
    }
    for repo, files in repos.items():
        proc = subprocess.run(
            [sys.executable, "-c", PUSH_BY_HAND, repo, json.dumps({k: str(v) for k, v in files.items()})],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr

    def python(script: str, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert TEST_TOKEN not in proc.stdout + proc.stderr and proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout.strip()

    # zoo pull only ever downloads data; loading refuses what is not safetensors, never unpickling it
    pulled = subprocess.run(
        [sys.executable, "-m", "modelzoo", "pull", "org/evil-unchecked", "--to", tmp_path / "pulled"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert sorted(p.name for p in (tmp_path / "pulled").iterdir()) == [
        ".zoo-pull.json",
        "config.json",
        "model.safetensors",
        "modelzoo.sha256",
    ]
    assert python(LOAD, "hf-hub:org/evil-renamed").startswith("ZooError: ")
    assert "has sha256" in python(LOAD, "hf-hub:org/evil-renamed")
    assert "is not a readable safetensors file" in python(LOAD, "hf-hub:org/evil-unchecked")
    assert "declared 'evil.pth'" in python(LOAD, "hf-hub:org/evil-declared")
    weights = python(
        "import modelzoo\nfrom modelzoo.errors import ZooError\n"
        "try:\n    modelzoo.create_backbone('evil:zt_evilnet.hub')\nexcept ZooError as exc:\n    print(exc)\n"
    )
    assert "cannot read weights" in weights and "safely (UnpicklingError)" in weights
    assert not marker.exists()


# -- paths out of their folder ----------------------------------------------------------------------------
RECIPE_PLUGIN = """
    from modelzoo.sdk import Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [
            Spec(name="zt-linked", kind="recipe", meta={"file": "zoo/linked.toml"}),
            Spec(name="zt-climbing", kind="recipe", meta={"file": "../../../etc/passwd"}),
        ]
"""


def test_a_registered_recipe_name_never_resolves_outside_the_recipes_folder(fake_site, monkeypatch, tmp_path):
    from modelzoo.catalog import builtin
    from modelzoo.engine.recipe import load_recipe

    recipes = tmp_path / "recipes"
    recipes.mkdir()
    outside = tmp_path / "secret.toml"
    outside.write_text('token = "do not read me"\n')
    (recipes / "linked.toml").symlink_to(outside)
    monkeypatch.setattr(builtin, "recipe_files", lambda: sorted(recipes.glob("*.toml")))
    fake_site.plugin("recipes", RECIPE_PLUGIN)
    monkeypatch.setenv("MODELZOO_PLUGINS", "recipes")
    catalog_mod.reset()
    with pytest.raises(RecipeError) as info:
        load_recipe("zt-linked")
    one_line(info.value, "links outside its recipes folder")
    assert "do not read me" not in str(info.value)
    with pytest.raises(RecipeError) as info:
        load_recipe("zt-climbing")
    one_line(info.value, "names no readable file")


def test_the_marker_pickle_does_run_when_unpickled():
    """The marker would appear if any of the files above were unpickled: the attack itself works."""
    marker = Path(os.environ["MODELZOO_CACHE"]) / "pwned-control"
    pickle.loads(pickle.dumps(Evil(marker)))
    assert marker.exists()


@pytest.mark.attack("files")
def test_a_json_file_nested_200000_deep_or_too_big_is_one_line(tmp_path):
    from modelzoo.util.files import read_json_object

    deep = tmp_path / "config.json"
    deep.write_text('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(ZooError, match="nested too deeply"):
        read_json_object(deep, "config")
    big = tmp_path / "summary.json"
    big.write_text('{"a": "' + "x" * 2048 + '"}')
    with pytest.raises(ZooError, match="over 0 MiB"):
        read_json_object(big, "summary", max_bytes=1024)
