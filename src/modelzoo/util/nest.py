"""Nests of tensors: a tensor, or a tuple / list / dict of nests, every tensor with one row per example.

What a task hands the feature cache per batch (a pooled vector, a pyramid of maps, a dict of both)
is a nest; these helpers join, index, compare and check them with the structure kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def map_nest(fn: Callable[[torch.Tensor], Any], nest: Any) -> Any:
    """``fn`` applied to every tensor of ``nest``, the structure kept (tuples stay tuples...)."""
    if isinstance(nest, torch.Tensor):
        return fn(nest)
    if isinstance(nest, dict):
        return {k: map_nest(fn, v) for k, v in nest.items()}
    if isinstance(nest, (list, tuple)):
        return type(nest)(map_nest(fn, v) for v in nest)
    raise TypeError(f"{type(nest).__name__} is not a tensor, tuple, list or dict")


def leaves(nest: Any) -> list[torch.Tensor]:
    """The tensors of ``nest``, in order."""
    found: list[torch.Tensor] = []
    map_nest(found.append, nest)
    return found


def check_nest(nest: Any, rows: int | None = None) -> int:
    """The number of rows (examples) of ``nest``; ValueError saying what is wrong when it is not a
    non-empty nest of tensors that all have the same number of rows (``rows`` when given)."""
    try:
        found = leaves(nest)
    except TypeError as exc:
        raise ValueError(f"it holds a {exc}") from None
    if not found:
        raise ValueError("it holds no tensor")
    sizes = {t.shape[0] if t.ndim else None for t in found}
    if None in sizes:
        raise ValueError("it holds a 0-d tensor (every tensor needs one row per example)")
    if len(sizes) > 1 or (rows is not None and sizes != {rows}):
        want = f", expected {rows}" if rows is not None else ""
        raise ValueError(f"its tensors have {sorted(sizes)} rows{want} (one row per example)")
    return sizes.pop()


def nest_rows(nest: Any) -> int:
    """How many examples ``nest`` holds (the first tensor's rows)."""
    return len(leaves(nest)[0])


def cat_nests(nests: list[Any]) -> Any:
    """Nests of the same structure joined row-wise."""
    first = nests[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(nests)
    if isinstance(first, dict):
        return {k: cat_nests([n[k] for n in nests]) for k in first}
    return type(first)(cat_nests([n[i] for n in nests]) for i in range(len(first)))


def index_nest(nest: Any, index: Any) -> Any:
    """The rows ``index`` (an int, slice or index tensor) of every tensor of ``nest``."""
    return map_nest(lambda t: t[index], nest)


def nests_equal(a: Any, b: Any) -> bool:
    """True when two nests have the same structure and equal tensors."""
    try:
        la, lb = leaves(a), leaves(b)
    except TypeError:
        return False
    return len(la) == len(lb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(la, lb))
