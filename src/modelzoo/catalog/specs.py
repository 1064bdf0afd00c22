"""Catalog entries as plain data.

Plugins describe what they provide with these dataclasses. They hold no torch objects and no
callables: a builder is a dotted ``"module:function"`` path imported only when something is built,
so listing the catalog never imports torch (DESIGN principle 2). Specs round-trip through JSON for
the catalog cache and ``registry.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import SpecError
from ..util.typecheck import Mismatch, field_types, mismatch, show, type_text

KINDS = ("backbone", "head", "dataset", "recipe", "task")
OUTPUT_KINDS = ("pooled", "pyramid", "sequence")
#: the value types a task may declare for its ``zoo predict`` options (``meta["predict_options"]``)
OPTION_TYPES = ("int", "float", "str", "bool", "path")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_OPTION_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_SOURCE_SCHEMES = ("hf-hub:", "https://", "http://", "pkg:", "file:")


@dataclass
class Level:
    """One map of a ``pyramid`` output: its channel count and stride relative to the input."""

    channels: int
    stride: int


@dataclass
class PretrainedTag:
    """One set of pretrained weights for an architecture, addressed as ``arch.tag``.

    ``sources`` are mirrors of the same file (same ``sha256``), tried in order; ``pkg:DIST/PATH``
    names a file shipped inside an installed distribution, ``file:`` a local path, ``hf-hub:`` and
    ``https://`` download. ``sha256`` may be a prefix (torch hub file names carry one).
    ``remap`` says how the file's keys map onto the architecture (``None`` = same names;
    ``"by_order"`` = zip both state dicts in order, checking every shape).
    ``metrics`` are published evaluation figures of these weights, as plain numbers in percent
    (``{"imagenet_top1": 71.878}``); only figures with a named source belong here, never estimates.
    """

    tag: str
    sources: list[str]
    sha256: str | None = None
    license: str | None = None
    license_note: str | None = None
    input_size: list[int] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    num_classes: int | None = None
    labels: str | None = None
    remap: str | None = None
    description: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def offline(self) -> bool:
        """True when a source does not need the network (the file may still be missing)."""
        return any(s.startswith(("pkg:", "file:")) for s in self.sources)


#: ``zoo predict``'s own flags: a task's predict option of that name would break the command's parser
RESERVED_PREDICT_OPTIONS = ("json", "help")


@dataclass
class PredictOption:
    """One extra ``zoo predict`` flag a task accepts (``--top-k 3`` for ``name="top_k"``)."""

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""


@dataclass
class TaskMeta:
    """What the catalog, the CLI and the Hub know of a task without importing it.

    A task spec carries it as plain data in ``Spec.meta`` (``TaskMeta(...).to_meta()``, or a dict with
    these keys; a ``TaskMeta`` given as ``meta`` is converted): ``metric`` (the main validation metric),
    ``higher_is_better``, ``aliases`` (short names accepted wherever a task is given; the first is
    shown by ``zoo list``), ``pipeline_tag`` (the Hub's), ``inputs`` (what ``zoo predict`` takes, in
    words) and ``predict_options``. Other keys are kept for the task's own use.
    """

    metric: str
    higher_is_better: bool = True
    aliases: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    inputs: str | None = None
    predict_options: list[PredictOption] = field(default_factory=list)

    def to_meta(self) -> dict[str, Any]:
        """The plain data a spec's ``meta`` holds."""
        return _prune(dataclasses.asdict(self)) | {"metric": self.metric, "higher_is_better": self.higher_is_better}

    @classmethod
    def from_meta(cls, meta: Any, where: str = "task") -> TaskMeta:
        """Read and check a task spec's ``meta``; :class:`SpecError` names the key and the fix."""
        if not isinstance(meta, dict):
            raise SpecError(f"{where}: meta must be a table of task facts (see modelzoo.sdk.TaskMeta)")
        if not isinstance(meta.get("metric"), str) or not meta["metric"]:
            raise SpecError(f'{where}: a task needs meta["metric"], the name of its main validation metric')
        hints = field_types(cls)
        for key in ("higher_is_better", "aliases", "pipeline_tag", "inputs"):
            if key in meta and mismatch(meta[key], hints[key]):
                expected = {"higher_is_better": "true or false", "aliases": "a list of names"}.get(key, "a string")
                raise SpecError(f'{where}: meta["{key}"] must be {expected}')
        aliases = meta.get("aliases", [])
        if any(not _NAME_RE.match(a) for a in aliases):
            raise SpecError(f'{where}: meta["aliases"] must be a list of names')
        raw_options = meta.get("predict_options", [])
        if not isinstance(raw_options, list):
            raise SpecError(f'{where}: meta["predict_options"] must be a list of {{name, type, default, help}} tables')
        options = []
        for opt in raw_options:
            if not isinstance(opt, dict) or not _OPTION_RE.match(str(opt.get("name", ""))):
                raise SpecError(f"{where}: predict option {opt!r} needs a snake_case 'name'")
            if opt.get("type", "str") not in OPTION_TYPES:
                raise SpecError(
                    f"{where}: predict option {opt['name']!r} type must be one of {', '.join(OPTION_TYPES)}"
                )
            if opt["name"] in RESERVED_PREDICT_OPTIONS:
                raise SpecError(
                    f"{where}: predict option {opt['name']!r} would shadow zoo predict's own --{opt['name']}"
                )
            unknown = set(opt) - {"name", "type", "default", "help"}
            if unknown:
                raise SpecError(f"{where}: predict option {opt['name']!r}: unknown key(s) {', '.join(sorted(unknown))}")
            if not isinstance(opt.get("help", ""), str):
                raise SpecError(f"{where}: predict option {opt['name']!r}: help must be a string")
            options.append(PredictOption(**opt))
        return cls(
            metric=meta["metric"],
            higher_is_better=meta.get("higher_is_better", True),
            aliases=list(aliases),
            pipeline_tag=meta.get("pipeline_tag"),
            inputs=meta.get("inputs"),
            predict_options=options,
        )


@dataclass
class Spec:
    """A catalog entry: backbone, head, dataset, recipe or task.

    Backbones declare ``outputs`` (what they can emit) and, where cheap, ``num_features`` (pooled)
    and ``pyramid`` levels; heads declare what they ``consumes``. Assembly matches the two.
    Whether a backbone serves a task follows from heads, never from the backbone's own ``tasks``: a
    task accepts the heads that list it, and a backbone fits when it emits what one of them consumes
    (:meth:`modelzoo.catalog.lookup.Catalog.serves`). ``modality`` (a backbone's and a task's input,
    such as ``"image"``) keeps apart backbones and tasks that both name one and differ.

    A task's ``builder`` names its :class:`modelzoo.Task` class; what the catalog and the Hub need
    to know without importing it is plain data in ``meta``: ``metric`` (required, the main
    validation metric), ``higher_is_better`` (default true), ``aliases`` (short names accepted
    wherever a task is given; the first is shown by ``zoo list``), ``pipeline_tag`` (the Hub's),
    ``inputs`` (what ``zoo predict`` takes, in words) and ``predict_options`` (extra ``zoo predict``
    flags: ``[{"name": "top_k", "type": "int", "default": 5, "help": "..."}]``).
    """

    name: str
    kind: str
    tasks: list[str] = field(default_factory=list)
    builder: str | None = None
    description: str = ""
    plugin: str = ""
    outputs: list[str] = field(default_factory=list)
    num_features: int | None = None
    pyramid: list[Level] | None = None
    consumes: list[str] = field(default_factory=list)
    pretrained: list[PretrainedTag] = field(default_factory=list)
    default_tag: str | None = None
    num_params: int | None = None
    license: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # a task's: TaskMeta data
    modality: str | None = None  # what a backbone reads / a task's inputs are; None fits any

    @property
    def task_meta(self) -> TaskMeta:
        """A task spec's ``meta`` as a :class:`TaskMeta` (checked when the catalog loaded the spec)."""
        return TaskMeta.from_meta(self.meta, f"task {self.name!r}")

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}" if self.plugin else self.name

    def tag(self, tag: str | None = None) -> PretrainedTag:
        """The pretrained tag named ``tag`` (case-insensitive), or the default one."""
        from ..errors import ZooError, did_you_mean

        hub_ref = self.meta.get("hub_ref")
        if hub_ref and tag:
            raise ZooError(
                f"{hub_ref} takes its weights from the repo: pretrained = true (the repo's weights) or false (random"
                f" init), not a tag name ({tag!r})"
            )
        if not self.pretrained:
            raise ZooError(f"{hub_ref or repr(self.name)} has no pretrained weights; use pretrained=false")
        wanted = tag or self.default_tag or self.pretrained[0].tag
        for t in self.pretrained:
            if t.tag.lower() == wanted.lower():
                return t
        tags = [f"{self.name}.{t.tag}" for t in self.pretrained]
        raise ZooError(
            f"unknown pretrained tag '{self.name}.{wanted}'{did_you_mean(f'{self.name}.{wanted}', tags)}"
            f" (available: {', '.join(tags[:8])}{' ...' if len(tags) > 8 else ''})"
        )

    def to_dict(self) -> dict[str, Any]:
        return _prune(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        data = dict(data)
        data["pretrained"] = [PretrainedTag(**t) for t in data.get("pretrained", [])]
        if data.get("pyramid") is not None:
            data["pyramid"] = [Level(**lv) for lv in data["pyramid"]]
        return cls(**data)


def _prune(obj: Any) -> Any:
    """Drop None/empty values so the JSON stays small and diffs stay readable."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            v = _prune(v)
            if v is None or v == [] or v == {} or v == "":
                continue
            out[k] = v
        return out
    if isinstance(obj, (list, tuple)):
        return [_prune(v) for v in obj]
    return obj


def validate_spec(spec: Any) -> Spec:
    """Check a plugin's spec against the contract; raise :class:`SpecError` saying what is wrong."""
    if not isinstance(spec, Spec):
        raise SpecError(f"expected a modelzoo.sdk.Spec, got {type(spec).__name__}")
    where = f"spec {spec.name!r}"
    if not isinstance(spec.name, str) or not _NAME_RE.match(spec.name):
        raise SpecError(f"{where}: name must be letters, digits, '_' or '-'")
    if spec.kind not in KINDS:
        raise SpecError(f"{where}: kind {spec.kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(spec.tasks, list) or any(not isinstance(t, str) or not _NAME_RE.match(t) for t in spec.tasks):
        raise SpecError(f"{where}: tasks must be a list of task names (zoo list --kind task)")
    spec.tasks = sorted({t.lower() for t in spec.tasks})
    if spec.modality is not None:
        if not isinstance(spec.modality, str) or not _NAME_RE.match(spec.modality):
            raise SpecError(f'{where}: modality must be a short name such as "image", or None')
        spec.modality = spec.modality.lower()
    if spec.kind in ("backbone", "head", "task") and not spec.builder:
        raise SpecError(f"{where}: a {spec.kind} needs a builder 'module:function'")
    if spec.builder and ":" not in spec.builder:
        raise SpecError(f"{where}: builder {spec.builder!r} must look like 'package.module:function'")
    if spec.kind == "backbone":
        if not spec.outputs or any(o not in OUTPUT_KINDS for o in spec.outputs):
            raise SpecError(f"{where}: outputs must be a non-empty subset of {', '.join(OUTPUT_KINDS)}")
    if spec.kind == "head":
        if not spec.consumes or any(o not in OUTPUT_KINDS for o in spec.consumes):
            raise SpecError(f"{where}: consumes must be a non-empty subset of {', '.join(OUTPUT_KINDS)}")
    if spec.kind == "task":
        _validate_task_meta(spec, where)
    seen: set[str] = set()
    for tag in spec.pretrained:
        if not isinstance(tag, PretrainedTag):
            raise SpecError(f"{where}: pretrained entries must be PretrainedTag")
        if not _TAG_RE.match(tag.tag or "") or tag.tag.lower() in seen:
            raise SpecError(f"{where}: pretrained tag {tag.tag!r} is invalid or duplicated")
        seen.add(tag.tag.lower())
        if not tag.sources or any(not s.startswith(_SOURCE_SCHEMES) for s in tag.sources):
            raise SpecError(f"{where}.{tag.tag}: each source must start with one of {', '.join(_SOURCE_SCHEMES)}")
        if not isinstance(tag.metrics, dict) or any(
            not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
            for k, v in tag.metrics.items()
        ):
            raise SpecError(
                f'{where}.{tag.tag}: metrics must map names to finite numbers, e.g. {{"imagenet_top1": 71.9}}'
            )
    if spec.default_tag and spec.default_tag.lower() not in seen:
        raise SpecError(f"{where}: default_tag {spec.default_tag!r} is not among its pretrained tags")
    _check_field_types(spec, where)
    try:
        json.dumps(spec.to_dict())
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: specs must be plain JSON data ({exc})") from None
    return spec


def _validate_task_meta(spec: Spec, where: str) -> None:
    """A task's plain-data description, checked once here: :meth:`TaskMeta.from_meta` reads it."""
    if isinstance(spec.meta, TaskMeta):
        spec.meta = spec.meta.to_meta()
    TaskMeta.from_meta(spec.meta, where)


def _check_field_types(spec: Spec, where: str) -> None:
    """Every field holds the type its annotation names (a ``license`` list or a text ``num_params`` would
    crash ``zoo list`` / ``zoo info`` for every user), through the one type-checker."""
    for tag in spec.pretrained:
        wrong = mismatch(tag, PretrainedTag)
        if wrong:
            raise SpecError(f"{where}: pretrained tag {tag.tag!r}: {_wrong_text(wrong)}")
    wrong = mismatch(spec, Spec)
    if wrong:
        raise SpecError(f"{where}: {_wrong_text(wrong)}")


def _wrong_text(wrong: Mismatch) -> str:
    expected = "a finite float" if wrong.hint is float else type_text(wrong.hint)
    return f"{wrong.path.lstrip('.')} must be {expected}, got {show(wrong.value, 60)}"


__all__ = [
    "KINDS",
    "OPTION_TYPES",
    "OUTPUT_KINDS",
    "Level",
    "PredictOption",
    "PretrainedTag",
    "Spec",
    "TaskMeta",
    "validate_spec",
]
