"""transformers-format text encoders on the Hub as backbones (``model.backbone = "hf-hub:ORG/NAME"``).

What ``save_pretrained`` writes: ``config.json`` (with ``model_type``), the tokenizer files and
``model.safetensors``. The architecture is built by :mod:`zoo_text.encoders` from that config as data
(a ``model_type`` this transformers knows; no remote code), the tokenizer from ``tokenizer.json`` or
``vocab.txt``, the weights from the repo at the resolved commit, sha256-checked by the core.
"""

from __future__ import annotations

import re
from typing import Any

from modelzoo.sdk import PretrainedTag, Spec, ZooError

from .plugin import BUILDER, TASK

WEIGHTS = "model.safetensors"
#: the tokenizer files an encoder repo may carry (one of the first two is needed)
TOKENIZERS = ("tokenizer.json", "vocab.txt")
#: files a sentence-transformers repo has: its embeddings are mean-pooled
SENTENCE_MARKERS = ("modules.json", "sentence_bert_config.json")


def hub_spec(repo: str, sha: str, config: dict[str, Any], files: dict[str, Any]) -> Spec | None:
    """The backbone spec of a transformers encoder repo, or None when ``config`` is not transformers'."""
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or "architecture" in config:
        return None
    where = f"hf-hub:{repo}@{sha[:12]}"
    from .encoders import hf_config

    try:
        hf_config(dict(config))  # a model_type this transformers knows, from data only
    except ZooError as exc:
        raise ZooError(f"{where}: {exc}") from None
    if config.get("is_decoder") or config.get("is_encoder_decoder"):
        raise ZooError(f"{where}: model_type {model_type!r} is not an encoder; text backbones are encoders")
    if not any(name in files for name in TOKENIZERS):
        raise ZooError(f"{where}: no tokenizer files ({' or '.join(TOKENIZERS)}); save the tokenizer with the model")
    width = config.get("hidden_size") or config.get("dim")
    pooling = "mean" if any(m in files for m in SENTENCE_MARKERS) else "cls"
    tags = []
    if WEIGHTS in files:
        tags.append(
            PretrainedTag(
                tag="hub",
                sources=[f"hf-hub:{repo}@{sha}::{WEIGHTS}"],
                sha256=files.get(WEIGHTS),
                description=f"the weights, config and tokenizer of hf-hub:{repo} at commit {sha[:12]}",
            )
        )
    return Spec(
        name=re.sub(r"[^A-Za-z0-9_\-]", "-", repo.replace("/", "--")),
        kind="backbone",
        modality="text",
        tasks=[TASK],
        outputs=["sequence", "pooled"],
        num_features=width if isinstance(width, int) and not isinstance(width, bool) else None,
        builder=BUILDER,
        pretrained=tags,
        default_tag="hub" if tags else None,
        options={"pooling": pooling, "max_length": 128},
        description=f"transformers {model_type} encoder from hf-hub:{repo}",
        meta={"library": "transformers", "model_type": model_type, "pooling": pooling},
    )
