"""What the trained part of a fine-tune receives: a second view of a candidate for ``zoo select``.

Probe, kNN and LogME score what a backbone's *last* layer emits when frozen. A recipe that fine-tunes
the last layer groups (``train = "last:3"``) rewrites exactly those layers, so their frozen output
understates a backbone whose top layers were shaped for other inputs (another resolution, another
domain). What such a fine-tune cannot change is what its first trained group *receives* from the
frozen layers below: these are the entry features. ``zoo select`` scores them with the same
estimators, beside the final features.

They are taken with a forward pre-hook on the module that holds the first trained group, during
the feature pass the head stage needs anyway (or, when those features come from the cache, in a
pass that stops at that module), pooled over space, and cached by the feature key and the group.
Maps are average-pooled over space, channels-first (``[B, C, H, W]``) or channels-last
(``[B, H, W, C]``), told apart by the entry module's own input width; flat vectors are used as they
are. Anything else is not scored: a token sequence would need its padding mask, which a hook does not
see, and a map whose layout the module's width does not settle is left alone rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..engine.prefixcache import entry_module
from ..engine.training import backbone_groups, select_groups


@dataclass
class Entry:
    """The first layer group a recipe trains, and the module whose input is its entry features."""

    group: str
    path: str
    module: nn.Module
    #: the width the module expects at its input (its first convolution, linear or norm layer), if known
    channels: int | None = None


class _Enough(Exception):
    """Raised by the hook to stop a forward pass that only needs the entry features."""


def entry_point(model: nn.Module, recipe) -> Entry | None:
    """Where the recipe's training starts, or None when there is nothing frozen below it (a recipe
    that trains everything or only the head) or no single module holds that group alone."""
    groups = backbone_groups(model)
    trained: set[str] = set()
    for i, stage in enumerate(recipe.stages):
        trained.update(select_groups(stage.train, groups, f"stages[{i}]"))
    found = entry_module(model, groups, sorted(trained))
    if found is None:
        return None
    group, path, module = found
    return Entry(group, path, module, input_width(module))


def input_width(module: nn.Module) -> int | None:
    """The input width of the first layer in ``module`` that declares one."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.conv._ConvNd):
            return int(layer.in_channels)
        if isinstance(layer, nn.Linear):
            return int(layer.in_features)
        if isinstance(layer, nn.LayerNorm):
            return int(layer.normalized_shape[-1])
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            return int(layer.num_features)
    return None


def pool(x: torch.Tensor, channels: int | None) -> torch.Tensor | None:
    """A map -> ``[B, C]`` by the spatial mean, its channel axis found by ``channels`` (first or
    last; None when neither or both match); ``[B, C]`` as it is; anything else: None."""
    if x.ndim == 4 and channels is not None:
        first, last = x.shape[1] == channels, x.shape[-1] == channels
        if first != last:
            return x.float().mean(dim=(2, 3) if first else (1, 2))
        return None
    if x.ndim == 2:
        return x.float()
    return None


@contextmanager
def capture(entry: Entry, stop: bool = False) -> Iterator[list[torch.Tensor | None]]:
    """Collect the pooled input of ``entry.module`` at every forward pass; with ``stop``, end each
    pass there (the caller catches nothing: :func:`forward_until` does)."""
    seen: list[torch.Tensor | None] = []

    def hook(module: nn.Module, args: tuple) -> None:
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        seen.append(None if x is None else pool(x.detach(), entry.channels))
        if stop:
            raise _Enough

    handle = entry.module.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def forward_until(run_batch) -> None:
    """Run ``run_batch()`` under ``capture(..., stop=True)``: the pass ends at the entry module."""
    try:
        run_batch()
    except _Enough:
        pass


def stack(seen: list[torch.Tensor | None], rows: int, total: int) -> torch.Tensor | None:
    """The first ``rows`` pooled rows captured (the train split comes first), or None when some
    batch could not be pooled or the hook did not see exactly ``total`` rows (a module called twice
    per forward pass, say: then the rows would not be the examples)."""
    if not seen or any(s is None for s in seen):
        return None
    feats = torch.cat([s.cpu() for s in seen if s is not None])
    return feats[:rows] if len(feats) == total else None
