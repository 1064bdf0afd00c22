"""Assembling backbone + head into a TaskModel, and rebuilding one from its ``config.json`` data.

Assembly checks the backbone/head contract by output kind before building anything, so a wrong
pairing fails with one line saying what each side offers. The config records everything needed to
rebuild the model and its preprocessing without the original recipe or network access; reading and
writing model folders is :mod:`modelzoo.model.folder`'s job.
"""

from __future__ import annotations

from typing import Any

from ..catalog.builders import import_builder
from ..catalog.lookup import catalog, infer_task
from ..catalog.specs import Spec
from ..errors import ZooError
from ..util.text import first_line
from .backbone import Backbone
from .limits import MAX_BACKBONE_PARAMETERS, MAX_HEAD_PARAMETERS, check_outputs, check_preprocess, check_size
from .task import TaskModel

CONFIG_FORMAT = 1


def create_backbone(
    name: str,
    pretrained: bool | str = True,
    output: str | None = None,
    **options: Any,
) -> Backbone:
    """Build a registered backbone, with pretrained weights fetched and sha256-checked.

    ``name`` may be ``arch``, ``arch.tag`` or ``plugin:arch``; ``pretrained`` is True (the tag in
    the name, else the default tag), False (random init) or a tag name.
    """
    spec, name_tag = catalog().resolve(name, kind="backbone")
    output = output or spec.outputs[0]
    if output not in spec.outputs:
        raise ZooError(f"backbone {spec.name!r} emits {', '.join(spec.outputs)}, not {output!r}")
    tag = None
    if pretrained:
        tag = spec.tag(pretrained if isinstance(pretrained, str) else name_tag)
    builder = import_builder(spec.builder or "")
    given, options = options, {**spec.options, **options}
    what = f"backbone {spec.name!r}"
    check_options(builder, options, what, skip=1, reserved=("output", "pretrained"))
    if given:  # options from a recipe or a pulled config.json: bounded before the real build allocates
        size = meta_parameters(lambda: builder(spec, output=output, pretrained=None, **options))
        if size is not None:
            check_size(size, MAX_BACKBONE_PARAMETERS, what, given, "model.backbone_options")
    try:
        backbone = builder(spec, output=output, pretrained=tag, **options)
    except TypeError as exc:
        raise ZooError(f"backbone {spec.name!r}: {exc} (check model.backbone_options)") from None
    if not isinstance(backbone, Backbone):
        raise ZooError(f"builder {spec.builder} returned {type(backbone).__name__}, not a modelzoo Backbone")
    return backbone


def check_options(
    builder: Any, options: dict[str, Any], what: str, skip: int = 0, reserved: tuple[str, ...] = ()
) -> None:
    """Builder options are plain data the builder declares: its named parameters, and through ``**options``
    only what its :func:`modelzoo.sdk.option_rule` accepts (none without one). Options come from recipes
    and from pulled ``config.json`` files, so this is what stops a config from handing a library a file to
    unpickle (``checkpoint_path=...``). Each refusal is one line naming the option."""
    import inspect

    for key, value in options.items():
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            raise ZooError(f"{what}: {key!r:.60} is not an option name (model options / config.json options)")
        if not _plain(value):
            raise ZooError(f"{what}: option {key!r} must be plain data (numbers, strings, lists, tables)")
    try:
        params = list(inspect.signature(builder).parameters.values())[skip:]
    except (TypeError, ValueError):
        params = []
    valid = [
        p.name
        for p in params
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) and p.name not in reserved
    ]
    forwards = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    rule = getattr(builder, "__zoo_option_rule__", None)
    extra = sorted(k for k in options if k not in valid)
    unknown = [k for k in extra if k in reserved or not forwards or not callable(rule)]
    if unknown:
        raise ZooError(f"{what} has no option(s) {unknown}; its options are: {', '.join(valid) or 'none'}")
    for key in extra:
        reason = rule(key)
        if reason:
            raise ZooError(
                f"{what}: option {key!r} refused ({reason}); check model.backbone_options / model.head_options,"
                " or the config.json that set it"
            )


def _plain(value: Any, depth: int = 0) -> bool:
    """JSON-like data only, at most 16 levels deep: options never carry objects or callables."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if depth >= 16:
        return False
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def meta_parameters(build: Any, shared: Any = None) -> int | None:
    """The parameters of the module ``build()`` makes, built on the meta device (nothing allocated; the
    parameters of ``shared``, a module it wraps, not counted); None when it cannot be built there (it runs
    a model on a real tensor, say): then the real build decides."""
    import torch

    try:
        with torch.device("meta"):
            module = build()
        own = {id(p) for p in shared.parameters()} if shared is not None else set()
        return sum(p.numel() for p in module.parameters() if id(p) not in own)
    except Exception:  # a probe: any failure leaves the decision to the real build
        return None


def build_head(builder: Any, backbone: Backbone, num_classes: int, options: dict[str, Any], what: str) -> Any:
    """The head, after its size was bounded on the meta device (:func:`modelzoo.model.limits.check_head_size`):
    an option such as ``hidden = 1e9`` is one line, never a 5 TB allocation or an out-of-memory kill."""
    size = meta_parameters(lambda: builder(backbone, num_classes, **options), shared=backbone)
    if size is not None:
        check_size(size, MAX_HEAD_PARAMETERS, what, options, "model.head_options")
    try:
        return builder(backbone, num_classes, **options)
    except (TypeError, ValueError) as exc:
        raise ZooError(f"{what}: {first_line(exc)} (check model.head_options)") from None
    except RuntimeError as exc:
        if "dimension" not in str(exc) and "allocate" not in str(exc):
            raise
        raise ZooError(f"{what}: {first_line(exc)} (check model.head_options)") from None


def _check_pairing(backbone: Spec, head: Spec) -> str:
    shared = [kind for kind in head.consumes if kind in backbone.outputs]
    if not shared:
        raise ZooError(
            f"head {head.name!r} consumes {'/'.join(head.consumes)} but backbone {backbone.name!r} emits "
            f"{'/'.join(backbone.outputs)}; pick a head for {'/'.join(backbone.outputs)} (zoo list --kind head)"
        )
    return shared[0]


def assemble(
    backbone: str,
    head: str,
    num_classes: int | None = None,
    labels: list[str] | None = None,
    pretrained: bool | str = True,
    head_options: dict[str, Any] | None = None,
    backbone_options: dict[str, Any] | None = None,
    preprocess: dict[str, Any] | None = None,
    task: str | None = None,
) -> TaskModel:
    """Resolve, check and build backbone + head; record how to rebuild them in ``config``.

    ``labels`` name the model's outputs (class names; ``num_classes`` defaults to their number).
    ``task`` defaults to the one task the backbone and head are both for.
    """

    cat = catalog()
    bb_spec, _ = cat.resolve(backbone, kind="backbone")
    head_spec = cat.get(head, kind="head")
    output = _check_pairing(bb_spec, head_spec)
    task = cat.task(task).name if task else infer_task(bb_spec, head_spec)
    if head_spec.tasks and task not in head_spec.tasks:
        raise ZooError(
            f"head {head_spec.name!r} is for {', '.join(head_spec.tasks)}, not {task};"
            f" pick one of: {', '.join(s.name for s in cat.filter(kind='head', task=task)) or 'none installed'}"
        )
    reads = cat.task_modality(task)
    if bb_spec.modality and reads and bb_spec.modality != reads:  # the head fits both: only modalities can clash
        raise ZooError(
            f"backbone {bb_spec.name!r} reads {bb_spec.modality} input, {task} reads {reads};"
            f" pick one from zoo list --kind backbone --task {cat.task_label(task)}"
        )
    if num_classes is None:
        if labels is None:
            raise ZooError("assemble needs labels (the output names) or num_classes")
        num_classes = len(labels)
    if labels is not None and len(labels) != num_classes:
        raise ZooError(f"{len(labels)} labels given for num_classes={num_classes}")
    if num_classes < 1:
        raise ZooError("a model needs at least one output (num_classes >= 1)")
    check_outputs(num_classes, labels, "model")  # what is saved must load again (modelzoo.model.limits)
    bb = create_backbone(backbone, pretrained=pretrained, output=output, **(backbone_options or {}))
    head_opts = {**head_spec.options, **(head_options or {})}
    head_builder = import_builder(head_spec.builder or "")
    check_options(head_builder, head_opts, f"head {head_spec.name!r}", skip=2)
    head_module = build_head(head_builder, bb, num_classes, head_opts, f"head {head_spec.name!r}")
    config = {
        "format": CONFIG_FORMAT,
        "library": "modelzoo",
        "task": task,
        "backbone": {
            # a Hub checkpoint's spec names its pinned hf-hub:ORG/NAME@SHA: that rebuilds exactly this commit
            "name": bb_spec.meta.get("hub_ref") or bb_spec.qualified_name,
            "output": output,
            # a backbone may add options that rebuild it without its pretrained source (a text encoder's config)
            "options": {**(backbone_options or {}), **bb.config_options},
            "pretrained": bb.provenance,
        },
        "head": {"name": head_spec.qualified_name, "options": head_opts},
        "num_classes": num_classes,
        "labels": list(labels) if labels is not None else [str(i) for i in range(num_classes)],
        "preprocess": {**bb.pretrained_cfg, **(preprocess or {})},
    }
    check_preprocess(config["preprocess"], "model")
    return TaskModel(bb, head_module, config)


def from_config(config: dict[str, Any]) -> TaskModel:
    """Rebuild the architecture recorded in ``config`` (random weights; load a state dict next)."""
    if config.get("library") != "modelzoo" or not isinstance(config.get("backbone"), dict):
        raise ZooError("config.json was not written by modelzoo (no 'backbone'/'library' fields)")
    # a pulled config is somebody else's file: every value that sizes an allocation is bounded first
    num_classes = check_outputs(config.get("num_classes"), config.get("labels"), "config.json")
    check_preprocess(config.get("preprocess"), "config.json")
    try:
        model = assemble(
            config["backbone"]["name"],
            config["head"]["name"],
            num_classes=num_classes,
            labels=config.get("labels"),
            pretrained=False,
            head_options=config["head"].get("options"),
            backbone_options=config["backbone"].get("options"),
            preprocess=config.get("preprocess"),
            task=config.get("task"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ZooError(f"config.json is incomplete or malformed ({type(exc).__name__}: {exc})") from None
    model.config = config
    return model
