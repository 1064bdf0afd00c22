"""The three deployable formats: how each is written from a module + named example inputs, and how
the written file is loaded back *by its own runtime* for the parity check.

* ``onnx``: ``torch.onnx.export`` with the torch.export-based ("dynamo") exporter, which needs
  ``onnxscript``; when that exporter cannot handle a model (or onnxscript is missing) the legacy
  TorchScript-based exporter is tried. Loaded back with onnxruntime (CPU).
* ``torchscript``: ``torch.jit.trace`` (the model's Python control flow is recorded for these inputs;
  the parity check on other batches, of other sizes, catches what tracing froze). Loaded back with
  ``torch.jit.load``.
* ``exported-program``: ``torch.export.export`` + ``torch.export.save`` (a ``.pt2`` archive); loaded
  back with ``torch.export.load(...).module()``.

Every input gets a dynamic batch axis (axis 0) plus whatever other axes the task declares dynamic
(a sequence length). Nothing here imports torch, onnx or onnxruntime at module import time.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ZooError


@dataclass(frozen=True)
class Format:
    """One export format: its file name and what it needs installed."""

    name: str
    #: the model file's name in the export folder (the sidecar is ``<file>.json``)
    file: str
    #: runtime packages the format needs (``pip install`` names), checked before any work
    needs: tuple[str, ...] = ()


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", "model.onnx", ("onnx", "onnxruntime")),
    "torchscript": Format("torchscript", "model.torchscript.pt"),
    "exported-program": Format("exported-program", "model.pt2"),
}
#: ONNX opset the exporters target
OPSET = 18


def get_format(name: str) -> Format:
    if name not in FORMATS:
        from ..errors import did_you_mean

        raise ZooError(f"unknown export format {name!r}{did_you_mean(name, FORMATS)} (formats: {', '.join(FORMATS)})")
    fmt = FORMATS[name]
    import importlib.util

    missing = [pkg for pkg in fmt.needs if importlib.util.find_spec(pkg) is None]
    if missing:
        raise ZooError(
            f"--format {name} needs {' and '.join(missing)}: pip install {' '.join(missing)}"
            " (or pip install 'modelzoo[export]')"
        )
    return fmt


def exported_files() -> list[str]:
    """Every file name an export writes (model files and their sidecars): what a push may carry."""
    return [name for fmt in FORMATS.values() for name in (fmt.file, fmt.file + ".json")]


@contextlib.contextmanager
def _quiet():
    """Exporters print progress and deprecation notes; a ``zoo`` command prints one line per result."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _dynamic_shapes(module: Any, names: list[str], axes: dict[str, dict[int, str]]) -> tuple[Any, ...]:
    """torch.export's ``dynamic_shapes``, shaped like ``forward``'s parameters: a ``forward(*inputs)``
    takes all inputs as one tuple argument."""
    import inspect

    from torch.export import Dim

    shapes = tuple({axis: Dim.DYNAMIC for axis in axes.get(name, {0: "batch"})} for name in names)
    params = list(inspect.signature(module.forward).parameters.values())
    if params and params[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return (shapes,)
    return shapes


def write(fmt: Format, module: Any, inputs: dict[str, Any], outputs: list[str], axes: dict, path: Path) -> str:
    """Write ``module`` (called with ``inputs`` positionally) to ``path``; returns the exporter used."""
    args = tuple(inputs.values())
    names = list(inputs)
    with _quiet():
        if fmt.name == "torchscript":
            import torch

            traced = torch.jit.trace(module, args, check_trace=False, strict=False)
            traced.save(str(path))
            return "torch.jit.trace"
        if fmt.name == "exported-program":
            import torch

            program = torch.export.export(
                module, args, dynamic_shapes=_dynamic_shapes(module, names, axes), strict=False
            )
            torch.export.save(program, str(path))
            return "torch.export"
        return _write_onnx(module, args, names, outputs, axes, path)


def _write_onnx(module: Any, args: tuple, names: list[str], outputs: list[str], axes: dict, path: Path) -> str:
    import importlib.util

    import torch

    first_error = None
    if importlib.util.find_spec("onnxscript") is not None:
        try:
            program = torch.onnx.export(
                module,
                args,
                input_names=names,
                output_names=outputs,
                dynamic_shapes=_dynamic_shapes(module, names, axes),
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
            program.save(str(path), external_data=False)
            _name_dynamic_axes(path, names, axes)
            return "torch.onnx (dynamo)"
        except Exception as exc:  # the legacy exporter below may still manage
            first_error = exc
    try:
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes={**{n: axes.get(n, {0: "batch"}) for n in names}, **{o: {0: "batch"} for o in outputs}},
            opset_version=OPSET,
            dynamo=False,
        )
    except Exception as exc:
        detail = first_error or exc
        raise ZooError(
            f"torch.onnx cannot export this model ({type(detail).__name__}: {str(detail).splitlines()[0][:200]})"
        ) from None
    return "torch.onnx (torchscript)"


def _name_dynamic_axes(path: Path, names: list[str], axes: dict[str, dict[int, str]]) -> None:
    """torch.export names dynamic dimensions ``s0``, ``s21``...; an ONNX user should read ``batch``."""
    import onnx

    model = onnx.load(str(path))
    rename: dict[str, str] = {}
    for value in model.graph.input:
        if value.name in names:
            dims = value.type.tensor_type.shape.dim
            for axis, label in axes.get(value.name, {0: "batch"}).items():
                if axis < len(dims) and dims[axis].dim_param:
                    rename.setdefault(dims[axis].dim_param, label)
    if not rename:
        return
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in rename:
                dim.dim_param = rename[dim.dim_param]
    onnx.save(model, str(path))


def loader(fmt: Format, path: Path) -> Callable[[dict[str, Any]], list[Any]]:
    """The written file, loaded by its own runtime: ``run({name: tensor}) -> [output tensors]``."""
    import torch

    if fmt.name == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one thread: the same sums in the same order, the same parity every time
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]

        def run_onnx(inputs: dict[str, Any]) -> list[Any]:
            feed = {n: inputs[n].detach().cpu().numpy() for n in names}
            return [torch.from_numpy(o) for o in session.run(None, feed)]

        return run_onnx
    with _quiet():
        if fmt.name == "torchscript":
            module = torch.jit.load(str(path), map_location="cpu")
        else:
            module = torch.export.load(str(path)).module()

    def run_torch(inputs: dict[str, Any]) -> list[Any]:
        with torch.no_grad():
            return flatten(module(*inputs.values()))

    return run_torch


def flatten(result: Any) -> list[Any]:
    """A module's output (a tensor, or a tuple / list / dict of them) as a list of tensors."""
    if isinstance(result, dict):
        return [t for v in result.values() for t in flatten(v)]
    if isinstance(result, (tuple, list)):
        return [t for v in result for t in flatten(v)]
    return [result]
