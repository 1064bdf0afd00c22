"""Fine-tune recipes: TOML in, a fully validated :class:`Recipe` out.

Every field is checked before any work starts, and each problem is reported as one line naming
the field and the fix. ``--set dotted.key=value`` overrides any field (``stages.1.epochs=5``).

The core owns the task-independent parts (model, optimizer, stages, seed, device); the ``[data]``
table belongs to the recipe's task: its fields are the task's ``Data`` class (a
:class:`~modelzoo.model.task.DataConfig` subclass), validated the same way, then by the task itself.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from ..errors import RecipeError, ZooError, did_you_mean
from ..model.task import DataConfig
from ..util.typecheck import field_types, mismatch, show, type_text
from .stopping import check_early_stopping, check_ema_decay

SCHEDULES = ("constant", "cosine", "onecycle")
OPTIMIZERS = ("adamw", "sgd")
#: data.num_workers above this is a typo, not a plan (each is a process)
MAX_WORKERS = 256
#: what a recipe name may be: it names the default run folder, so no paths and no dots
_RECIPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")


# Every field's ``#:`` comment is its meaning in docs/recipes.md (``zoo recipe fields --markdown``).
@dataclass
class ModelCfg:
    #: the backbone: a catalog name, ``arch.tag`` for a pretrained variant (``zoo list --kind backbone``), or
    #: ``hf-hub:ORG/NAME[@REV]``, a Hub repo an installed plugin builds (timm, transformers), pinned to its commit
    backbone: str
    #: the task head (``zoo list --kind head --task TASK``)
    head: str = "linear"
    #: load pretrained weights: true (the default tag; an ``hf-hub:`` backbone's own weights), false (random
    #: init) or a tag name
    pretrained: bool | str = True
    #: keyword options of the head's builder (``zoo info HEAD``)
    head_options: dict[str, Any] = field(default_factory=dict)
    #: keyword options of the backbone's builder (``zoo info BACKBONE``)
    backbone_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerCfg:
    #: ``adamw`` or ``sgd``
    name: str = "adamw"
    #: the learning rate of stages that set none
    lr: float = 1e-3
    #: decoupled weight decay (AdamW) or L2 penalty (SGD)
    weight_decay: float = 0.01
    #: SGD's momentum (AdamW ignores it)
    momentum: float = 0.9
    #: layer-wise LR decay: each layer group further from the head trains at this times the lr of the next (1 = none)
    layer_decay: float = 1.0


@dataclass
class StageCfg:
    #: the stage's name in logs and metrics.jsonl
    name: str
    #: what trains: ``head``, ``all``, ``last:N`` (the last N layer groups) or a list of group names; the rest is frozen
    train: str | list[str] = "head"
    #: passes over the training data
    epochs: int = 1
    #: this stage's learning rate (default: ``optimizer.lr``)
    lr: float | None = None
    #: the lr schedule over the stage: ``constant``, ``cosine`` or ``onecycle``
    schedule: str = "cosine"
    #: linear warm-up at the start of the stage, in epochs (fractions allowed)
    warmup_epochs: float = 0.0
    #: this stage's layer-wise LR decay (default: ``optimizer.layer_decay``)
    layer_decay: float | None = None
    #: train on augmented examples (when the task's data turns augmentation on)
    augment: bool = False
    #: keep every BatchNorm layer's running statistics fixed, also in unfrozen groups (small batches,
    #: or data far from the pretraining distribution, make batch statistics a poor estimate)
    freeze_bn_stats: bool = False
    #: evaluate and keep an exponential moving average of the weights, updated every step with this
    #: decay (e.g. 0.999; warmed up over the first steps); none by default
    ema_decay: float | None = None
    #: stop when the validation metric has not improved for a while, and keep the best epoch's weights:
    #: ``{ patience = 3, min_delta = 0.0, metric = "<the task's metric>" or "loss", restore_best = true }``
    early_stopping: dict[str, Any] | None = None
    #: a stage after the first never ends with weights scoring worse on validation than those it started
    #: with: it keeps the better ones and says so (false: always keep the last weights)
    keep_better: bool = True


@dataclass
class TrackingCfg:
    #: experiment trackers this run logs to (``tensorboard``, ``mlflow``, a plugin's); none unless named here or by ``zoo finetune --track``
    backends: list[str] = field(default_factory=list)


@dataclass
class Recipe:
    #: the recipe's name (names the default run folder ``runs/<name>-<time>``)
    name: str
    #: ``[model]``: backbone, head and their options
    model: ModelCfg
    #: ``[data]``: the task's data fields (below, per task)
    data: DataConfig
    #: ``[[stages]]``: the training schedule, run in order
    stages: list[StageCfg]
    #: the task (``zoo list --kind task``); default: the one task the backbone and head both serve
    task: str = ""
    #: one line about the recipe (shown by ``zoo list --kind recipe`` and the model card)
    description: str = ""
    #: seeds weights of new layers, shuffling and dropout
    seed: int = 0
    #: the seed that draws the data's subsets and splits (``data.train_limit``, a carved validation
    #: split); default: ``seed``. ``zoo select --validate`` holds it while ``seed`` varies, so every
    #: fine-tune it compares trains and is measured on the same examples
    data_seed: int | None = None
    #: ``auto`` (a GPU when there is one), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``
    device: str = "auto"
    #: ``torch.compile`` the model
    compile: bool = False
    #: mixed precision: bf16 (else fp16) on CUDA; bf16 on a CPU where it was measured faster and close to fp32 (false: fp32)
    amp: bool = True
    #: ``[optimizer]``: defaults every stage may override
    optimizer: OptimizerCfg = field(default_factory=OptimizerCfg)
    #: published figures of this recipe (metrics, seconds, hardware), recorded for the registry; not used to train
    reference: dict[str, Any] = field(default_factory=dict)
    #: ``[tracking]``: where the run's metrics are watched (how a run is watched, not what it trains:
    #: left out of the resolved recipe; a resumed run continues its trackers from ``RUN/tracking.json``)
    tracking: TrackingCfg = field(default_factory=TrackingCfg)

    #: valid but doubtful settings, said before the run starts (not part of the recipe's data)
    warnings: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def seed_for_data(self) -> int:
        """The seed a task draws data subsets and splits with: ``data_seed``, else ``seed``."""
        return self.seed if self.data_seed is None else self.data_seed

    def to_dict(self) -> dict[str, Any]:
        data = _drop_none(asdict(self))
        data.pop("warnings", None)
        data.pop("tracking", None)
        if self.stages and all(s.lr is not None for s in self.stages):
            # unused when every stage sets its own: leaving it out keeps the resolved recipe (run
            # folders, --resume, zoo select's recipes) free of the "never used" warning
            data.get("optimizer", {}).pop("lr", None)
        return data

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def _key(key: Any) -> str:
    """A key as a message shows it: as written, or quoted when it would break the line (or is empty)."""
    return key if isinstance(key, str) and key.isprintable() and key.strip() == key and key else repr(key)


# -- overrides --------------------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # bare strings need no quotes on the command line


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides; list items are addressed by index (``stages.0.lr``)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not p for p in key.split(".")):
            raise RecipeError(f"--set {show(item)}: expected dotted.key=value, e.g. --set data.batch_size=64")
        try:
            value = _parse_value(raw)
        except RecursionError:
            raise RecipeError(f"--set {_key(key)}: the value nests lists or tables too deeply") from None
        target: Any = data
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = _key(".".join(parts[:i])) if i else "the recipe"
            if isinstance(target, list):
                if not re.fullmatch(r"[0-9]+", part) or int(part) >= len(target):
                    raise RecipeError(
                        f"--set {_key(key)}: {where} has {len(target)} items; index {show(part)} is out of range"
                    )
                if last:
                    target[int(part)] = value
                else:
                    target = target[int(part)]
            elif isinstance(target, dict):
                if last:
                    target[part] = value
                else:
                    target = target.setdefault(part, {})
            else:
                raise RecipeError(
                    f"--set {_key(key)}: {where} is a single value ({show(target)}), not a table; set {where}=VALUE"
                )
    return data


# -- validation -------------------------------------------------------------------------------
def _section(cls, data: Any, where: str, required: tuple[str, ...] = ()):
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: expected a table, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            raise RecipeError(f"{where}.{_key(key)}: unknown field{did_you_mean(str(key), known)}")
    for key in required:
        if key not in data:
            raise RecipeError(f"{where}.{key}: required field is missing")
    hints = field_types(cls)
    for key, value in data.items():
        _check_type(f"{where}.{key}" if where else key, value, hints[key])
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {exc}") from None


def data_section(cls, data: Any) -> DataConfig:
    """A task's ``[data]`` table validated on its own (field names and types, one line per problem)."""
    return _section(cls, data, "data")


def _check_type(where: str, value: Any, hint: Any) -> None:
    """One field's value against its annotation (:mod:`modelzoo.util.typecheck`), as a one-line recipe error."""
    wrong = mismatch(value, hint)
    if wrong is None:
        return
    where = f"{where}{wrong.path}"
    if wrong.not_finite:
        raise RecipeError(f"{where}: {show(wrong.value, 40)} is not a finite number")
    raise RecipeError(f"{where}: expected {type_text(wrong.hint, none='nothing')}, got {show(wrong.value)}")


_TOP: dict[str, Any] = {
    "name": str,
    "task": str,
    "description": str,
    "seed": int,
    "data_seed": int | None,
    "device": str,
    "compile": bool,
    "amp": bool,
    "reference": dict[str, Any],
}


def validate(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Build a :class:`Recipe` from parsed TOML, or raise a one-line :class:`RecipeError`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a TOML table, got {type(data).__name__}")
    data = copy.deepcopy(data)
    for key in ("model", "data", "stages"):
        if key not in data:
            raise RecipeError(f"{source}: [{key}] is missing; see zoo/*.toml for a complete recipe")
    top = {k: v for k, v in data.items() if k not in ("model", "data", "stages", "optimizer", "tracking")}
    for key, value in top.items():
        if key not in _TOP:
            known = set(_TOP) | {"model", "data", "stages", "optimizer", "tracking"}
            raise RecipeError(f"{_key(key)}: unknown top-level field{did_you_mean(str(key), known)}")
        _check_type(key, value, _TOP[key])
    top.setdefault("name", Path(source).stem if source != "recipe" else "recipe")
    model = _section(ModelCfg, data["model"], "model", required=("backbone",))
    opt = _section(OptimizerCfg, data.get("optimizer", {}), "optimizer")
    tracking = _tracking(data.get("tracking", {}))
    if not isinstance(data["stages"], list) or not data["stages"]:
        raise RecipeError('stages: give at least one [[stages]] table (e.g. train = "head", epochs = 3)')
    stages = []
    for i, raw in enumerate(data["stages"]):
        if isinstance(raw, dict):
            raw = {"name": f"stage{i}", **raw}
        stages.append(_section(StageCfg, raw, f"stages.{i}"))
    task_spec, task_cls = _task_class(top.get("task"), model)
    try:
        dcfg = _section(task_cls.Data, data["data"], "data")
    except RecipeError as exc:
        if top.get("task"):
            raise
        raise RecipeError(  # the task was worked out from the model: say so, it may not be what was meant
            f"{exc} (for {task_spec.name}, the task of backbone {model.backbone!r} + head {model.head!r};"
            " set task = ... or pick another head)"
        ) from None
    top["task"] = task_spec.name  # canonical, even when the recipe gave an alias
    recipe = Recipe(model=model, data=dcfg, stages=stages, optimizer=opt, tracking=tracking, **top)
    _check_values(recipe)
    _check_model(recipe)
    _check_task_options(recipe, task_spec, task_cls)
    try:
        task_cls.validate_data(dcfg, recipe)
    except RecipeError:
        raise
    except ZooError as exc:
        raise RecipeError(str(exc)) from None
    recipe.warnings = _advice(data, recipe)
    return recipe


def _tracking(data: Any) -> TrackingCfg:
    """``[tracking]``: tracker names, checked for form here; whether each is installed is said when the run
    starts (a resumed run never fails for a tracker plugin that went away)."""
    cfg = _section(TrackingCfg, data, "tracking")
    bad = [n for n in cfg.backends if not re.fullmatch(r"[a-z][a-z0-9_\-]*", n.strip().lower())]
    if bad:
        raise RecipeError(f"tracking.backends: {bad[0]!r} is not a tracker name (e.g. tensorboard, mlflow)")
    return cfg


def _check_task_options(r: Recipe, spec: Any, task_cls: Any) -> None:
    """What depends on the task: early stopping watches its metric; ``data.augment`` is one of the presets
    the task declares (``Task.augment_presets``: a task whose targets move with the pixels needs its own)."""
    for i, s in enumerate(r.stages):
        check_early_stopping(s.early_stopping, f"stages.{i}.early_stopping", spec.task_meta.metric)
    presets = tuple(getattr(task_cls, "augment_presets", ()) or ())
    preset = getattr(r.data, "augment", None)
    if presets and isinstance(preset, str) and preset not in presets:
        raise RecipeError(
            f"data.augment: {preset!r} is not one of {', '.join(presets)} (the presets {spec.name} declares)"
            f"{did_you_mean(preset, presets)}"
        )


def _check_model(r: Recipe) -> None:
    """The backbone and head exist, fit each other, and the head is for the recipe's task: caught here,
    before any data is read, with what each side offers."""
    from ..catalog.lookup import catalog

    cat = catalog()
    backbone, head = _model_specs(r.model)
    if head.tasks and r.task not in head.tasks:
        fits = [s.name for s in cat.filter(kind="head", task=r.task) if set(s.consumes) & set(backbone.outputs)]
        label = " or ".join(cat.task_label(t) for t in head.tasks)
        raise RecipeError(
            f"model.head: {head.name!r} is a {label} head; {r.task} needs a head such as"
            f" {', '.join(fits) or 'none installed'} (zoo list --kind head --task {cat.task_label(r.task)})"
        )
    if not set(head.consumes) & set(backbone.outputs):
        raise RecipeError(
            f"model.head: {head.name!r} consumes {'/'.join(head.consumes)} features but {backbone.name!r} emits"
            f" {'/'.join(backbone.outputs)}; pick a head for {'/'.join(backbone.outputs)} (zoo list --kind head)"
        )
    reads = cat.task_modality(r.task)  # heads decide which backbones fit (never their own list): only
    if backbone.modality and reads and backbone.modality != reads:  # modalities can still clash
        raise RecipeError(
            f"model.backbone: {backbone.name!r} reads {backbone.modality} input, {r.task} reads {reads};"
            f" pick one from zoo list --kind backbone --task {cat.task_label(r.task)}"
        )
    pre = r.model.pretrained
    if isinstance(pre, str):  # a tag named outright is checked now, not when the backbone is built
        if not pre.isprintable():
            raise RecipeError(
                f"model.pretrained: {show(pre)} is not a tag of {backbone.name!r} (zoo info {backbone.name})"
            )
        try:
            backbone.tag(pre)
        except ZooError as exc:
            raise RecipeError(f"model.pretrained: {exc}") from None


def _advice(data: dict[str, Any], r: Recipe) -> list[str]:
    """Valid settings that are probably mistakes (printed as warnings; the run goes on)."""
    out = []
    if "lr" in (data.get("optimizer") or {}) and all(s.lr is not None for s in r.stages):
        out.append(f"optimizer.lr = {r.optimizer.lr:g} is never used: every stage sets its own lr (stages.N.lr)")
    return out


def _model_specs(model: ModelCfg):
    """The backbone and head specs a recipe names (unknown names: one line naming the field)."""
    from ..catalog.lookup import catalog

    cat = catalog()
    try:
        backbone = cat.resolve(model.backbone, kind="backbone")[0]
    except ZooError as exc:
        raise RecipeError(f"model.backbone: {exc}") from None
    try:
        head = cat.get(model.head, kind="head")
    except ZooError as exc:
        raise RecipeError(f"model.head: {exc}") from None
    return backbone, head


def _task_class(task: str | None, model: ModelCfg):
    """The recipe's task class: the one named, else the one its backbone and head are both for."""
    from ..catalog.lookup import infer_task
    from ..model.task import task_class

    if not task:
        try:
            task = infer_task(*_model_specs(model))
        except RecipeError:
            raise
        except ZooError as exc:
            raise RecipeError(f"model.head: {exc}") from None
    try:
        spec, cls = task_class(task)
    except RecipeError:
        raise
    except ZooError as exc:
        raise RecipeError(f"task: {exc}") from None
    if not (is_dataclass(cls.Data) and issubclass(cls.Data, DataConfig)):
        raise RecipeError(f"task {spec.name!r}: its Data class is not a modelzoo DataConfig dataclass; fix its plugin")
    return spec, cls


def _check_values(r: Recipe) -> None:
    if not _RECIPE_NAME.match(r.name):
        raise RecipeError(
            f"name: {r.name!r} must be letters, digits, '_' or '-' (at most 100): it names the run folder runs/<name>-<time>"
        )
    if r.device not in ("auto", "cpu", "cuda", "mps") and not re.fullmatch(r"cuda:\d+", r.device):
        raise RecipeError(f"device: {r.device!r} is not auto, cpu, cuda, cuda:N or mps")
    d = r.data
    if not 0.0 <= d.val_split < 1.0:
        raise RecipeError(f"data.val_split: {d.val_split} must be in [0, 1)")
    for key in ("train_limit", "val_limit"):
        value = getattr(d, key)
        if value is not None and value <= 0:
            raise RecipeError(f"data.{key}: must be a positive integer")
    if d.batch_size <= 0:
        raise RecipeError("data.batch_size: must be a positive integer")
    if isinstance(d.num_workers, str) and d.num_workers != "auto":
        raise RecipeError('data.num_workers: use a whole number >= 0 or "auto"')
    if isinstance(d.num_workers, int) and d.num_workers < 0:
        raise RecipeError('data.num_workers: must be >= 0 (0 loads in the main process) or "auto"')
    if isinstance(d.num_workers, int) and d.num_workers > MAX_WORKERS:
        raise RecipeError(
            f"data.num_workers: {d.num_workers} loader processes is too many (at most {MAX_WORKERS});"
            ' "auto" picks a number for this machine'
        )
    o = r.optimizer
    if o.name not in OPTIMIZERS:
        raise RecipeError(
            f"optimizer.name: {o.name!r} is not one of {', '.join(OPTIMIZERS)}{did_you_mean(o.name, OPTIMIZERS)}"
        )
    if not 0 < o.lr <= 10:
        raise RecipeError(f"optimizer.lr: {o.lr} must be > 0 and at most 10 (typical: 1e-4 to 1e-2)")
    if o.weight_decay < 0:
        raise RecipeError(f"optimizer.weight_decay: {o.weight_decay} must be >= 0")
    if not 0 <= o.momentum < 1:
        raise RecipeError(f"optimizer.momentum: {o.momentum} must be in [0, 1)")
    if not 0 < o.layer_decay <= 1:
        raise RecipeError("optimizer.layer_decay: must be in (0, 1]; 1 means the same lr for every layer")
    if not 0 <= r.seed < 2**63:
        raise RecipeError(f"seed: {r.seed} must be a whole number >= 0")
    if r.data_seed is not None and not 0 <= r.data_seed < 2**63:
        raise RecipeError(f"data_seed: {r.data_seed} must be a whole number >= 0 (or leave it out to use seed)")
    for i, s in enumerate(r.stages):
        where = f"stages.{i}"
        if s.epochs <= 0 or s.epochs > 100_000:
            raise RecipeError(f"{where}.epochs: must be a positive integer")
        if s.lr is not None and not 0 < s.lr <= 10:
            raise RecipeError(f"{where}.lr: {s.lr} must be > 0 and at most 10")
        if s.schedule not in SCHEDULES:
            raise RecipeError(
                f"{where}.schedule: {s.schedule!r} is not one of {', '.join(SCHEDULES)}{did_you_mean(s.schedule, SCHEDULES)}"
            )
        if s.warmup_epochs < 0 or s.warmup_epochs > s.epochs:
            raise RecipeError(f"{where}.warmup_epochs: must be between 0 and the stage's epochs ({s.epochs})")
        if s.layer_decay is not None and not 0 < s.layer_decay <= 1:
            raise RecipeError(f"{where}.layer_decay: must be in (0, 1]")
        if isinstance(s.train, str) and not (s.train in ("head", "all") or s.train.startswith("last:")):
            raise RecipeError(f'{where}.train: {s.train!r} is not "head", "all", "last:N" or a list of group names')
        if isinstance(s.train, str) and s.train.startswith("last:") and not s.train[5:].isdigit():
            raise RecipeError(f'{where}.train: "last:N" needs a whole number, e.g. "last:2"')
        if isinstance(s.train, list) and not all(isinstance(g, str) for g in s.train):
            raise RecipeError(f"{where}.train: a list of group names must hold strings")
        check_ema_decay(s.ema_decay, where)
    pre = r.model.pretrained
    if isinstance(pre, str) and not pre:
        raise RecipeError("model.pretrained: give true, false or a tag name")


def read_recipe_file(path: Path) -> dict[str, Any]:
    """Parse a recipe file; unreadable, non-UTF-8 or invalid TOML is one line naming the file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start}); save the recipe as UTF-8") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the recipe ({exc.strerror or exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: invalid TOML ({exc})") from None
    except RecursionError:
        raise RecipeError(f"{path}: invalid TOML (lists or tables nested too deeply)") from None


def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file: the path itself, or the file of a registered recipe name (``zoo list --kind recipe``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix == "" and len(path.parts) == 1:
        from ..catalog.builtin import recipe_files
        from ..catalog.lookup import catalog

        spec = catalog().get(str(path), kind="recipe")
        name = Path(str(spec.meta.get("file", ""))).name
        found = next((f for f in recipe_files() if f.name == name), None)
        if found is None:
            raise RecipeError(f"recipe {spec.name!r} (plugin {spec.plugin}) names no readable file; reinstall it")
        if found.resolve().parent != found.parent.resolve():  # a link out of the recipes folder
            raise RecipeError(
                f"recipe {spec.name!r}: {found} links outside its recipes folder ({found.resolve()}); reinstall it"
            )
        return found
    if path.exists():
        raise RecipeError(f"{path}: is not a file; give a recipe .toml file")
    raise RecipeError(f"{path}: no such recipe file (see zoo list --kind recipe)")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe TOML file (or a registered recipe name) and validate it with overrides applied."""
    path = recipe_path(path)
    data = read_recipe_file(path)
    data.setdefault("name", path.stem)
    return validate(apply_overrides(data, overrides or []), source=str(path))
