"""``zoo finetune --resume RUN``: the recipe a run continues with must be the one its checkpoint was written with.

A run's ``recipe.toml`` is what ``--resume`` reads; its checkpoint records the recipe the run had when
the checkpoint was written. A ``recipe.toml`` edited after a kill (a seed, a limit, an lr) or damaged
on disk would otherwise continue silently with other values than the epochs already run: it is refused
in one line naming each changed field, unless ``--force`` (then the run says it continues with them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ZooError
from .checkpoint import read_checkpoint, recorded_recipe
from .recipe import Recipe, load_recipe

#: at most this many changed fields are named in the line
SHOWN = 6


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"stages.1.lr": 0.002, ...}``: every leaf of a recipe dict by its dotted path."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        return {prefix: obj}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _shown(value: Any) -> str:
    text = "(unset)" if value is _UNSET else json.dumps(value, ensure_ascii=True)
    text = text.strip('"') if isinstance(value, str) else text
    return text if len(text) <= 40 else text[:37] + "..."


_UNSET = object()


def recipe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``["seed 0 -> 1", "stages.1.lr 0.002 -> 0.01"]``: what differs between two recipe dicts."""
    a, b = _flat(old), _flat(new)
    keys = list(a) + [k for k in b if k not in a]
    return [
        f"{k} {_shown(a.get(k, _UNSET))} -> {_shown(b.get(k, _UNSET))}"
        for k in keys
        if a.get(k, _UNSET) != b.get(k, _UNSET)
    ]


def check_resumed_recipe(run_dir: Path, recipe: dict[str, Any], checkpoint: Path, force: bool) -> str | None:
    """Refuse to resume ``run_dir`` with a ``recipe`` (its ``recipe.toml``, as a dict) other than the one its
    checkpoint records; with ``force``, return the line that says the run continues with the new values."""
    recorded = recorded_recipe(checkpoint)
    if recorded is None:  # no checkpoint yet, or one written before checkpoints recorded their recipe
        return None
    changes = recipe_changes(recorded, json.loads(json.dumps(recipe, sort_keys=True, default=str)))
    if not changes:
        return None
    read_checkpoint(checkpoint)  # a damaged checkpoint is named as such, not as an edited recipe
    listed = ", ".join(changes[:SHOWN]) + (f" and {len(changes) - SHOWN} more" if len(changes) > SHOWN else "")
    if force:
        return f"{run_dir / 'recipe.toml'} changed since the last checkpoint ({listed}); --force: continuing with the new values"
    raise ZooError(
        f"{run_dir / 'recipe.toml'} differs from the recipe its last checkpoint was written with ({listed}); restore"
        f" it, or continue with the new values with zoo finetune --resume {run_dir} --force"
    )


def resumed_recipe(
    run_dir: Path, recipe: Recipe | str | Path | None, out: str | Path | None, overrides: list[str] | None,
    checkpoint: str, force: bool,
) -> tuple[Recipe, str | None]:  # fmt: skip
    """The recipe ``--resume run_dir`` continues with (its ``recipe.toml``), checked against a ``recipe``
    also given, ``--set`` and ``--out``, and against the recipe the last checkpoint records; with the
    ``--force`` line to say, if any."""
    saved = run_dir / "recipe.toml"
    if out is not None and Path(out).resolve() != run_dir.resolve():
        raise ZooError(f"--out cannot move a resumed run; it continues in {run_dir} (drop --out)")
    if not saved.is_file():
        raise ZooError(
            f"{run_dir} is not a run folder (no recipe.toml); start it with zoo finetune RECIPE --out {run_dir}"
        )
    saved_recipe = load_recipe(saved)
    if recipe is not None:
        given = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
        if given.to_dict() != saved_recipe.to_dict():
            raise ZooError(
                f"the recipe differs from the one {run_dir} was started with; drop --resume or use a new --out"
            )
    elif overrides:
        raise ZooError("--set cannot change a run being resumed; start a new run with --out")
    return saved_recipe, check_resumed_recipe(run_dir, saved_recipe.to_dict(), run_dir / checkpoint, force)
