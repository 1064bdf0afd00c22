"""An exponential moving average of the weights a stage trains (``stages.N.ema_decay``).

After every optimizer step ``ema = d * ema + (1 - d) * weights`` over the stage's trainable parameters
and the model's floating-point buffers (BatchNorm statistics), with timm's warm-up of the decay,
``d = min(decay, (1 + t) / (10 + t))`` at update ``t``, so a short fine-tune is not dominated by its
starting weights. Each epoch is evaluated with the averaged weights, and they are what the stage
ends with (so what is saved). The average and its update count travel in the checkpoint: a resumed
run continues it exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def tracked(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a stage changes: its trainable parameters and every floating-point buffer, by name."""
    live = {n: p for n, p in model.named_parameters() if p.requires_grad}
    live.update((n, b) for n, b in model.named_buffers() if b.is_floating_point())
    return live


def load_into(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` (a subset of the model's parameters and buffers, by name) into the model."""
    live = dict(model.named_parameters())
    live.update(model.named_buffers())
    with torch.no_grad():
        for name, value in tensors.items():
            live[name].copy_(value)


def copy_of(tensors: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    return {n: t.detach().to(device, copy=True) for n, t in tensors.items()}


class WeightEMA:
    """The moving average of one stage's weights."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = copy_of(tracked(model), _device(model))

    def rate(self) -> float:
        """This update's decay: the configured one, warmed up over the first updates."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.rate()
        self.updates += 1
        live = tracked(model)
        names = [n for n in self.shadow if n in live]
        torch._foreach_lerp_([self.shadow[n] for n in names], [live[n].detach() for n in names], 1.0 - d)

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own after it."""
        saved = copy_of(tracked(model), _device(model))
        load_into(model, self.shadow)
        try:
            yield
        finally:
            load_into(model, saved)

    def commit(self, model: nn.Module) -> None:
        """The model keeps the averaged weights (the end of the stage)."""
        load_into(model, self.shadow)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        shadow = state["shadow"]
        if set(shadow) != set(self.shadow):
            raise KeyError("ema: the averaged weights do not match the stage's trainable weights")
        self.updates = int(state["updates"])
        with torch.no_grad():
            for n, t in shadow.items():
                self.shadow[n].copy_(t)


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters())).device
