"""Any Hub checkpoint in: ``model.backbone = "hf-hub:ORG/NAME[@REV]"`` for repos written by timm and transformers.

The repos are written by the real libraries (timm's ``push_to_hf_hub`` / ``save_for_hf`` on a tiny timm
model, transformers' ``save_pretrained`` on a tiny BERT with its tokenizer) and uploaded with
``huggingface_hub`` to the local Hub server; then modelzoo fine-tunes them, pinned to the commit, and uses
them again with ``HF_HUB_OFFLINE=1``. Hub work runs in subprocesses (``huggingface_hub`` reads its
environment on import), as in ``test_hub.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import tomli_w

from modelzoo.testing import hub_env, write_color_images, zoo_subprocess

pytestmark = pytest.mark.usefixtures("one_thread")

PUBLISH = r"""
import json, pathlib, sys
import timm, torch
from huggingface_hub import HfApi
from timm.models import push_to_hf_hub, save_for_hf
from transformers import BertConfig, BertModel, BertTokenizerFast

api, root = HfApi(), pathlib.Path(sys.argv[1])
torch.manual_seed(0)
net = timm.create_model("test_convnext", num_classes=3)
push_to_hf_hub(net, "tester/convnext-hub", safe_serialization=True)  # timm's own model card: library_name timm
api.create_tag("tester/convnext-hub", tag="v1")

def upload(repo, folder):
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(repo_id=repo, folder_path=str(folder))

save_for_hf(net, str(root / "pickle"), safe_serialization=False)  # pytorch_model.bin only
upload("tester/pickle-only", root / "pickle")
save_for_hf(net, str(root / "unknown"), safe_serialization=True)
config = json.loads((root / "unknown" / "config.json").read_text())
config["architecture"] = "no_such_net_v9"
(root / "unknown" / "config.json").write_text(json.dumps(config))
upload("tester/unknown-arch", root / "unknown")

words = ["good", "great", "fun", "bad", "awful", "dull", "the", "film", "was", "a", "plot"]
(root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
tok = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
bert = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=64), add_pooling_layer=False)
bert.save_pretrained(root / "bert")
tok.save_pretrained(root / "bert")
(root / "bert" / "README.md").write_text("---\nlibrary_name: transformers\n---\n# a tiny encoder\n")
upload("tester/tiny-bert", root / "bert")
print(json.dumps({r: api.model_info(r).sha for r in ("tester/convnext-hub", "tester/tiny-bert")}))
"""


def run_python(code: str, env: dict, *args: str, cwd: Path | None = None):
    import subprocess

    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def hub(hub_server, tmp_path_factory):
    """The local Hub with the repos published, and an environment (own HF cache, modelzoo cache) to use them."""
    root = tmp_path_factory.mktemp("hub-checkpoints")
    (root / "src").mkdir()
    env = hub_env(hub_server, root / "home", MODELZOO_CACHE=str(root / "zoo-cache"), OMP_NUM_THREADS="1")
    shas = json.loads(ok(run_python(PUBLISH, env, str(root / "src"))).strip().splitlines()[-1])
    return {"env": env, "shas": shas, "root": root, "offline": {**env, "HF_HUB_OFFLINE": "1"}}


@pytest.fixture(scope="module")
def runs(hub):
    """A timm repo (at tag v1) and a transformers repo (no revision: main), each fine-tuned a few steps."""
    root, env = hub["root"], hub["env"]
    write_color_images(root / "images" / "train", 4, seed=0)
    write_color_images(root / "images" / "val", 2, seed=1)
    stages = [
        {"name": "head", "train": "head", "epochs": 1, "lr": 0.01},
        {"name": "all", "train": "all", "epochs": 1, "lr": 0.003},
    ]
    image = {
        "name": "hub-timm",
        "task": "image-classification",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "hf-hub:tester/convnext-hub@v1", "head": "linear"},
        "data": {"path": str(root / "images"), "image_size": 32, "batch_size": 8},
        "stages": stages,
    }
    rows = [("the film was good", "pos"), ("a dull plot", "neg"), ("great fun", "pos"), ("awful film", "neg")]
    for name, n in (("train", 3), ("val", 1)):
        lines = ["text,label"] + [f"{t},{y}" for t, y in rows * n]
        (root / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = {
        "name": "hub-text",
        "task": "text",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "hf-hub:tester/tiny-bert", "head": "mean-pool"},
        "data": {"train_file": str(root / "train.csv"), "val_file": str(root / "val.csv"), "batch_size": 4},
        "stages": stages,
    }
    out = {}
    for name, recipe in (("image", image), ("text", text)):
        path = root / f"{name}.toml"
        path.write_text(tomli_w.dumps(recipe))
        ok(zoo_subprocess("finetune", str(path), "--out", str(root / f"run-{name}"), "--quiet", env=env))
        out[name] = root / f"run-{name}"
    return out


def test_timm_and_transformers_repos_fine_tune_pinned_to_their_commit(hub, runs):
    from modelzoo.hub.card import base_model_of

    image = json.loads((runs["image"] / "config.json").read_text())
    sha = hub["shas"]["tester/convnext-hub"]
    assert image["backbone"]["name"] == f"hf-hub:tester/convnext-hub@{sha}"  # @v1 resolved and recorded as a sha
    assert image["backbone"]["pretrained"]["source"] == f"hf-hub:tester/convnext-hub@{sha}::model.safetensors"
    # preprocessing from the repo's pretrained_cfg (timm's test_convnext: mean/std 0.5, bicubic, crop 0.95)
    pre = image["preprocess"]
    assert pre["mean"] == [0.5] * 3 and pre["std"] == [0.5] * 3
    assert pre["interpolation"] == "bicubic" and pre["crop_pct"] == 0.95
    assert base_model_of(image["backbone"]["pretrained"])[0] == "tester/convnext-hub"

    text = json.loads((runs["text"] / "config.json").read_text())
    sha = hub["shas"]["tester/tiny-bert"]
    assert text["backbone"]["name"] == f"hf-hub:tester/tiny-bert@{sha}"
    assert text["files"] == ["tokenizer.json", "tokenizer_config.json"]  # the repo's tokenizer travels with the run
    assert base_model_of(text["backbone"]["pretrained"])[0] == "tester/tiny-bert"


OFFLINE = r"""
import json, sys
import torch
from safetensors.torch import load_file
import modelzoo
from modelzoo.errors import ZooError

out = {}
image, text = (modelzoo.load(p) for p in sys.argv[1:3])
out["image"] = image.predict([sys.argv[3]])[0][0][0]  # top-1 (label, probability)
out["text"] = text.predict(["the film was good"])[0][0][0]
# no revision: the cached main (it was fetched as @v1, which is main)
bb = modelzoo.create_backbone("hf-hub:tester/convnext-hub")
out["source"] = bb.provenance["source"]
repo, own = load_file(sys.argv[4]), bb.model.state_dict()
out["same_weights"] = all(torch.equal(own[k], v) for k, v in repo.items() if k in own) and len(own) > 10
out["random"] = modelzoo.create_backbone("hf-hub:tester/convnext-hub", pretrained=False).provenance
try:
    modelzoo.create_backbone("hf-hub:tester/convnext-hub", pretrained="in1k")
except ZooError as exc:
    out["tag"] = str(exc)
print(json.dumps(out))
"""


def test_hub_backbones_are_used_again_offline(hub, runs):
    sha = hub["shas"]["tester/convnext-hub"]
    cache = hub["root"] / "home" / "hub" / "models--tester--convnext-hub" / "snapshots" / sha
    image = next((hub["root"] / "images" / "val" / "red").iterdir())
    args = (str(runs["image"]), str(runs["text"]), str(image), str(cache / "model.safetensors"))
    out = json.loads(ok(run_python(OFFLINE, hub["offline"], *args)).strip().splitlines()[-1])
    assert out["image"] == "red" and out["text"] in ("pos", "neg")
    assert out["source"] == f"hf-hub:tester/convnext-hub@{sha}::model.safetensors"
    assert out["same_weights"] is True and out["random"] is None
    assert "takes its weights from the repo" in out["tag"] and "not a tag name ('in1k')" in out["tag"]
    proc = zoo_subprocess("info", "hf-hub:tester/convnext-hub@nope", env=hub["offline"])
    one_line_error(proc, "not in the local HF cache", "HF_HUB_OFFLINE=1")


def test_repos_modelzoo_cannot_build_are_one_line_errors(hub):
    env = hub["env"]
    one_line_error(zoo_subprocess("info", "hf-hub:tester/pickle-only", env=env), "only as pickles", "pytorch_model.bin")
    one_line_error(zoo_subprocess("info", "hf-hub:tester/unknown-arch", env=env), "'no_such_net_v9'", "upgrade timm")
    no_timm = {**env, "MODELZOO_PLUGINS": "core,classification"}
    one_line_error(
        zoo_subprocess("info", "hf-hub:tester/convnext-hub", env=no_timm),
        "no installed plugin can build",
        "zoo plugins install zoo-timm",
    )


def test_list_hub_shows_an_orgs_backbones(hub):
    found = json.loads(ok(zoo_subprocess("list", "--hub", "tester", "--json", env=hub["env"])))
    kinds = {m["id"]: (m["kind"], m.get("library")) for m in found}
    assert kinds == {"tester/convnext-hub": ("backbone", "timm"), "tester/tiny-bert": ("backbone", "transformers")}
    table = ok(zoo_subprocess("list", "--hub", "tester", env=hub["env"]))
    assert "hf-hub:tester/convnext-hub" in table and "BACKBONE" in table.splitlines()[0]


def test_list_available_shows_weights_usable_now(hub):
    offline = hub["offline"]
    found = json.loads(ok(zoo_subprocess("list", "--available", "--kind", "backbone", "--json", env=offline)))
    assert found and all(set(e["available"].values()) == {"local"} for e in found)
    every = ok(zoo_subprocess("list", "--pretrained", "--kind", "backbone", "--names", env=offline)).split()
    assert {e["name"] for e in found} < set(every)  # offline: only what is installed or cached, not every tag


def test_zoo_lock_pins_a_hub_checkpoint_and_its_files(hub, tmp_path):
    import hashlib
    import tomllib

    sha = hub["shas"]["tester/convnext-hub"]
    ok(zoo_subprocess("lock", "tester/convnext-hub@v1", env=hub["env"], cwd=tmp_path))
    (entry,) = tomllib.loads((tmp_path / "zoo.lock").read_text())["model"]
    snapshot = hub["root"] / "home" / "hub" / "models--tester--convnext-hub" / "snapshots" / sha
    assert entry["revision"] == "v1" and entry["sha"] == sha
    assert entry["files"] == {
        name: hashlib.sha256((snapshot / name).read_bytes()).hexdigest()
        for name in ("config.json", "model.safetensors")
    }
    assert sha in ok(zoo_subprocess("pull", "--locked", env=hub["offline"], cwd=tmp_path))
    # the lock's sha256 is checked when the weights are used: a file that differs from it is refused
    lock = (tmp_path / "zoo.lock").read_text().replace(entry["files"]["model.safetensors"], "0" * 64)
    (tmp_path / "zoo.lock").write_text(lock)
    code = (
        "import modelzoo\n"
        "try:\n    modelzoo.create_backbone('hf-hub:tester/convnext-hub')\n"
        "except modelzoo.ZooError as exc:\n    print(exc)\n"
    )
    out = ok(run_python(code, hub["offline"], cwd=tmp_path))
    assert "sha256 mismatch" in out and "0000000000" in out


PUSH_AND_PULL = r"""
import json, sys
from modelzoo.hub import pull, push
push(sys.argv[1], "tester/my-convnext")
print(json.dumps({"sha": pull("tester/my-convnext").sha}))
"""
LOAD_OFFLINE = r"""
import sys, modelzoo
model = modelzoo.load("hf-hub:tester/my-convnext")
print(model.config["backbone"]["name"], model.predict([sys.argv[1]])[0][0][0])
"""


def test_a_model_fine_tuned_from_a_checkpoint_is_pushed_pulled_and_loaded_offline(hub, runs, tmp_path):
    """Pulling the fine-tuned model also fetches its base checkpoint's config.json (it rebuilds from it), so a
    fresh machine that pulled once while online loads it offline."""
    from huggingface_hub import ModelCard

    fresh = {**hub["env"], "HF_HOME": str(tmp_path / "fresh-home"), "MODELZOO_CACHE": str(tmp_path / "zoo")}
    ok(run_python(PUSH_AND_PULL, fresh, str(runs["image"])))
    sha = hub["shas"]["tester/convnext-hub"]
    card = next((tmp_path / "fresh-home" / "hub" / "models--tester--my-convnext" / "snapshots").iterdir())
    assert ModelCard.load(card / "README.md").data.base_model == "tester/convnext-hub"
    image = next((hub["root"] / "images" / "val" / "green").iterdir())
    out = ok(run_python(LOAD_OFFLINE, {**fresh, "HF_HUB_OFFLINE": "1"}, str(image))).split()
    assert out == [f"hf-hub:tester/convnext-hub@{sha}", "green"]
