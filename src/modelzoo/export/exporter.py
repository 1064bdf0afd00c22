"""``zoo export``: a run folder to one deployable file plus a sidecar JSON, checked for parity.

The core knows no task: the run's task (:class:`modelzoo.Task`) says what the exported model takes
(``export_inputs``: named tensors made from a real validation batch), what it returns
(``export_outputs``), which module computes it (``export_module``) and which axes besides the batch
axis are dynamic (``export_axes``). The exporter

1. loads the model (``config.json`` + verified weights) and the run's validation data through the
   task (``recipe.toml`` says where it is), a batch or two;
2. writes the model file atomically (``formats.write``), then loads it back with its own runtime
   (onnxruntime, ``torch.jit.load``, ``torch.export.load``) and runs every batch (and one of a single
   example, which exercises the dynamic batch axis) through both;
3. refuses a result whose outputs differ from PyTorch's by more than the tolerance (the file is
   removed), otherwise writes the sidecar ``<file>.json`` last: preprocessing, labels, input and
   output names and shapes, the exporter used and the parity measured.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..util.files import atomic_write_text
from .formats import flatten, get_format, loader, write

#: outputs may differ from PyTorch's by this much, relative to the largest output (at least 1)
TOLERANCE = 1e-3
#: parity batches taken from the validation split, and their largest size
PARITY_BATCHES = 2
PARITY_BATCH_SIZE = 16


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote and the parity it measured."""

    path: Path
    sidecar: Path
    format: str
    exporter: str
    max_abs_diff: float
    top1_agreement: float | None
    examples: int

    def line(self) -> str:
        agree = "-" if self.top1_agreement is None else f"{self.top1_agreement:.4f}"
        return (
            f"parity ({self.exporter} vs PyTorch, {self.examples} validation examples): max abs diff"
            f" {self.max_abs_diff:.2e}, top-1 agreement {agree}"
        )


def export(run: str | Path, format: str, out: str | Path | None = None) -> ExportResult:
    """Export the model of run folder ``run`` as ``format`` into ``out`` (default ``RUN/export``)."""
    import torch

    from ..model.folder import load_model

    fmt = get_format(format)
    run = Path(run)
    if not run.is_dir():
        raise ZooError(f"{run} is not a run folder (no such directory)")
    out = Path(out) if out is not None else run / "export"
    _check_writable(out)
    model = load_model(run).cpu().eval()
    task, batches = _validation_batches(run, model)
    module = task.export_module(model)
    module.eval()
    inputs = [_checked_inputs(task.export_inputs(model, b), task.name) for b in batches]
    example = {k: v if v.shape[0] > 1 else torch.cat([v, v]) for k, v in inputs[0].items()}
    single = {k: v[:1] for k, v in inputs[0].items()}
    outputs = list(task.export_outputs(model))
    axes = task.export_axes(model, example)
    with torch.no_grad():
        reference = [flatten(module(*b.values())) for b in [*inputs, single]]
    target = out / fmt.file
    tmp = Path(tempfile.mkdtemp(prefix=f".{fmt.file}.", dir=out))
    try:
        exporter = write(fmt, module, example, outputs, axes, tmp / fmt.file)
        with open(tmp / fmt.file, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp / fmt.file, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        run_file = loader(fmt, target)
        got = [run_file(b) for b in [*inputs, single]]
        diff, agree = _parity(reference, got, fmt.name)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    examples = sum(len(next(iter(b.values()))) for b in inputs)
    scale = max(1.0, max(float(t.abs().max()) for ref in reference for t in ref if t.numel()))
    if diff > TOLERANCE * scale:
        target.unlink(missing_ok=True)
        raise ZooError(
            f"the {fmt.name} export of {run} does not match PyTorch: max abs diff {diff:.3g} (tolerance"
            f" {TOLERANCE * scale:.3g}), top-1 agreement {agree}; the file was not kept"
        )
    result = ExportResult(target, out / f"{fmt.file}.json", fmt.name, exporter, diff, agree, examples)
    sidecar = _sidecar(model, fmt.file, fmt.name, example, reference[0], outputs, axes, result)
    atomic_write_text(result.sidecar, json.dumps(sidecar, indent=2) + "\n")
    return result


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".zoo-export-", delete=True)
        probe.close()
    except OSError as exc:
        raise ZooError(f"cannot write to --out {out} ({exc.strerror or exc}); choose a writable folder") from None


def _validation_batches(run: Path, model: Any) -> tuple[Any, list[Any]]:
    """The run's task (with its data loaded as the recipe says) and a batch or two of validation data."""
    from torch.utils.data import DataLoader

    from ..engine.recipe import load_recipe
    from ..model.task import create_task

    recipe_path = run / "recipe.toml"
    if not recipe_path.is_file():
        raise ZooError(f"{run} has no recipe.toml; the parity check needs the run's validation data")
    recipe = load_recipe(recipe_path)
    recipe.data.batch_size = min(recipe.data.batch_size, PARITY_BATCH_SIZE)
    task = create_task(model.task, recipe, "cpu")
    task.load_data()
    if task.labels != model.labels:
        raise ZooError(f"the data's classes {task.labels} do not match the model's labels {model.labels}")
    task.prepare(model)
    loader_ = DataLoader(task.dataset("val"), batch_size=recipe.data.batch_size, collate_fn=task.collate)
    batches = []
    for batch in loader_:
        batches.append(batch)
        if len(batches) == PARITY_BATCHES:
            break
    if not batches:
        raise ZooError(f"{run}: the validation split is empty; the parity check needs at least one example")
    return task, batches


def _checked_inputs(inputs: Any, task: str) -> dict[str, Any]:
    import torch

    if not isinstance(inputs, dict) or not inputs or not all(isinstance(v, torch.Tensor) for v in inputs.values()):
        raise ZooError(f"task {task!r}: export_inputs must return a non-empty dict of tensors")
    return {k: v.cpu() for k, v in inputs.items()}


def _parity(reference: list[list[Any]], got: list[list[Any]], fmt: str) -> tuple[float, float | None]:
    """Max abs difference over every output of every batch; top-1 agreement (argmax over axis 1 of
    the first output, per example / position) where that output has a class axis."""
    diff, agree, total = 0.0, 0, 0
    for ref, new in zip(reference[:-1], got[:-1]):
        if len(ref) != len(new):
            raise ZooError(f"the {fmt} export returns {len(new)} outputs, PyTorch {len(ref)}")
        for a, b in zip(ref, new):
            if tuple(a.shape) != tuple(b.shape):
                raise ZooError(f"the {fmt} export returns shape {tuple(b.shape)} where PyTorch gives {tuple(a.shape)}")
            diff = max(diff, float((a.float() - b.float()).abs().max()) if a.numel() else 0.0)
        if ref[0].ndim >= 2 and ref[0].is_floating_point():
            same = ref[0].argmax(1) == new[0].argmax(1)
            agree, total = agree + int(same.sum()), total + same.numel()
    one_ref, one_new = reference[-1], got[-1]  # a batch of one: the batch axis really is dynamic
    for a, b in zip(one_ref, one_new):
        if tuple(a.shape) != tuple(b.shape):
            raise ZooError(
                f"the {fmt} export does not take a batch of 1 (shape {tuple(b.shape)}, not {tuple(a.shape)})"
            )
        diff = max(diff, float((a.float() - b.float()).abs().max()) if a.numel() else 0.0)
    return diff, (agree / total if total else None)


def _sidecar(
    model: Any, file: str, fmt: str, example: dict, first: list, outputs: list, axes: dict, result: ExportResult
) -> dict[str, Any]:
    from .. import __version__

    def shape(t: Any, dynamic: dict[int, str]) -> list[int | str]:
        return [dynamic.get(i, int(n)) for i, n in enumerate(t.shape)]

    return {
        "format": fmt,
        "file": file,
        "library": "modelzoo",
        "modelzoo_version": __version__,
        "exporter": result.exporter,
        "task": model.task,
        "backbone": model.config["backbone"]["name"],
        "head": model.config["head"]["name"],
        "labels": model.labels,
        "preprocess": model.preprocess,
        "inputs": [
            {"name": n, "dtype": str(t.dtype).removeprefix("torch."), "shape": shape(t, axes.get(n, {0: "batch"}))}
            for n, t in example.items()
        ],
        "outputs": [
            {"name": n, "dtype": str(t.dtype).removeprefix("torch."), "shape": ["batch", *map(int, t.shape[1:])]}
            for n, t in zip(outputs, first)
        ],
        "parity": {
            # two significant digits: a re-export of the same run writes the same sidecar (pushes stay no-ops)
            "max_abs_diff": float(f"{result.max_abs_diff:.1e}"),
            "top1_agreement": result.top1_agreement,
            "examples": result.examples,
        },
    }
