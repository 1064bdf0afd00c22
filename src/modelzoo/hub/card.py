"""The model card (``README.md``) for a pushed run: Hub metadata in YAML, the story in Markdown.

Everything on the card is derived from the run folder, never from defaults, so the card cannot claim
what the run does not show: the license is the pretrained weights' license, ``base_model`` is named
only when the backbone weights demonstrably came from a Hub repo, ``model-index`` holds the metrics
the engine measured. The text is a pure function of the run's files (no dates, no versions), which
is what makes re-pushing an unchanged run a no-op. The model's task (a plugin) contributes what only
it knows: the Hub ``pipeline_tag``, metric names, an example input and per-class results.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def task_card(config: dict[str, Any], summary: dict[str, Any]) -> tuple[str | None, Any]:
    """``(pipeline_tag, CardInfo)`` from the model's task plugin; a generic card if it is not installed."""
    from ..errors import ZooError
    from ..model.task import CardInfo, create_task

    try:
        task = create_task(str(config.get("task", "")))
        return task.pipeline_tag, task.card(config, summary)
    except ZooError:
        return None, CardInfo()


def hub_repo_of(source: str | None) -> str | None:
    """``hf-hub:org/name[@rev][::file]`` → ``org/name``; anything else → None."""
    if not source or not source.startswith("hf-hub:"):
        return None
    repo = source[len("hf-hub:") :].split("::", 1)[0].split("@", 1)[0]
    return repo if repo.count("/") == 1 else None


def base_model_of(pretrained: dict[str, Any] | None) -> tuple[str | None, str]:
    """``(base_model repo or None, one sentence saying where the backbone weights came from)``.

    A non-Hub source (``pkg:``, ``file:``, URL) still names a Hub repo when the same pretrained tag
    also lists an ``hf-hub:`` source *and* pins a sha256: then every source is the same file.
    """
    if not pretrained:
        return None, "The backbone was trained from scratch (no pretrained weights)."
    source, tag, digest = pretrained.get("source"), pretrained.get("tag"), pretrained.get("sha256")
    repo = hub_repo_of(source)
    where = f"`{tag}` from `{source}`" + (f" (sha256 `{digest[:16]}…`)" if digest else "")
    if repo:
        return repo, f"Backbone weights: {where}."
    for alt in _tag_sources(tag):
        alt_repo = hub_repo_of(alt)
        if alt_repo:
            return alt_repo, f"Backbone weights: {where}; the same sha256-pinned file is published as `{alt}`."
    return None, f"Backbone weights: {where}. That source is not a Hub repo, so no `base_model` is declared."


def _tag_sources(tag: str | None) -> list[str]:
    """Sources of a sha256-pinned pretrained tag in the local catalog ([] if unknown or unpinned)."""
    if not tag or "." not in tag:
        return []
    try:
        from ..catalog.lookup import catalog

        arch, _, tag_name = tag.rpartition(".")
        spec, _ = catalog().resolve(arch, kind="backbone")
        pinned = spec.tag(tag_name)
        return list(pinned.sources) if pinned.sha256 else []
    except Exception:  # catalog problems must never block a push; the card just names less
        return []


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def recipe_summary(recipe_text: str | None) -> list[str]:
    """Markdown bullet lines summarising a resolved recipe (whatever its exact schema)."""
    if not recipe_text:
        return ["- (no recipe.toml in the run folder)"]
    try:
        data = tomllib.loads(recipe_text)
    except tomllib.TOMLDecodeError:
        return ["- recipe.toml (not parseable as TOML; see the file)"]
    lines = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
    if scalars:
        lines.append("- " + ", ".join(f"{k}: `{_fmt(v)}`" for k, v in scalars.items()))
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"- **{key}**: " + ", ".join(f"{k}=`{_fmt(v)}`" for k, v in value.items()))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"- **{key}**:")
            for i, item in enumerate(value, 1):
                lines.append(f"  {i}. " + ", ".join(f"{k}=`{_fmt(v)}`" for k, v in item.items()))
        elif isinstance(value, list):
            lines.append(f"- **{key}**: `{_fmt(value)}`")
    return lines


def metrics_table(rows: list[dict[str, Any]], limit: int = 20) -> list[str]:
    """The per-epoch metrics (last ``limit`` rows) as a Markdown table."""
    if not rows:
        return []
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and not isinstance(row[k], (dict, list))]
    shown = rows[-limit:]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in shown]
    if len(rows) > limit:
        out.append(f"\n(last {limit} of {len(rows)} epochs; all in `metrics.jsonl`)")
    return out


def metric_rows(path: Path | None) -> tuple[list[dict[str, Any]], int]:
    """The JSON-object lines of a run's ``metrics.jsonl`` and how many lines were skipped: a run killed
    mid-write leaves a torn last line, a hand edit anything; neither may stop a push."""
    if path is None or not path.is_file():
        return [], 0
    rows, skipped = [], 0
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError, over-long integers, absurd nesting
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            skipped += 1
    return rows, skipped


def _read(path: Path | None) -> str | None:
    return path.read_text(encoding="utf-8") if path is not None and path.is_file() else None


@dataclass
class _Facts:
    """What the card's sections share, read once from the run's config and summary."""

    repo_id: str
    config: dict[str, Any]
    summary: dict[str, Any]
    files: dict[str, Path]
    info: Any
    metric_names: dict[str, str]
    task: str
    backbone: dict[str, Any]
    head: dict[str, Any]
    weights_license: str | None
    card_license: str | None
    dataset: dict[str, Any]
    metrics: dict[str, float]
    split: str
    revision: str = "main"

    @property
    def dataset_name(self) -> str | None:
        return self.dataset.get("name")

    @property
    def hub_dataset(self) -> str | None:
        return self.dataset.get("hub_id")

    @property
    def val_is(self) -> str:
        return str(self.dataset.get("val_is") or "")


def build_card(
    repo_id: str,
    config: dict[str, Any],
    files: dict[str, Path],
    summary: dict[str, Any] | None = None,
    license: str | None = None,
    revision: str = "main",
    elsewhere: list[str] | None = None,
) -> str:
    """The README.md text for ``repo_id`` from a run's ``config.json``, ``summary.json`` and files.

    ``revision`` (the branch or tag the push names) is the one the usage snippet loads. ``elsewhere``:
    Markdown lines a backbone adds on loading the repo with another library (``Backbone.hub_export``).

    ``license`` only fills in for a model without a pretrained-weights license (trained from
    scratch, or weights of unknown license); it never overrides a known one.
    """
    from ..errors import ZooError

    summary = summary or {}
    pipeline_tag, info = task_card(config, summary)
    backbone = config.get("backbone", {})
    weights_license = (backbone.get("pretrained") or {}).get("license")
    if weights_license and license and license != weights_license:
        raise ZooError(
            f"the pretrained weights are licensed {weights_license!r}; the card states that license, not {license!r}"
        )
    dataset = {**(summary.get("dataset") or {}), **(config.get("dataset") or {})}
    facts = _Facts(
        repo_id=repo_id,
        config=config,
        summary=summary,
        files=files,
        info=info,
        metric_names={"loss": "Loss", **info.metric_names},
        task=config.get("task", ""),
        backbone=backbone,
        head=config.get("head", {}),
        weights_license=weights_license,
        card_license=weights_license or license,
        dataset=dataset,
        metrics={k: v for k, v in (summary.get("metrics") or {}).items() if isinstance(v, (int, float))},
        split="test" if "test" in str(dataset.get("val_is") or "").lower() else "validation",
        revision=revision,
    )
    lines = ["---", _card_data(facts, pipeline_tag).to_yaml(), "---", ""]
    lines += _intro(facts) + _results(facts) + _usage(facts) + _without_modelzoo(facts, elsewhere or [])
    lines += _requirements(facts) + _training(facts)
    lines += _license(facts) + _details(facts)
    return redact_paths("\n".join(lines))


#: an absolute local path (``/home/me/data``, ``~/data``, ``C:\\data``) not inside a URL
_LOCAL_PATH = re.compile(
    r"(?:(?<=file:)|(?<![\w:/.~-]))(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\`'\"|()\[\]{},=]+[/\\])+([^\s/\\`'\"|()\[\]{},=]+)"
)


def redact_paths(text: str) -> str:
    """``text`` with every absolute local path cut to its last part (``…/colors``): a published card
    must not reveal the publisher's file system (a recipe's data path, say)."""
    return _LOCAL_PATH.sub(lambda m: f"…/{m.group(1)}", text)


def _requirements(f: _Facts) -> list[str]:
    """The plugins the model needs (recorded when it was trained; else as installed now)."""
    plugins = f.config.get("plugins")
    if plugins is None:
        from ..model.task import required_plugins

        try:
            plugins = required_plugins(f.config)
        except Exception:  # a catalog problem must never block a push; the card just names less
            plugins = []
    named = [p for p in plugins if isinstance(p, dict) and p.get("distribution")]
    if not named:
        return []
    pins = " ".join(
        shlex.quote(f"{p['distribution']}=={p['version']}" if p.get("version") else p["distribution"]) for p in named
    )
    lines = ["## Requirements", "", "modelzoo and the plugins that provide this model's task, backbone and head:", ""]
    lines += [f"- `{p['distribution']}` {p.get('version') or ''} (plugin `{p.get('plugin')}`)".rstrip() for p in named]
    return [*lines, "", "```bash", f"pip install modelzoo {pins}", "```", ""]


def _card_data(f: _Facts, pipeline_tag: str | None) -> Any:
    """The card's YAML metadata: library, license, base model, datasets, tags and ``model-index`` results."""
    from huggingface_hub import EvalResult, ModelCardData

    base_model, _ = base_model_of(f.backbone.get("pretrained"))
    name = str(f.backbone.get("name", ""))
    hub = hub_repo_of(name)  # a Hub checkpoint's backbone: the base_model says which; no arch tag
    arch = None if hub else name.split(":")[-1]
    plugin = name.partition(":")[0] if ":" in name and not hub else None
    tags = ["modelzoo", f.task, plugin, arch, str(f.head.get("name", "")).split(":")[-1] + "-head"]
    eval_results = [
        EvalResult(
            task_type=f.task,
            dataset_type=f.hub_dataset or f.dataset_name or "unknown",
            dataset_name=f.dataset_name or f.hub_dataset or "unknown",
            dataset_split=f.split,
            metric_type=metric,
            metric_name=f.metric_names.get(metric, metric),
            metric_value=round(float(value), 6),
        )
        for metric, value in f.metrics.items()
    ]
    return ModelCardData(
        library_name="modelzoo",
        license=f.card_license,
        base_model=base_model,
        datasets=[f.hub_dataset] if f.hub_dataset else None,
        pipeline_tag=pipeline_tag,
        tags=[t for t in tags if t and t != "-head"],
        model_name=f.repo_id.split("/")[-1] if eval_results else None,
        eval_results=eval_results or None,
    )


def _intro(f: _Facts) -> list[str]:
    return [
        f"# {f.repo_id.split('/')[-1]}",
        "",
        f"{'An' if f.task[:1] in 'aeiou' else 'A'} {f.task} model built and fine-tuned with modelzoo: backbone "
        f"`{f.backbone.get('name')}` ({f.backbone.get('output', 'pooled')} features) + head `{f.head.get('name')}`, "
        f"{f.config.get('num_classes')} classes.",
        "",
    ]


def _results(f: _Facts) -> list[str]:
    if not f.metrics:
        return []
    where = f"{f.dataset_name or 'the evaluation set'}" + (f" ({f.val_is})" if f.val_is else f" ({f.split} split)")
    lines = ["## Results", "", f"Measured by the training run on {where}:", "", "| metric | value |", "|---|---|"]
    lines += [f"| {f.metric_names.get(k, k)} | {_fmt(float(v))} |" for k, v in f.metrics.items()]
    return [*lines, "", *f.info.results]


def _usage(f: _Facts) -> list[str]:
    example = f.info.example
    extra = [name for name in f.config.get("files") or [] if isinstance(name, str)]
    files_note = f" (+ {', '.join(f'`{name}`' for name in extra)}, recorded in its config)" if extra else ""
    return [
        "## How to use",
        "",
        "```python",
        "import modelzoo",
        "",
        f'model = modelzoo.load("hf-hub:{f.repo_id}@{f.revision}")  # or @<commit sha> (zoo pull prints it)',
        f"print(model.predict([{example!r}]))",
        "```",
        "",
        "```bash",
        f"zoo predict hf-hub:{f.repo_id}@{f.revision} {shlex.quote(example)}",
        f"zoo pull {f.repo_id}@{f.revision}            # into the HF cache; prints the commit sha",
        "```",
        "",
        f"Loading reads only `config.json` and `model.safetensors`{files_note} (no pickle, no code from this repo); "
        "`zoo pull` checks every file against `modelzoo.sha256` (also `sha256sum -c modelzoo.sha256`).",
        "",
    ]


def stage_lines(stages: Any) -> list[str]:
    """What each stage ended with (``summary.json``'s ``stages``): the best epoch, early stopping, the
    weights kept (the last, the moving average, the best epoch's or the starting ones)."""
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages) or not stages:
        return []
    kept = {
        "last": "its last weights",
        "ema": "the moving average of its weights",
        "best": "the best epoch's weights",
        "start": "the weights it started with (training made them worse)",
    }
    lines = ["Weights kept per stage (`summary.json`):", ""]
    for s in stages:
        epoch = s.get("best_epoch")
        stopped = ", stopped early" if s.get("stopped_early") else ""
        best = f"best epoch {epoch}" if epoch else "no epoch improved on its start"
        lines.append(
            f"- stage `{s.get('name')}`: {s.get('epochs_run')} epoch(s){stopped}, {best}; kept"
            f" {kept.get(str(s.get('kept')), s.get('kept'))}"
        )
    return [*lines, ""]


def _training(f: _Facts) -> list[str]:
    lines = ["## Training", ""]
    if f.dataset_name or f.hub_dataset:
        sizes = ", ".join(f"{k.split('_')[1]}: {f.dataset[k]}" for k in ("num_train", "num_val") if k in f.dataset)
        ds = (
            f"[{f.hub_dataset}](https://huggingface.co/datasets/{f.hub_dataset})"
            if f.hub_dataset
            else f"`{f.dataset_name}`"
        )
        lines += [f"Dataset: {ds}" + (f" ({sizes})" if sizes else "") + ".", ""]
    processes = f.summary.get("processes")
    if isinstance(processes, int) and processes > 1:  # the world size of a DDP run (one process otherwise)
        lines += [
            f"Trained by {processes} processes (DistributedDataParallel; `data.batch_size` is the global batch).",
            "",
        ]
    lines += ["Resolved recipe (`recipe.toml`):", "", *recipe_summary(_read(f.files.get("recipe.toml"))), ""]
    lines += stage_lines(f.summary.get("stages"))
    rows, skipped = metric_rows(f.files.get("metrics.jsonl"))
    if rows:
        lines += ["Per-epoch metrics (`metrics.jsonl`):", "", *metrics_table(rows), ""]
    if skipped:
        lines += [f"({skipped} torn or non-JSON line(s) of `metrics.jsonl` skipped.)", ""]
    for plot in sorted(p for p in f.files if p.endswith(".png")):
        lines += [f"![{Path(plot).stem.replace('_', ' ')}]({plot})", ""]
    return lines


def _license(f: _Facts) -> list[str]:
    _, weights_note = base_model_of(f.backbone.get("pretrained"))
    lines = ["## Backbone weights and license", "", weights_note, ""]
    if f.weights_license:
        lines += [f"License: `{f.weights_license}`, the license of the pretrained backbone weights.", ""]
    elif f.card_license:
        lines += [f"License: `{f.card_license}`, as declared by the publisher (no pretrained weights license).", ""]
    else:
        lines += ["License: not declared (the weights' license is unknown; push with --license to declare one).", ""]
    if f.dataset.get("license"):
        lines += [f"The training data ({f.dataset_name}) is licensed `{f.dataset['license']}`.", ""]
    return lines


def _details(f: _Facts) -> list[str]:
    lines = ["## Model details", ""]
    if f.info.input:
        lines.append(f"- input: {f.info.input}")
    labels = list(f.config.get("labels") or [])
    if labels:
        shown = ", ".join(f"`{label}`" for label in labels[:50])
        lines.append(f"- labels: {shown}" + (f" … ({len(labels)} in all)" if len(labels) > 50 else ""))
    lines.append("- files: " + ", ".join(f"`{name}`" for name in sorted(f.files)) + ", `modelzoo.sha256`")
    return [*lines, ""]


def _without_modelzoo(f: _Facts, elsewhere: list[str]) -> list[str]:
    """How to run the model without modelzoo: the ONNX file with onnxruntime (when the push carried one)
    and what a backbone's own library offers."""
    lines = [line.replace("{repo_id}", f.repo_id).replace("{revision}", f.revision) for line in elsewhere]
    sidecar = _read(f.files.get("model.onnx.json"))
    if "model.onnx" in f.files and sidecar:
        lines += _onnx_usage(f, json.loads(sidecar))
    return ["## Without modelzoo", "", *lines] if lines else []


def _onnx_usage(f: _Facts, meta: dict[str, Any]) -> list[str]:
    inputs = [i.get("name", "input") for i in meta.get("inputs") or []]
    pre = meta.get("preprocess") or {}
    image_like = len(inputs) == 1 and all(k in pre for k in ("input_size", "mean", "std"))
    lines = [
        "`model.onnx` (parity with PyTorch checked when pushed; `model.onnx.json` holds its preprocessing, labels"
        " and input/output names) runs with ONNX Runtime alone (`pip install onnxruntime huggingface_hub"
        f"{' pillow' if image_like else ''}`):",
        "",
        "```python",
        "import json",
        "",
        "import numpy as np",
        "import onnxruntime as ort",
        "from huggingface_hub import hf_hub_download",
        "",
        f'repo, rev = "{f.repo_id}", "{f.revision}"',
        'session = ort.InferenceSession(hf_hub_download(repo, "model.onnx", revision=rev))',
        'meta = json.load(open(hf_hub_download(repo, "model.onnx.json", revision=rev)))',
    ]
    if image_like:
        lines += [
            "from PIL import Image",
            "",
            'pre = meta["preprocess"]',
            'height, width = pre["input_size"][1:]',
            'resample = {"nearest": 0, "bilinear": 2, "bicubic": 3}.get(pre.get("interpolation"), 2)',
            f'image = Image.open("{f.info.example}").convert("RGB").resize((width, height), resample)',
            'x = (np.asarray(image, np.float32) / 255 - np.float32(pre["mean"])) / np.float32(pre["std"])',
            f'scores = session.run(None, {{"{inputs[0]}": x.transpose(2, 0, 1)[None].astype(np.float32)}})[0]',
            'print(meta["labels"][int(scores[0].argmax())])',
        ]
    else:
        names = ", ".join(f'"{name}": ...' for name in inputs)
        lines += [
            '# the inputs, as meta["inputs"] describes them (names, dtypes, shapes; axis 0 is the batch)',
            f"outputs = session.run(None, {{{names}}})",
        ]
    return [*lines, "```", ""]
