"""The Task interface: what the engine, the CLI, the model card and the Hub know about a task.

A task is a catalog entry (``Spec(kind="task")``) whose builder names a subclass of :class:`Task`.
The core calls only the methods below and never branches on a task name, so a new task
(segmentation, regression, ...) is a new plugin with zero core edits, the way every pytest feature
is a pytest plugin. Plain facts about the task (its metric, aliases, Hub pipeline tag, ``zoo
predict`` options) live in the spec's ``meta``, so listing needs no import; the class reads them
from ``self.spec``.

The engine calls, in order:

1. ``Data`` / ``validate_data(data, recipe)`` while the recipe is validated: the task's own
   ``[data]`` fields (a :class:`DataConfig` subclass), each problem one line naming the field.
2. ``load_data()``: read and check the data; set ``labels``, ``dataset_name`` and ``data_info``
   (at least ``num_train`` / ``num_val``; ``hub_id`` / ``license`` / ``source`` where known).
3. ``build_model(assemble)``: the recipe's backbone + head for this task (``assemble`` takes
   ``labels``, ``head_options`` and ``preprocess`` overrides); ``prepare(model)`` builds what depends on it.
4. Per stage: ``dataset(split, augment)`` + ``collate``, ``loss(model, batch)`` per step. When the
   backbone is frozen and the task sets ``feature_cache = True``: ``features(model, batch)`` once
   per example, then ``head_loss`` / ``evaluate_features`` on the cached tensors.
5. ``evaluate(model, loader, final)``: ``eval_batch`` per batch (picklable CPU results, so several
   processes can gather them), then ``eval_metrics(outputs, final)`` -> ``{"loss", <metric>, ...}``.
6. ``write_artifacts(result, out)`` (plots) and ``summary_extras(result)`` (summary.json).

``zoo select`` ranks candidate backbones on the user's data without fine-tuning them: it caches each
one's ``features`` and asks ``transfer_subsample`` + ``transfer_scores`` how well they suit the targets
(a task without ``transfer_scores`` does not support ``zoo select``).

Using a model: ``predict`` / ``save_predictions`` / ``show`` / ``to_json`` (``zoo predict``),
``load_eval_data`` + ``report`` (``zoo eval``), ``card`` (the Hub model card) and ``save_files``
(files that must travel with the model, recorded in ``config.json``; ``load_files`` reads them back on load).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from ..catalog.builders import import_builder
from ..errors import ZooError
from .task_use import TaskUse

if TYPE_CHECKING:
    from ..catalog.specs import Spec
    from .backbone import Backbone


@dataclass
class DataConfig:
    """The ``[data]`` fields every task has. A task's ``Data`` subclass adds its own (with defaults).

    The engine itself reads ``batch_size`` and ``num_workers``; the rest is for the task to apply.
    Field annotations use simple types (``int``, ``float``, ``str``, ``bool``, ``list[...]``,
    ``dict[...]`` and ``| None``), which the recipe validator checks before any work starts.
    """

    #: a registered dataset (``zoo list --kind dataset``), built by its plugin's builder
    dataset: str | None = None
    #: keyword options passed to that dataset's builder
    options: dict[str, Any] = field(default_factory=dict)
    #: use at most this many training examples (a random subset drawn with the data seed)
    train_limit: int | None = None
    #: use at most this many validation examples
    val_limit: int | None = None
    #: hold out this fraction of the training data when there is no validation split
    val_split: float = 0.0
    #: the global batch size
    batch_size: int = 32
    #: DataLoader worker processes, or ``auto``
    num_workers: int | str = "auto"


@dataclass
class CardInfo:
    """What a task adds to a model card (the core writes the rest: metadata, usage, training, license)."""

    #: an example input for the usage snippets (a file name, a sentence)
    example: str = "input"
    #: one line describing the model's input under "Model details"
    input: str | None = None
    #: display names of metrics (``{"map_50": "mAP@0.5"}``); others are shown as they are named
    metric_names: dict[str, str] = field(default_factory=dict)
    #: extra Markdown lines placed after the results table (per-class results, ...)
    results: list[str] = field(default_factory=list)


class Task(TaskUse):
    """Base class of a task plugin's task. Override what your task needs; the defaults are documented
    (those for folders of inputs and ``zoo eval --errors`` in :mod:`.task_use`)."""

    #: the task's ``[data]`` table (a :class:`DataConfig` subclass)
    Data: ClassVar[type[DataConfig]] = DataConfig
    #: frozen-backbone stages may train the head on cached backbone features (implement
    #: ``features``, ``head_loss`` and ``evaluate_features``); a task may decide per model by setting
    #: ``self.feature_cache`` in ``prepare`` (the engine reads it when a stage starts)
    feature_cache: bool = False
    #: the ``data.augment`` presets this task implements (its ``Data`` has an ``augment`` field); the recipe
    #: validator refuses any other with one line. Empty: the task declares none (no check by the core)
    augment_presets: ClassVar[tuple[str, ...]] = ()
    #: when several processes train a model, DistributedDataParallel must look for parameters a step
    #: leaves unused (heads a batch does not reach); it costs a graph traversal per step, so it is opt-in
    ddp_find_unused_parameters: ClassVar[bool] = False
    #: the position of the model's input in this task's training and validation batches (tuples of
    #: tensors, one row per example, as the default collate stacks them), or None. Set, it lets a stage
    #: that fine-tunes the last layer groups without augmenting train on the frozen layers' outputs,
    #: computed once (:mod:`modelzoo.engine.prefixcache`): the other positions are kept as they are, and
    #: :meth:`loss` and :meth:`evaluate` get batches with the input replaced by those outputs
    batch_input: ClassVar[int | None] = None

    def __init__(
        self,
        spec: Spec,
        recipe: Any = None,
        device: torch.device | str | None = None,
        amp_dtype: torch.dtype | None = None,
    ) -> None:
        self.spec = spec
        self.recipe = recipe
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.amp_dtype = amp_dtype
        #: image batches go channels_last in ``to_device`` (the engine sets it where measured faster:
        #: :mod:`modelzoo.engine.speed`); None: only on CUDA
        self.channels_last: bool | None = None
        #: ``track(items, desc, total=None)``: reports a long loop (scanning files...) as the engine's
        #: progress does; the engine sets it, the default reports nothing
        self.track: Callable[..., Iterable] = lambda items, desc="", total=None, unit="": items
        #: class names (or other per-output names) of the data, in model output order
        self.labels: list[str] = []
        self.dataset_name: str = ""
        self.data_info: dict[str, Any] = {}

    # -- plain facts, from the spec ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def metric(self) -> str:
        """The main validation metric (logged as ``val_<metric>``, printed by ``zoo finetune``)."""
        return self.spec.task_meta.metric

    @property
    def higher_is_better(self) -> bool:
        return self.spec.task_meta.higher_is_better

    @property
    def pipeline_tag(self) -> str | None:
        return self.spec.task_meta.pipeline_tag

    @property
    def data(self) -> DataConfig:
        """The recipe's validated ``[data]`` table (an instance of ``Data``)."""
        if self.recipe is None:
            raise ZooError(f"task {self.name!r} was created without a recipe; it cannot load data")
        return self.recipe.data

    # -- recipe -------------------------------------------------------------------------------------
    @classmethod
    def validate_data(cls, data: DataConfig, recipe: Any) -> None:
        """Check the task's own ``[data]`` fields; raise :class:`modelzoo.RecipeError` naming the field."""

    @classmethod
    def starter_data(cls, path: Path) -> dict[str, Any] | None:
        """``zoo recipe new --data PATH``: the ``[data]`` fields that read the user's data at ``path``
        (a folder or file), or None when this task does not recognise it. Default: None."""
        return None

    # -- data ---------------------------------------------------------------------------------------
    def load_data(self) -> None:
        """Read and validate the recipe's data; set ``labels``, ``dataset_name`` and ``data_info``."""
        raise NotImplementedError(f"{type(self).__name__}.load_data")

    def load_eval_data(self, path: str, model: TaskModel) -> None:
        """``zoo eval RUN --data PATH``: load PATH as the validation split, its labels matched to the model's."""
        raise ZooError(f"zoo eval --data is not supported for {self.name} models; evaluate on the run's own split")

    def registered_dataset(self, name: str) -> tuple[Spec, Callable[..., Any]]:
        """A registered dataset's spec and builder, checked to be for this task."""
        from ..catalog.builders import import_builder
        from ..catalog.lookup import catalog

        spec = catalog().get(name, kind="dataset")
        if spec.tasks and self.name not in spec.tasks:
            raise ZooError(f"dataset {spec.name!r} is for {', '.join(spec.tasks)}, not {self.name}")
        if not spec.builder:
            raise ZooError(f"dataset {spec.name!r} has no builder; its plugin cannot load it")
        return spec, import_builder(spec.builder)

    # -- model --------------------------------------------------------------------------------------
    def build_model(self, assemble: Callable[..., TaskModel]) -> TaskModel:
        """The recipe's backbone + head; ``assemble(labels=..., head_options=..., preprocess=...)`` builds it."""
        return assemble(labels=self.labels)

    def advice(self, model: TaskModel) -> list[str]:
        """Warnings about a valid but doubtful set-up (an input far smaller than the backbone was trained
        at...): printed before training starts; the run goes on."""
        return []

    def prepare(self, model: TaskModel) -> None:
        """Build what depends on the built model (transforms from its preprocessing, encoded inputs...)."""

    @property
    def in_memory(self) -> bool:
        """True when examples are tensors in memory already (no DataLoader workers needed on a CPU)."""
        return False

    @property
    def augmenting(self) -> bool:
        """True when the recipe turns data augmentation on (stages with ``augment = true`` then never
        train on cached features: augmented examples differ every epoch)."""
        return False

    def dataset(self, split: str, augment: bool = False) -> Dataset:
        """The ``"train"`` or ``"val"`` split as a torch Dataset."""
        raise NotImplementedError(f"{type(self).__name__}.dataset")

    @property
    def collate(self) -> Callable | None:
        """The DataLoader's ``collate_fn`` (None: torch's default stacking)."""
        return None

    def to_device(self, batch: Any) -> Any:
        return move_to(batch, self.device, self.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``amp_dtype`` (the engine's choice: on CUDA when the recipe enables AMP, on a CPU
        where bf16 was measured faster and close to fp32); a no-op when it is None."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def loss(self, model: TaskModel, batch: Any) -> tuple[torch.Tensor, int]:
        """The training loss of one batch and its number of examples."""
        raise NotImplementedError(f"{type(self).__name__}.loss")

    # -- feature cache (feature_cache = True) --------------------------------------------------------
    def features(self, model: TaskModel, batch: Any) -> tuple[Any, Any]:
        """The frozen backbone's features and the targets of one batch (what the cache stores): each a
        tensor or a tuple / list / dict of tensors (a pyramid of maps...), every tensor with one row per
        example; the cache joins them over batches, keeps the structure and hands batches of it back to
        :meth:`head_loss` and :meth:`evaluate_features`. Floating tensors are stored as float32 on the CPU."""
        raise NotImplementedError(f"{type(self).__name__}.features")

    def head_loss(self, model: TaskModel, feats: Any, targets: Any) -> torch.Tensor:
        """The head's loss on one batch of cached features and targets (nests as :meth:`features` returned them)."""
        raise NotImplementedError(f"{type(self).__name__}.head_loss")

    def evaluate_features(self, model: TaskModel, feats: Any, targets: Any) -> dict[str, Any]:
        """Validation metrics of the head on all cached validation features (``{"loss", <metric>}``)."""
        raise NotImplementedError(f"{type(self).__name__}.evaluate_features")

    # -- ranking backbones without fine-tuning them (zoo select) -------------------------------------
    #: the views of a candidate backbone ``zoo select`` scores with :meth:`transfer_scores`:
    #: ``"final"`` (what :meth:`features` returns: what the head sees) and ``"entry"`` (the features
    #: entering the first layer group the recipe fine-tunes, pooled over space to (N, C); meaningless
    #: for a task that predicts per pixel, which leaves it out). The ranking uses the entry scores when
    #: every candidate has them, else the final ones.
    select_views: ClassVar[tuple[str, ...]] = ("final", "entry")

    def transfer_scores(
        self, feats: Any, targets: Any, seed: int = 0, *, model: TaskModel | None = None, view: str = "final"
    ) -> dict[str, float]:
        """How well one frozen backbone's cached features suit these ``targets``, without fine-tuning:
        ``{score name: value}``, every score higher-is-better, the most trusted first; ``{}`` means
        "this view does not apply" (the candidate is then ranked by its other view).

        ``feats`` are the rows of the subsample: for ``view="final"`` what :meth:`features` returned
        (a tensor or a nest of tensors), for ``view="entry"`` an (N, C) tensor. ``model`` is the
        candidate's model (level shapes, labels). ``zoo select`` calls it for every candidate and each of
        several subsamples (the same ones for every candidate, drawn by :meth:`transfer_subsample`),
        averages each score over the subsamples, ranks the candidates by each score and averages the
        ranks: only each score's order across backbones matters, not its scale. Deterministic for a
        given ``seed``. Plugins written before ``model`` and ``view`` existed are called without them.
        Default: the task does not support ``zoo select``."""
        raise ZooError(f"task {self.name!r} does not support zoo select: its plugin implements no Task.transfer_scores")

    def transfer_subsample(self, targets: Any, n: int, seed: int = 0) -> torch.Tensor:
        """Indices of at most ``n`` of the examples whose ``targets`` are given, for
        :meth:`transfer_scores`: the same indices for every candidate, so their scores compare.
        Default: a random subset; a task with classes should keep every class represented."""
        from ..util.nest import nest_rows

        rows = nest_rows(targets)
        gen = torch.Generator().manual_seed(seed)
        return torch.randperm(rows, generator=gen)[: max(1, min(n, rows))].sort().values

    # -- evaluation ---------------------------------------------------------------------------------
    def eval_batch(self, model: TaskModel, batch: Any) -> Any:
        """What one validation batch contributes (on the CPU, picklable): predictions, targets, loss."""
        raise NotImplementedError(f"{type(self).__name__}.eval_batch")

    def eval_metrics(self, outputs: list[Any], final: bool = False) -> dict[str, Any]:
        """Metrics from every batch's ``eval_batch`` output: ``{"loss": float, <metric>: float, ...}``;
        ``final`` (the end of a run, ``zoo eval``) may add per-class detail."""
        raise NotImplementedError(f"{type(self).__name__}.eval_metrics")

    @torch.no_grad()
    def evaluate(
        self,
        model: TaskModel,
        loader: Iterable,
        final: bool = False,
        gather: Callable[[list[Any]], list[Any]] | None = None,
    ) -> dict[str, Any]:
        """Evaluate on ``loader``; ``gather`` joins the outputs of several processes (distributed runs:
        each example is evaluated by exactly one process, so outputs can simply be concatenated)."""
        model.eval()
        outputs = [self.eval_batch(model, self.to_device(batch)) for batch in loader]
        if gather is not None:
            outputs = gather(outputs)
        return self.eval_metrics(outputs, final)

    # -- what a run writes --------------------------------------------------------------------------
    def write_artifacts(self, result: dict[str, Any], out: Path) -> list[str]:
        """Plots and other files beyond the training curves; return the names written."""
        return []

    def summary_extras(self, result: dict[str, Any]) -> dict[str, Any]:
        """Extra entries for ``summary.json`` (per-class results, counts of skipped data...)."""
        return {}

    def save_files(self, model: TaskModel, folder: Path) -> list[str]:
        """Data files that must travel with the model (a class list...); they are recorded in config.json."""
        return []

    def load_files(self, model: TaskModel, folder: Path) -> None:
        """Read back what :meth:`save_files` wrote when a saved model is loaded (e.g. tuned thresholds
        kept on the model as an attribute). Default: nothing."""

    # -- using a model ------------------------------------------------------------------------------
    def predict(self, model: TaskModel, inputs: Any, **options: Any) -> list[Any]:
        """One prediction per input (options: the task's ``predict_options``)."""
        raise NotImplementedError(f"{type(self).__name__}.predict")

    def save_predictions(self, model: TaskModel, inputs: list[Any], results: list[Any], **options: Any) -> list[Path]:
        """Files ``zoo predict`` writes when an option asks for them (e.g. images with boxes drawn)."""
        return []

    def show(self, model: TaskModel, inputs: list[Any], results: list[Any], **options: Any) -> str:
        """How ``zoo predict`` prints the results."""
        return "\n".join(f"{item}: {result}" for item, result in zip(inputs, results))

    def to_json(self, inputs: list[Any], results: list[Any], *, model: TaskModel | None = None) -> list[dict[str, Any]]:
        """``zoo predict --json``: one JSON object per input (``model``: the model that predicted, for its
        labels; plugins written before it existed are called without it)."""
        return [{"input": str(item), "prediction": result} for item, result in zip(inputs, results)]

    def report(self, result: dict[str, Any], examples: int | None = None) -> str:
        """How ``zoo eval`` prints a final evaluation."""
        line = "  ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float))
        return line + (f"  ({examples} examples)" if examples is not None else "")

    def card(self, config: dict[str, Any], summary: dict[str, Any]) -> CardInfo:
        """What this task adds to the model card of a pushed model."""
        return CardInfo()

    # -- deployable artifacts (zoo export) ----------------------------------------------------------
    def export_inputs(self, model: TaskModel, batch: Any) -> dict[str, torch.Tensor]:
        """The exported model's named inputs, made from one validation batch (as the task's DataLoader
        yields it); axis 0 of each is the batch axis. Default: the batch's first element (``(x, y)``
        batches) or the batch itself, named ``input``."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(x, torch.Tensor):
            raise ZooError(
                f"task {self.name!r} cannot export: its batches are not tensors (implement Task.export_inputs)"
            )
        return {"input": x}

    def export_outputs(self, model: TaskModel) -> list[str]:
        """Names of what :meth:`export_module` returns, in order. Default: one output, ``output``."""
        return ["output"]

    def export_module(self, model: TaskModel) -> nn.Module:
        """The module that is exported: called with :meth:`export_inputs`' tensors positionally, it returns
        a tensor (or a tuple, in :meth:`export_outputs` order). Default: the model itself. A task whose
        models cannot be exported raises :class:`ZooError` saying why."""
        return model

    def export_axes(self, model: TaskModel, inputs: dict[str, torch.Tensor]) -> dict[str, dict[int, str]]:
        """The dynamic axes of each input, ``{name: {axis: axis name}}``. Default: axis 0 (``batch``) of
        every input; a task adds others (a sequence length)."""
        return {name: {0: "batch"} for name in inputs}


def move_to(batch: Any, device: torch.device, channels_last: bool | None = None) -> Any:
    """Move tensors (also inside dicts, lists and tuples) to ``device``; image batches (4-D float) go
    channels_last when ``channels_last`` (None: on CUDA)."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        wanted = device.type == "cuda" if channels_last is None else channels_last
        if wanted and batch.ndim == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: move_to(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device, channels_last) for v in batch)
    return batch


class TaskModel(nn.Module):
    """Backbone + head for one task, carrying its output names (labels) and rebuild config."""

    def __init__(self, backbone: Backbone, head: nn.Module, config: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.config = config

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def labels(self) -> list[str]:
        return list(self.config.get("labels") or [])

    @property
    def preprocess(self) -> dict[str, Any]:
        return dict(self.config.get("preprocess") or {})

    def forward(self, *inputs: Any, step: Any = None) -> Any:
        """``head(backbone(x))``; or ``step(self, *inputs)``: a task whose training step is more than that
        (several losses computed inside the head) runs it *through* ``forward``, so wrappers that hook ``forward``
        (DistributedDataParallel, ``torch.compile``) see the whole step."""
        if step is not None:
            return step(self, *inputs)
        return self.head(self.backbone(*inputs))

    def predict(self, inputs: Any, **options: Any) -> list:
        """Predictions per input, as the model's task makes them (``zoo list --kind task`` names the
        tasks; their ``predict_options`` are the accepted options, e.g. ``top_k`` for classifiers)."""
        return self.task_object.predict(self, inputs, **options)

    @property
    def task_object(self) -> Task:
        """The model's :class:`Task` (created without a recipe, on the model's device): its ``predict``,
        ``show``, ``to_json`` and ``save_predictions`` work on this model."""
        return create_task(self.task, device=next(self.parameters()).device)

    def write_predictions(self, inputs: Any, results: list | None = None, **options: Any) -> list[Path]:
        """:func:`write_predictions` for this model."""
        return write_predictions(self, inputs, results, **options)


def write_predictions(model: TaskModel, inputs: Any, results: list | None = None, **options: Any) -> list[Path]:
    """Write the files ``zoo predict`` writes (coloured masks, images with boxes...) from Python: the
    model's task's ``save_predictions`` with ``options`` (e.g. ``out="preds/"``; the options its
    ``zoo predict`` flags name, ``zoo predict --help``); ``results`` are predicted first when not
    given. Returns the paths written."""
    task = model.task_object
    inputs = list(inputs)
    if results is None:
        results = task.predict(model, inputs, **options)
    return list(task.save_predictions(model, inputs, results, **options))


def task_fingerprint(task: Task) -> str:
    """A short digest of the task plugin's code (distribution, version, source): the one rule by
    which every cache of task-computed results (cached features, transfer scores) notices that the
    plugin was edited or upgraded (:func:`modelzoo.catalog.plugins.code_fingerprint`)."""
    import hashlib
    import json

    from ..catalog.plugins import code_fingerprint

    facts = code_fingerprint(type(task), getattr(task.spec, "plugin", None))
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:20]


def call_task(method: Callable[..., Any], *args: Any, **optional: Any) -> Any:
    """Call a task method with ``args`` and those ``optional`` keywords its signature accepts: the core
    hands newer arguments (``model=``, ``view=``) to plugins written before they existed, which then
    keep working unchanged."""
    import inspect

    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return method(*args)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        optional = {k: v for k, v in optional.items() if k in params}
    return method(*args, **optional)


def required_plugins(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The plugins a saved model needs, from its ``config.json`` data: ``[{"plugin", "distribution",
    "version"}]`` of the plugins that provide its task, backbone and head (the core left out), as
    installed now. The engine records this in the config when it trains a model."""
    from ..catalog.lookup import catalog
    from ..catalog.plugins import entry_points

    cat = catalog()
    wanted: list[tuple[str, str]] = [("task", str(config.get("task", "")))]
    wanted += [(kind, str((config.get(kind) or {}).get("name", ""))) for kind in ("backbone", "head")]
    names: list[str] = []
    for kind, name in wanted:
        try:
            spec = cat.task(name) if kind == "task" else cat.get(name, kind=kind)
        except Exception:  # a Hub checkpoint or an uninstalled plugin's entry: nothing to name
            continue
        if spec.plugin and spec.plugin not in names:
            names.append(spec.plugin)
    eps = {ep.name: ep for ep in entry_points()}
    found = []
    for name in names:
        dist = eps[name].dist if name in eps else None
        distribution = dist.metadata["Name"] if dist is not None else None
        if distribution == "modelzoo":
            continue
        found.append({"plugin": name, "distribution": distribution, "version": dist.version if dist else None})
    return found


def task_spec(name: str) -> Spec:
    """The catalog entry of a task name or alias; did-you-mean on a miss."""
    from ..catalog.lookup import catalog

    return catalog().task(name)


def task_class(name: str) -> tuple[Spec, type[Task]]:
    """The spec and the imported :class:`Task` subclass of a task name or alias."""
    spec = task_spec(name)
    cls = import_builder(spec.builder or "")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ZooError(
            f"task {spec.name!r} (plugin {spec.plugin}): builder {spec.builder} is not a modelzoo.Task subclass;"
            " fix or reinstall that plugin"
        )
    return spec, cls


def create_task(name: str, recipe: Any = None, device: Any = None, amp_dtype: Any = None) -> Task:
    """An instance of the task ``name`` (for a recipe's run, or with no recipe to use a model)."""
    spec, cls = task_class(name)
    try:
        return cls(spec, recipe=recipe, device=device, amp_dtype=amp_dtype)
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(
            f"task {spec.name!r} (plugin {spec.plugin}) failed to start: {type(exc).__name__}: {exc}"
        ) from None
