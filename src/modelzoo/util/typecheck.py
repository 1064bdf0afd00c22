"""The one runtime type-checker: does a value match a dataclass field's annotation?

Recipes (TOML a user wrote) and catalog specs (data a plugin returned) are both dataclasses checked
field by field before anything uses them; both go through :func:`mismatch`, and each caller words the
one-line error its reader needs. Floats must be finite and bools are not ints, as TOML and JSON
readers expect; lists and dicts are checked item by item; nested dataclasses field by field.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any


@dataclass
class Mismatch:
    """Where inside the value (``""``, ``"[2]"``, ``".key"``), the annotation expected there, and what was found."""

    path: str
    hint: Any
    value: Any
    #: the value is a number, but not a finite one
    not_finite: bool = False


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """A dataclass's field annotations as types, whether or not its module postponed them."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float (1e400 written out)
        return False


def mismatch(value: Any, hint: Any) -> Mismatch | None:
    """The first place where ``value`` is not what ``hint`` says, or None when it conforms."""
    if hint is Any or hint is object:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        found = [mismatch(value, arg) for arg in typing.get_args(hint)]
        if any(m is None for m in found):
            return None
        # a value of the right container but a wrong item says where the item is wrong
        deeper = [m for m in found if m is not None and (m.path or m.not_finite)]
        return deeper[0] if len(deeper) == 1 else Mismatch("", hint, value)
    if hint is type(None):
        return None if value is None else Mismatch("", hint, value)
    if hint is bool:
        return None if isinstance(value, bool) else Mismatch("", hint, value)
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else Mismatch("", hint, value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return Mismatch("", hint, value)
        return None if _finite(value) else Mismatch("", hint, value, not_finite=True)
    if origin in (list, tuple):
        if not isinstance(value, list if origin is list else (list, tuple)):
            return Mismatch("", hint, value)
        args = typing.get_args(hint)
        for i, item in enumerate(value):
            inner = mismatch(item, args[0] if args else Any)
            if inner:
                return Mismatch(f"[{i}]{inner.path}", inner.hint, inner.value, inner.not_finite)
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return Mismatch("", hint, value)
        key_hint, item_hint = typing.get_args(hint) or (Any, Any)
        for k, v in value.items():
            if mismatch(k, key_hint):
                return Mismatch("", hint, value)
            inner = mismatch(v, item_hint)
            if inner:
                return Mismatch(f".{k}{inner.path}", inner.hint, inner.value, inner.not_finite)
        return None
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            return Mismatch("", hint, value)
        for name, field_hint in field_types(hint).items():
            inner = mismatch(getattr(value, name), field_hint)
            if inner:
                return Mismatch(f".{name}{inner.path}", inner.hint, inner.value, inner.not_finite)
        return None
    if isinstance(hint, type):
        return None if isinstance(value, hint) else Mismatch("", hint, value)
    return None  # an annotation this checker does not model (a Protocol, a TypeVar): trusted


def type_text(hint: Any, none: str = "None") -> str:
    """``int | None`` -> ``"int or None"`` (``none`` names the None alternative, e.g. ``"nothing"``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(type_text(a, none) for a in typing.get_args(hint))
    if hint is type(None):
        return none
    if hint is Any:
        return "Any"
    if typing.get_origin(hint) is None:
        return getattr(hint, "__name__", str(hint))
    return str(hint).replace("typing.", "")


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
