"""Fine-tune recipes: TOML in, a fully validated :class:`Recipe` out.

Every field is checked before any work starts, and each problem is reported as one line naming
the field and the fix. ``--set dotted.key=value`` overrides any field (``stages.1.epochs=5``).
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import RecipeError, did_you_mean
from .tasks import normalize_task

SCHEDULES = ("constant", "cosine", "onecycle")
OPTIMIZERS = ("adamw", "sgd")
AUGMENTS = ("none", "light")


@dataclass
class ModelCfg:
    backbone: str
    head: str = "linear"
    pretrained: bool | str = True
    head_options: dict[str, Any] = field(default_factory=dict)
    backbone_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataCfg:
    dataset: str | None = None
    path: str | None = None
    train_dir: str = "train"
    val_dir: str = "val"
    val_split: float = 0.0
    train_limit: int | None = None
    val_limit: int | None = None
    image_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    batch_size: int = 32
    num_workers: int | str = "auto"
    augment: str = "none"
    on_bad_image: str = "error"
    # task-specific data (text and detection adapters): files, columns, formats
    format: str | None = None
    train_file: str | None = None
    val_file: str | None = None
    images_dir: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    labels: list[str] | None = None
    max_length: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerCfg:
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9
    layer_decay: float = 1.0


@dataclass
class StageCfg:
    name: str
    train: str | list[str] = "head"
    epochs: int = 1
    lr: float | None = None
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    layer_decay: float | None = None
    augment: bool = False
    #: keep every BatchNorm layer's running statistics fixed, also in unfrozen groups (small batches,
    #: or data far from the pretraining distribution, make batch statistics a poor estimate)
    freeze_bn_stats: bool = False


@dataclass
class Recipe:
    name: str
    model: ModelCfg
    data: DataCfg
    stages: list[StageCfg]
    task: str = "image-classification"
    description: str = ""
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    amp: bool = True
    optimizer: OptimizerCfg = field(default_factory=OptimizerCfg)
    reference: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(asdict(self))

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


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
        if not sep or not key:
            raise RecipeError(f"--set {item!r}: expected dotted.key=value, e.g. --set data.batch_size=64")
        target: Any = data
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(target, list):
                if not part.isdigit() or int(part) >= len(target):
                    raise RecipeError(
                        f"--set {key}: {'.'.join(parts[:i])} has {len(target)} items; index {part!r} is out of range"
                    )
                if last:
                    target[int(part)] = _parse_value(raw)
                else:
                    target = target[int(part)]
            elif last:
                target[part] = _parse_value(raw)
            else:
                target = target.setdefault(part, {})
    return data


# -- validation -------------------------------------------------------------------------------
def _section(cls, data: Any, where: str, required: tuple[str, ...] = ()):
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: expected a table, got {type(data).__name__}")
    known = {f for f in cls.__dataclass_fields__}
    for key in data:
        if key not in known:
            raise RecipeError(f"{where}.{key}: unknown field{did_you_mean(key, known)}")
    for key in required:
        if key not in data:
            raise RecipeError(f"{where}.{key}: required field is missing")
    obj = cls(**data)
    for name, fdef in cls.__dataclass_fields__.items():
        _check_type(f"{where}.{name}" if where else name, getattr(obj, name), fdef.type)
    return obj


def _check_type(where: str, value: Any, annotation: str) -> None:
    """Check the simple annotations recipes use (int, float, str, bool, unions, lists, dicts)."""
    allowed = [a.strip() for a in annotation.split("|")]
    ok = False
    for a in allowed:
        if a == "None" and value is None:
            ok = True
        elif a == "int" and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        elif a == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = True
        elif a == "str" and isinstance(value, str):
            ok = True
        elif a == "bool" and isinstance(value, bool):
            ok = True
        elif a.startswith("list[") and isinstance(value, list):
            ok = True
        elif a.startswith("dict[") and isinstance(value, dict):
            ok = True
        elif a in ("ModelCfg", "DataCfg", "OptimizerCfg", "StageCfg", "list[StageCfg]"):
            ok = True
    if not ok:
        raise RecipeError(f"{where}: expected {annotation.replace('None', 'nothing')}, got {value!r}")


def validate(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Build a :class:`Recipe` from parsed TOML, or raise a one-line :class:`RecipeError`."""
    data = copy.deepcopy(data)
    top = {k: v for k, v in data.items() if k not in ("model", "data", "stages", "optimizer")}
    for key in ("model", "data", "stages"):
        if key not in data:
            raise RecipeError(f"{source}: [{key}] is missing; see zoo/*.toml for a complete recipe")
    model = _section(ModelCfg, data["model"], "model", required=("backbone",))
    dcfg = _section(DataCfg, data["data"], "data")
    opt = _section(OptimizerCfg, data.get("optimizer", {}), "optimizer")
    if not isinstance(data["stages"], list) or not data["stages"]:
        raise RecipeError('stages: give at least one [[stages]] table (e.g. train = "head", epochs = 3)')
    stages = []
    for i, raw in enumerate(data["stages"]):
        if isinstance(raw, dict):
            raw = {"name": f"stage{i}", **raw}
        stages.append(_section(StageCfg, raw, f"stages.{i}"))
    recipe = Recipe(model=model, data=dcfg, stages=stages, optimizer=opt, **_top_fields(top, source))
    _check_values(recipe)
    return recipe


def _top_fields(top: dict[str, Any], source: str) -> dict[str, Any]:
    known = {"name", "task", "description", "seed", "device", "compile", "amp", "reference"}
    for key in top:
        if key not in known:
            raise RecipeError(
                f"{key}: unknown top-level field{did_you_mean(key, known | {'model', 'data', 'stages', 'optimizer'})}"
            )
    top = dict(top)
    top.setdefault("name", Path(source).stem if source != "recipe" else "recipe")
    for key, typ in (
        ("name", "str"),
        ("task", "str"),
        ("description", "str"),
        ("seed", "int"),
        ("device", "str"),
        ("compile", "bool"),
        ("amp", "bool"),
        ("reference", "dict[str, Any]"),
    ):
        if key in top:
            _check_type(key, top[key], typ)
    return top


def _check_values(r: Recipe) -> None:
    try:
        r.task = normalize_task(r.task)
    except Exception as exc:
        raise RecipeError(f"task: {exc}") from None
    if r.device not in ("auto", "cpu", "cuda", "mps") and not r.device.startswith("cuda:"):
        raise RecipeError(f"device: {r.device!r} is not auto, cpu, cuda, cuda:N or mps")
    d = r.data
    if not 0.0 <= d.val_split < 1.0:
        raise RecipeError(f"data.val_split: {d.val_split} must be in [0, 1)")
    for key in ("train_limit", "val_limit", "image_size"):
        value = getattr(d, key)
        if value is not None and value <= 0:
            raise RecipeError(f"data.{key}: must be a positive integer")
    if d.batch_size <= 0:
        raise RecipeError("data.batch_size: must be a positive integer")
    if isinstance(d.num_workers, str) and d.num_workers != "auto":
        raise RecipeError('data.num_workers: use an integer or "auto"')
    if d.augment not in AUGMENTS:
        raise RecipeError(f"data.augment: {d.augment!r} is not one of {', '.join(AUGMENTS)}")
    if d.on_bad_image not in ("error", "skip"):
        raise RecipeError('data.on_bad_image: use "error" (stop with the file\'s name) or "skip" (count and skip)')
    for key in ("mean", "std"):
        value = getattr(d, key)
        if value is not None and len(value) != 3:
            raise RecipeError(f"data.{key}: give 3 numbers (R, G, B)")
    o = r.optimizer
    if o.name not in OPTIMIZERS:
        raise RecipeError(
            f"optimizer.name: {o.name!r} is not one of {', '.join(OPTIMIZERS)}{did_you_mean(o.name, OPTIMIZERS)}"
        )
    if o.lr <= 0:
        raise RecipeError("optimizer.lr: must be > 0")
    if not 0 < o.layer_decay <= 1:
        raise RecipeError("optimizer.layer_decay: must be in (0, 1]; 1 means the same lr for every layer")
    for i, s in enumerate(r.stages):
        where = f"stages.{i}"
        if s.epochs <= 0:
            raise RecipeError(f"{where}.epochs: must be a positive integer")
        if s.lr is not None and s.lr <= 0:
            raise RecipeError(f"{where}.lr: must be > 0")
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
    pre = r.model.pretrained
    if isinstance(pre, str) and not pre:
        raise RecipeError("model.pretrained: give true, false or a tag name")
    from .adapters import adapter_class

    adapter_class(r.task).validate_recipe(r)


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe TOML file (or a registered recipe name) and validate it with overrides applied."""
    path = Path(path)
    if not path.is_file():
        from .catalog import catalog

        if path.suffix == "" and len(path.parts) == 1:
            from .builtin import recipe_files

            spec = catalog().get(str(path), kind="recipe")
            name = Path(spec.meta["file"]).name
            path = next((f for f in recipe_files() if f.name == name), path)
        else:
            raise RecipeError(f"{path}: no such recipe file (see zoo list --kind recipe)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: invalid TOML ({exc})") from None
    data.setdefault("name", path.stem)
    return validate(apply_overrides(data, overrides or []), source=str(path))
