"""The frozen-prefix cache: a stage that fine-tunes only the last layer groups trains on what the frozen
layers below them emit, computed once per stage instead of once per batch of every epoch.

When the stage does not augment, the frozen layers' BatchNorm statistics are fixed and nothing in them
is random (no active dropout), those layers map each example to the same tensor every epoch: the input
of the first trained group (the *entry*, :func:`entry_module`). The stage then

* runs one pass over the training and validation splits that stops at the entry and keeps its inputs
  (in memory, at most :data:`LIMIT_BYTES`; each process computes its share, then every process has all);
* trains and evaluates on batches of those inputs, with the frozen modules that ran before the entry
  skipped (their ``forward`` is the identity for the stage; their weights stay in the model, so
  checkpoints, the moving average and the saved model are those of the full model).

The examples, their order, the batches and the loss are the same as without the cache, so the result
is the same up to float rounding; only the frozen layers' repeated work goes. Whether it holds is not
assumed but measured on the first batch before it is used: the skipped model fed the cached inputs must
give the outputs of the full model (eval mode), and the frozen part must give the same inputs in the
stage's training mode as in eval mode (twice: no randomness). Any difference (a model whose layers
below the entry are not a simple chain, a backbone emitting maps from below the entry, active dropout
below it) and the stage runs as it would without the cache, saying why. A task opts in with
``Task.batch_input``: the position of the model's input in its batches (a tuple stacked by the default
collate); the other positions (targets) are kept beside the cached inputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

#: the most memory the cached inputs of one stage may take (train and validation together)
LIMIT_BYTES = 2 * 1024**3


class _Stop(Exception):
    """Ends a forward pass at the entry: only the entry's input is needed."""


def common_module(params: list[str]) -> str:
    """The deepest module path that contains every parameter of ``params``."""
    parts = [p.split(".")[:-1] for p in params]
    common: list[str] = []
    for bits in zip(*parts):
        if any(b != bits[0] for b in bits):
            break
        common.append(bits[0])
    return ".".join(common)


def entry_module(
    model: nn.Module, groups: list[tuple[str, list[str]]], trained: list[str]
) -> tuple[str, str, nn.Module] | None:
    """``(group, path, module)``: the module holding the first of the ``trained`` backbone groups and
    nothing frozen, whose input is what training starts from; None when nothing is frozen below it or
    no single callable module holds that group alone."""
    names = [g for g, _ in groups]
    if not trained:
        return None
    first = min(names.index(g) for g in trained)
    if first == 0:
        return None
    group, params = groups[first]
    path = common_module(params)
    if not path:
        return None
    module = model.get_submodule(path)
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return None  # a container is never called itself: no hook on it would fire
    later = {p for _, ps in groups[first:] for p in ps}
    if any(f"{path}.{name}" not in later for name, _ in module.named_parameters()):
        return None  # the module also holds frozen layers: its input is not where training starts
    return group, path, module


@dataclass
class Prefix:
    """Where the stage's training starts, and the frozen modules that run before it."""

    group: str
    entry: nn.Module
    skipped: list[nn.Module]

    def entry_input(self, run: Any) -> torch.Tensor | None:
        """The entry's input during ``run()`` (a forward pass, stopped there)."""
        seen: list[Any] = []

        def hook(module: nn.Module, args: tuple) -> None:
            seen.append(args[0] if args else None)
            raise _Stop

        handle = self.entry.register_forward_pre_hook(hook)
        try:
            run()
        except _Stop:
            pass
        finally:
            handle.remove()
        x = seen[0] if len(seen) == 1 else None
        return x.detach() if isinstance(x, torch.Tensor) else None

    @contextlib.contextmanager
    def skipping(self) -> Iterator[None]:
        """The frozen modules before the entry pass their input through (the model's weights untouched)."""
        for module in self.skipped:
            module.forward = _identity  # an instance attribute: nn.Module.__call__ finds it first
        try:
            yield
        finally:
            for module in self.skipped:
                del module.forward


def _identity(x: Any, *args: Any, **kwargs: Any) -> Any:
    return x


def _prefix(backbone: nn.Module, entry: nn.Module, run: Any) -> list[nn.Module]:
    """The outermost backbone modules whose forward passes finished before ``entry`` was called."""
    order: list[tuple[str, nn.Module]] = []
    done: set[int] = set()
    started = False
    hooks = []

    def after(module: nn.Module, args: tuple, out: Any) -> None:
        if not started:
            done.add(id(module))

    def before_entry(module: nn.Module, args: tuple) -> None:
        nonlocal started
        started = True
        raise _Stop

    for name, module in backbone.named_modules():
        if module is not backbone:
            order.append((name, module))
            hooks.append(module.register_forward_hook(after))
    hooks.append(entry.register_forward_pre_hook(before_entry))
    try:
        run()
    except _Stop:
        pass
    finally:
        for h in hooks:
            h.remove()
    finished = {name for name, m in order if id(m) in done}
    return [m for name, m in order if name in finished and not _inside(name, finished)]


def _inside(name: str, names: set[str]) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in names for i in range(1, len(parts)))


def _buffers(modules: list[nn.Module]) -> list[torch.Tensor]:
    return [b.detach().clone() for m in modules for b in m.buffers()]


def _restore(modules: list[nn.Module], saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for b, s in zip([b for m in modules for b in m.buffers()], saved):
            b.copy_(s)


def plan(trainer: Any, trained: list[str], freeze_bn_stats: bool, batch: Any) -> tuple[Prefix | None, str]:
    """The prefix of the stage that trains ``trained``, checked on ``batch`` (the task's, on the device);
    ``(None, why)`` when the stage must run without it."""
    from .training import train_mode

    model, task = trainer.model, trainer.task
    found = entry_module(model, trainer.groups, trained)
    if found is None:
        return None, "nothing frozen below the trained groups is a module of its own"
    group, _, entry = found
    x = batch[task.batch_input]

    def full(inp: Any = None) -> Any:
        return model(x if inp is None else inp)

    was = model.training
    try:
        with torch.no_grad():
            model.eval()
            prefix = Prefix(group, entry, _prefix(model.backbone, entry, full))
            cached = prefix.entry_input(full)
            if not prefix.skipped or cached is None:
                return None, "the layers below the entry are not modules called before it"
            reference = full()
            with prefix.skipping():
                replay = full(cached)
            if not _close(reference, replay):
                return None, "the layers below the entry are not a simple chain (skipping them changes the output)"
            train_mode(model, False, freeze_bn_stats)
            saved = _buffers(prefix.skipped)
            try:
                again = [prefix.entry_input(full) for _ in range(2)]
            finally:
                _restore(prefix.skipped, saved)
            if not all(a is not None and _close(a, cached) for a in again):
                return None, "the frozen layers below the entry differ in training mode (dropout or batch statistics)"
    finally:
        model.train(was)
    return prefix, ""


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return all(_close(a[k], b[k]) for k in a)
    return False


def cached_split(trainer: Any, prefix: Prefix, split: str) -> TensorDataset | None:
    """The split's examples with the model input replaced by the entry's input, in order (None when
    they would pass :data:`LIMIT_BYTES` or a batch is not a tuple of tensors)."""
    task, pos = trainer.task, trainer.task.batch_input
    loader = trainer.loader(task.dataset(split), shuffle=False)
    columns: list[list[torch.Tensor]] | None = None
    size = 0
    trainer.model.eval()
    with torch.no_grad():
        for batch in trainer.progress.track(loader, f"frozen-layer pass ({split})"):
            if not isinstance(batch, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in batch):
                return None
            batch = task.to_device(batch)
            x = prefix.entry_input(lambda b=batch: trainer.model(b[pos]))
            if x is None:
                return None
            row = [t.detach().cpu() if i != pos else x.float().cpu().contiguous() for i, t in enumerate(batch)]
            size += sum(t.numel() * t.element_size() for t in row)
            if size > LIMIT_BYTES // 2:
                return None
            columns = columns or [[] for _ in row]
            for column, t in zip(columns, row):
                column.append(t)
    parts = trainer.gather([[torch.cat(c) for c in columns] if columns else None])
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return TensorDataset(*[torch.cat([p[i] for p in parts]) for i in range(len(parts[0]))])
