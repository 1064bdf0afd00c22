"""Hugging Face transformers encoders as modelzoo text backbones (imported only when a model is built).

Why it looks like this:

* **The real transformers code builds the network** (``AutoModel.from_config``), from a ``config.json``
  that is plain data; nothing is ever loaded with ``trust_remote_code``, so no code from a model repo
  runs. Weights are fetched and sha256-checked by the core (``modelzoo.sdk.fetch_file``) and read
  from safetensors (or a pickle-free ``.bin``), then loaded into that network. The config and
  tokenizer files are the weights' siblings (same folder, package or Hub repo), found through the
  same sources (``modelzoo.sdk.locate_source``).
* **The tokenizer is data too.** ``tokenizer.json`` is read by the Rust ``tokenizers`` library (a
  BERT WordPiece tokenizer is built from ``vocab.txt`` where a repo has no ``tokenizer.json``); it
  travels with every fine-tuned model: ``TextEncoder.save_files`` writes ``tokenizer.json`` +
  ``tokenizer_config.json`` and returns their names, which the core records in ``config.json`` and
  carries through pushes and pulls, so a model loads offline with exactly the tokenizer it was trained with.
* **A saved model needs nothing but its folder.** The encoder's own config is recorded in the
  modelzoo ``config.json`` (``backbone.options.encoder_config``); rebuilding reads it instead of the
  pretrained source, so ``modelzoo.load`` works without the weights package or the network.
* **Layer groups are transformer layers** (``embeddings``, ``layer0`` … ``layerN-1``), so a recipe's
  ``train = "last:2"`` unfreezes the top two layers and layer-wise LR decay works per layer.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.sdk import (
    FeatureInfo,
    PretrainedTag,
    SourceUnavailable,
    Spec,
    ZooError,
    atomic_write_text,
    fetch_file,
    load_state_dict,
    locate_source,
    option_rule,
    read_json_object,
)

from .contracts import TextBackbone

POOLINGS = ("mean", "cls")
#: files a tokenizer is saved as, next to config.json + model.safetensors (the Hub's usual names)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
#: the files of a pretrained source needed besides the weights (config.json is required)
COMPANIONS = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")
DEFAULT_MAX_LENGTH = 128


# -- pooling (shared with the heads) ----------------------------------------------------------
def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """``(B, T, C)`` + ``(B, T)`` mask -> ``(B, C)``: the first token (``cls``) or the masked mean."""
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    raise ZooError(f"unknown pooling {how!r}; use one of {', '.join(POOLINGS)}")


# -- tokenizer --------------------------------------------------------------------------------
class TextTokenizer:
    """A fast (Rust) tokenizer plus its ``tokenizer_config.json`` data; encodes with truncation."""

    def __init__(self, tokenizer: Any, config: dict[str, Any] | None = None) -> None:
        self.tokenizer = tokenizer
        self.config = dict(config or {})
        self.tokenizer.no_padding()  # padding is per batch (dynamic), done by the collate function
        self.tokenizer.no_truncation()
        pad = self.config.get("pad_token", "[PAD]")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        pad_id = self.tokenizer.token_to_id(pad) if isinstance(pad, str) else None
        self.pad_id = int(pad_id) if pad_id is not None else 0

    @classmethod
    def from_dir(cls, folder: Path) -> TextTokenizer:
        """``tokenizer.json`` if present, else a BERT WordPiece tokenizer from ``vocab.txt``."""
        from tokenizers import Tokenizer

        config_path = folder / "tokenizer_config.json"
        config = read_json_object(config_path) if config_path.is_file() else {}
        if (folder / "tokenizer.json").is_file():
            try:
                return cls(Tokenizer.from_file(str(folder / "tokenizer.json")), config)
            except Exception as exc:
                raise ZooError(f"cannot read {folder / 'tokenizer.json'} ({str(exc).splitlines()[0][:160]})") from None
        if (folder / "vocab.txt").is_file():
            return cls(_wordpiece(folder / "vocab.txt", bool(config.get("do_lower_case", True))), config)
        raise ZooError(f"no tokenizer in {folder} (needs tokenizer.json or vocab.txt)")

    def encode(self, texts: list[str], max_length: int) -> tuple[list[list[int]], int]:
        """Token ids per text (special tokens included, at most ``max_length``) and how many were cut."""
        self.tokenizer.enable_truncation(max_length=max_length)
        try:
            encodings = self.tokenizer.encode_batch(list(texts))
        finally:
            self.tokenizer.no_truncation()
        return [e.ids for e in encodings], sum(1 for e in encodings if e.overflowing)

    def save(self, folder: Path) -> list[str]:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` (what transformers' AutoTokenizer reads
        too), each atomically, and return their names."""
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "tokenizer.json", self.tokenizer.to_str())
        config = {k: v for k, v in self.config.items() if k not in ("auto_map", "name_or_path")}
        config.setdefault("tokenizer_class", "PreTrainedTokenizerFast")
        atomic_write_text(folder / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")
        return list(TOKENIZER_FILES)


def _wordpiece(vocab: Path, lowercase: bool):
    """The BERT uncased/cased WordPiece pipeline, as ``BertTokenizerFast`` builds it."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.WordPiece.from_file(str(vocab), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ZooError(f"{vocab} has no [CLS]/[SEP] tokens; it is not a BERT WordPiece vocabulary")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tok


# -- the backbone -----------------------------------------------------------------------------
class TextEncoder(TextBackbone):
    """A transformers encoder: ``{"input_ids", "attention_mask"}`` -> ``(hidden (B, T, C), mask)``
    (``sequence``) or the pooled ``(B, C)`` (``pooled``), plus the tokenizer that feeds it."""

    def __init__(
        self,
        model: nn.Module,
        info: FeatureInfo,
        encoder_config: dict[str, Any],
        pooling: str,
        tokenizer: TextTokenizer | None,
        pretrained_cfg: dict[str, Any],
        provenance: dict[str, Any] | None,
    ) -> None:
        super().__init__(model, info, pretrained_cfg, provenance)
        self.encoder_config = encoder_config
        self.pooling = pooling
        self.tokenizer = tokenizer

    def forward(self, batch: dict[str, torch.Tensor]):
        mask = batch["attention_mask"]
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
        if self.info.output_kind == "sequence":
            return hidden, mask
        return pool(hidden, mask, self.pooling)

    # -- Backbone: what rebuilds this encoder from a model folder --------------------------------------
    @property
    def config_options(self) -> dict[str, Any]:
        """The encoder's own config and pooling: they rebuild the architecture without the pretrained source."""
        return {"encoder_config": self.encoder_config, "pooling": self.pooling}

    def save_files(self, folder: Path) -> list[str]:
        """Write the tokenizer beside ``config.json`` / ``model.safetensors``; return the file names."""
        if self.tokenizer is None:
            raise ZooError(
                "this text encoder has no tokenizer to save; build it from a pretrained tag or a model folder"
            )
        return self.tokenizer.save(Path(folder))

    def load_files(self, folder: Path) -> None:
        """Read the tokenizer saved with a model (a run folder or a pulled Hub repo)."""
        folder = Path(folder)
        if not (folder / "tokenizer.json").is_file():
            raise ZooError(f"{folder} has no tokenizer.json; a text model folder needs its tokenizer files")
        self.tokenizer = TextTokenizer.from_dir(folder)

    # -- TextBackbone ---------------------------------------------------------------------------------
    @property
    def max_positions(self) -> int:
        return int(self.encoder_config.get("max_position_embeddings") or 512)

    def encode_texts(self, texts: list[str], max_length: int) -> tuple[list[list[int]], int]:
        if self.tokenizer is None:
            raise ZooError("this text encoder has no tokenizer; load the model folder with modelzoo.load(PATH)")
        return self.tokenizer.encode(texts, min(max_length, self.max_positions))

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_id if self.tokenizer is not None else 0

    def layer_groups(self) -> list[tuple[str, list[str]]]:
        """``embeddings``, then one group per transformer layer; anything after the layers (a final
        norm) joins the top layer, so ``last:1`` trains everything above ``layerN-2``."""
        layers = _layer_list(self.model)
        groups: dict[str, list[str]] = {"embeddings": []}
        seen_layer = False
        for name, _ in self.model.named_parameters():
            key = "embeddings"
            if layers is not None and name.startswith(layers[0] + "."):
                index = name[len(layers[0]) + 1 :].split(".", 1)[0]
                key, seen_layer = f"layer{index}", True
            elif seen_layer and layers is not None:
                key = f"layer{layers[1] - 1}"
            groups.setdefault(key, []).append(f"model.{name}")
        return [(k, v) for k, v in groups.items() if v]


def _layer_list(model: nn.Module) -> tuple[str, int] | None:
    """``(dotted name, length)`` of the encoder's stack of transformer layers (the longest ModuleList)."""
    best = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and (best is None or len(module) > best[1]):
            best = (name, len(module))
    return best


# -- sources ----------------------------------------------------------------------------------
def sibling_source(source: str, name: str) -> str | None:
    """The source of file ``name`` beside a weights source (same folder, package or Hub repo and
    revision); None for a plain URL, which names one file and nothing beside it."""
    if source.startswith("hf-hub:"):
        return f"{source.partition('::')[0]}::{name}"
    if source.startswith(("pkg:", "file:")):
        scheme, _, path = source.partition(":")
        folder, sep, _ = path.rpartition("/")
        return f"{scheme}:{folder}{sep}{name}"
    return None


def companion_dir(source: str) -> Path:
    """The folder holding the encoder's ``config.json`` (and tokenizer files) for one weights source.

    Only ``config.json`` is required; a Hub repo's tokenizer files are fetched one by one into the same
    snapshot folder (a repo may have ``tokenizer.json``, ``vocab.txt`` or both). The weights themselves
    are neither read nor hashed here, so a random-init build needs only these small files.
    """
    config_source = sibling_source(source, "config.json")
    if config_source is None:
        raise SourceUnavailable("a plain URL names one file; no config.json beside it")
    folder = locate_source(config_source).parent
    if source.startswith("hf-hub:"):
        for name in COMPANIONS:
            if not (folder / name).is_file():
                with contextlib.suppress(SourceUnavailable):  # optional: from_dir says what is missing
                    locate_source(f"{source.partition('::')[0]}::{name}")
    return folder


def find_companions(tag: PretrainedTag, label: str, source: str | None = None) -> Path:
    """The companion folder of ``source`` (the weights' own source), else of the first of the tag's
    sources that has one; one line listing why each failed."""
    reasons = []
    for candidate in [source] if source else tag.sources:
        try:
            return companion_dir(candidate)
        except SourceUnavailable as exc:
            reasons.append(f"{candidate}: {exc}")
    raise ZooError(f"'{label}': cannot find the encoder's config.json: {'; '.join(reasons)}")


def hf_config(encoder_config: dict[str, Any]):
    """A transformers config object from plain data (known model types only: no remote code)."""
    from transformers import AutoConfig

    data = {k: v for k, v in encoder_config.items() if k not in ("auto_map", "architectures", "_name_or_path")}
    model_type = data.pop("model_type", None)
    if not model_type:
        raise ZooError("the encoder config has no model_type; it is not a transformers config.json")
    try:
        return AutoConfig.for_model(model_type, **data)
    except (ValueError, KeyError) as exc:
        raise ZooError(
            f"transformers does not know model_type {model_type!r} ({str(exc).splitlines()[0][:120]});"
            " upgrade transformers (remote code is never run)"
        ) from None


def _instantiate(config) -> nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:  # encoders without a pooler (DistilBERT) do not take the argument
        return AutoModel.from_config(config)


def _strip_prefix(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Checkpoints of task models (``BertForSequenceClassification``) prefix the encoder's keys."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    own = set(model.state_dict())
    if prefix and not (own & set(state)) and any(k.startswith(prefix + ".") for k in state):
        state = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
    return state


#: encoder config fields an option never sets: they name code or files to load (hf_config drops them too)
_LOADER_FIELDS = frozenset({"auto_map", "architectures", "name_or_path", "trust_remote_code", "model_type"})


def option_refused(name: str) -> str | None:
    """Why ``name`` is no option (None: a field of the encoder's config such as hidden_dropout_prob, checked
    against that config by :func:`build`): options also come from pulled config.json files."""
    if name in _LOADER_FIELDS or name.endswith(("_path", "_file", "_url", "_dir")):
        return "it names code or files to load, not an encoder setting"
    return None


@option_rule(option_refused)
def build(
    spec: Spec,
    output: str = "sequence",
    pretrained: PretrainedTag | None = None,
    pooling: str = "mean",
    max_length: int = DEFAULT_MAX_LENGTH,
    encoder_config: dict[str, Any] | None = None,
    **options: Any,
) -> TextEncoder:
    """Build a registered text encoder, with the tag's verified weights (or random init).

    ``encoder_config`` rebuilds a saved model's architecture from its own ``config.json`` (no source
    needed); the tokenizer is then read from the model folder by ``load_files``. Other ``options``
    override fields of the encoder's config (e.g. ``hidden_dropout_prob``).
    """
    if output not in ("sequence", "pooled"):
        raise ZooError(f"text encoder {spec.name!r} emits sequence or pooled, not {output!r}")
    if pooling not in POOLINGS:
        raise ZooError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
    provenance, tokenizer, state = None, None, None
    if encoder_config is not None:
        if pretrained is not None:
            raise ZooError("encoder_config rebuilds a saved model; it cannot be combined with pretrained weights")
        encoder_config = dict(encoder_config)
    else:
        label = f"{spec.name}.{pretrained.tag}" if pretrained else spec.name
        tag = pretrained or (spec.tag(None) if spec.pretrained else None)
        if tag is None:
            raise ZooError(f"text encoder {spec.name!r} registers no source for its config.json and tokenizer")
        if pretrained is not None:
            path, source, digest = fetch_file(pretrained, label)
            folder = find_companions(pretrained, label, source)
            state = load_state_dict(path)
            provenance = {"tag": label, "source": source, "sha256": digest, "license": pretrained.license}
        else:
            folder = find_companions(tag, label)
        encoder_config = read_json_object(folder / "config.json")
        tokenizer = TextTokenizer.from_dir(folder)
    unknown = [k for k in options if k not in encoder_config]
    if unknown:
        raise ZooError(
            f"unknown option(s) {unknown} for text encoder {spec.name!r}; options are pooling, max_length or"
            " fields of its config.json"
        )
    encoder_config.update(options)
    config = hf_config(encoder_config)
    model = _instantiate(config)
    if state is not None:
        state = _strip_prefix(state, model)
        missing, _unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing:
            raise ZooError(
                f"{provenance['tag']}: the weights lack {len(missing)} tensors of the architecture (e.g. {missing[0]});"
                " wrong file for this tag"
            )
    width = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0))
    info = FeatureInfo(output, num_features=width)
    max_positions = int(encoder_config.get("max_position_embeddings") or 512)
    pretrained_cfg = {
        "max_length": min(int(max_length), max_positions),
        "pooling": pooling,
    }
    return TextEncoder(model, info, encoder_config, pooling, tokenizer, pretrained_cfg, provenance)
