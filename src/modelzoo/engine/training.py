"""The pieces of the transfer-learning recipe the engine is built from, each a plain function.

Devices and seeds, layer groups (which the backbone declares) and what a stage trains, BatchNorm
handling of frozen parts, discriminative learning rates with layer-wise decay, and the schedules.
Nothing here knows a task or a model family.
"""

from __future__ import annotations

import math
import random
import sys
from typing import Any

import torch
from torch import nn

from ..errors import RecipeError, ZooError
from ..model.task import TaskModel
from .recipe import Recipe


# -- device -----------------------------------------------------------------------------------
def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA, then MPS, then CPU; an explicit device that is missing is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ZooError(f'device {name!r} requested but CUDA is not available; use device = "auto" or "cpu"')
    return torch.device(name)


def process_device(name: str, world) -> torch.device:
    """This process's device: ``pick_device``, and on CUDA with several processes, the GPU ``LOCAL_RANK``."""
    device = pick_device(name)
    if device.type == "cuda" and world.distributed:
        if world.local_rank >= torch.cuda.device_count():
            raise ZooError(
                f"LOCAL_RANK {world.local_rank} but this machine has {torch.cuda.device_count()} GPU(s);"
                " start at most one process per GPU (--nproc / --nproc-per-node)"
            )
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    return device


def auto_workers(requested: int | str, in_memory: bool, device: torch.device, cores: int | None = None) -> int:
    """``data.num_workers``, or for ``"auto"`` a number sized to this process's share of the usable cores
    (:func:`modelzoo.engine.speed.auto_workers`), not to the machine's count."""
    from .speed import auto_workers as sized
    from .speed import process_cores

    if requested != "auto":
        return int(requested)
    return sized(cores or process_cores(), in_memory, device)


def _drop_broken_pipe(exc: BaseException, obj: object) -> None:
    if not isinstance(exc, ConnectionError):
        import traceback

        traceback.print_exc()


def quiet_worker_exit(worker_id: int) -> None:
    """A loader worker's ``worker_init_fn``: when the main process stops (Ctrl-C, SIGTERM, an error)
    while this worker is still sending a batch, its connection to the main process breaks
    (``ConnectionError``: a broken pipe, a reset) in a background thread, and multiprocessing prints a
    traceback beside the main process's one-line error. That says nothing, so the worker drops it;
    every other error is still printed (a dataset's own errors reach the main process as usual)."""
    import multiprocessing.queues
    import threading

    multiprocessing.queues.Queue._on_queue_feeder_error = staticmethod(_drop_broken_pipe)
    excepthook, thread_excepthook = sys.excepthook, threading.excepthook

    def quiet(kind, value, tb):  # the fd-sharing server thread reports through sys.excepthook
        if not isinstance(value, ConnectionError):
            excepthook(kind, value, tb)

    def quiet_thread(args):
        if not isinstance(args.exc_value, ConnectionError):
            thread_excepthook(args)

    sys.excepthook, threading.excepthook = quiet, quiet_thread


def epoch_seed(seed: int, stage: int, epoch: int) -> int:
    return (seed * 1_000_003 + stage * 10_007 + epoch) % (2**31)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:
        pass


# -- freezing and parameter groups ------------------------------------------------------------
def backbone_groups(model: TaskModel) -> list[tuple[str, list[str]]]:
    """The backbone's layer groups with names as in ``model.named_parameters()``; ungrouped params join the first."""
    groups = [(name, [f"backbone.{p}" for p in params]) for name, params in model.backbone.layer_groups()]
    grouped = {p for _, params in groups for p in params}
    rest = [n for n, _ in model.backbone.named_parameters(prefix="backbone") if n not in grouped]
    if rest:
        if groups:
            groups[0] = (groups[0][0], rest + groups[0][1])
        else:
            groups = [("backbone", rest)]
    return groups


def select_groups(train: str | list[str], groups: list[tuple[str, list[str]]], where: str) -> list[str]:
    names = [g for g, _ in groups]
    if train == "head":
        return []
    if train == "all":
        return names
    if isinstance(train, str) and train.startswith("last:"):
        n = int(train[5:])
        if n > len(names):
            raise RecipeError(
                f'{where}.train: last:{n} but the backbone has {len(names)} groups ({", ".join(names)}); use "all"'
            )
        return names[len(names) - n :] if n else []
    unknown = [g for g in train if g not in names]
    if unknown:
        raise RecipeError(f"{where}.train: unknown group(s) {unknown}; the backbone's groups are: {', '.join(names)}")
    return list(train)


def set_trainable(model: TaskModel, groups: list[tuple[str, list[str]]], trainable: list[str]) -> int:
    """Freeze everything except the head and the named backbone groups; return #trainable params."""
    allowed = {p for g, params in groups if g in trainable for p in params}
    count = 0
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("head.") or name in allowed)
        count += param.numel() if param.requires_grad else 0
    return count


def train_mode(model: TaskModel, backbone_frozen: bool, freeze_bn_stats: bool = False) -> None:
    """Train mode, but frozen parts keep running BatchNorm statistics fixed (and dropout off).

    ``freeze_bn_stats`` keeps every backbone BatchNorm in eval mode, trainable or not.
    """
    model.train()
    if backbone_frozen:
        model.backbone.eval()
        return
    for module in model.backbone.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if freeze_bn_stats or (params and not any(p.requires_grad for p in params)):
                module.eval()


def param_groups(
    model: TaskModel,
    groups: list[tuple[str, list[str]]],
    lr: float,
    weight_decay: float,
    layer_decay: float,
) -> list[dict[str, Any]]:
    """Discriminative LRs: backbone group i of n gets ``lr * layer_decay ** (n - i)``; the head gets ``lr``.

    Biases and norm weights (1-D tensors) get no weight decay, as in timm.
    """
    named = dict(model.named_parameters())
    out: list[dict[str, Any]] = []
    n = len(groups)
    scaled = [(f"backbone:{g}", params, layer_decay ** (n - i)) for i, (g, params) in enumerate(groups)]
    scaled.append(("head", [k for k in named if k.startswith("head.")], 1.0))
    for gname, params, scale in scaled:
        live = [(p, named[p]) for p in params if p in named and named[p].requires_grad]
        decay = [t for p, t in live if t.ndim > 1]
        no_decay = [t for p, t in live if t.ndim <= 1]
        for tensors, wd, tag in ((decay, weight_decay, ""), (no_decay, 0.0, "/no_decay")):
            if tensors:
                out.append(
                    {"params": tensors, "lr": lr * scale, "weight_decay": wd, "name": gname + tag, "lr_scale": scale}
                )
    return out


def make_optimizer(recipe: Recipe, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    o = recipe.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=o.lr)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Warmup (linear from ~0) then constant, cosine to 0, or one-cycle (warmup 30%, cosine down)."""
    if schedule == "onecycle" and warmup == 0:
        warmup = max(1, int(0.3 * total))
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
