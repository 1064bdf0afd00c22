"""Shared by the pretrained-vs-scratch benches: run a recipe as written and with
``model.pretrained = false`` on the same budget, then print one row per run.

Kept in one place so every task's "does pretraining pay off?" bench runs the two arms the same way
(same data, stages, epochs and seed; only the backbone's initial weights differ) and prints the same
table; each bench only names its recipe, its metric columns and the metric that decides.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARMS = (("pretrained", []), ("scratch", ["model.pretrained=false"]))


@dataclass(frozen=True)
class Column:
    """One metric column: the key in ``Run.metrics``, its header, and its width."""

    key: str
    label: str
    width: int = 7


@dataclass
class Row:
    name: str
    metrics: dict[str, Any]
    seconds: float


def run(recipe: Path, out: Path, overrides: list[str]) -> tuple[dict[str, Any], float]:
    """Fine-tune ``recipe`` into ``out``; returns the final metrics and the wall time in seconds."""
    from modelzoo.engine.trainer import finetune

    start = time.perf_counter()
    result = finetune(recipe, out=out, overrides=overrides, quiet=True)
    return result.metrics, time.perf_counter() - start


def run_arms(recipe: Path, overrides: list[str], out: Path | None) -> list[Row]:
    """Both arms, pretrained first; run folders go under ``out`` (kept) or a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        root = out or Path(tmp)
        rows = []
        for name, extra in ARMS:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            metrics, seconds = run(recipe, root / name, [*overrides, *extra])
            rows.append(Row(name, metrics, seconds))
    return rows


def print_table(recipe: Path, rows: list[Row], columns: list[Column]) -> None:
    print(f"{recipe.name} (same data, stages and seed)")
    print(f"{'backbone':<12} " + " ".join(f"{c.label:>{c.width}}" for c in columns) + f" {'seconds':>8}")
    for r in rows:
        cells = " ".join(f"{r.metrics[c.key]:{c.width}.4f}" for c in columns)
        print(f"{r.name:<12} {cells} {r.seconds:8.1f}")


def main(doc: str, default_recipe: Path, columns: list[Column], decides: str) -> int:
    """The whole bench: arguments, both runs, the table, the verdict; ``--check`` exits 1 on a loss."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=default_recipe)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for both runs")
    parser.add_argument("--out", type=Path, help="keep the two run folders here (default: a temporary folder)")
    label = next((c.label for c in columns if c.key == decides), decides)
    parser.add_argument("--check", action="store_true", help=f"exit 1 unless pretrained beats scratch on {label}")
    args = parser.parse_args()
    rows = run_arms(args.recipe, args.set, args.out)
    print_table(args.recipe, rows, columns)
    better = rows[0].metrics[decides] > rows[1].metrics[decides]
    print("pretrained beats scratch" if better else "pretrained does NOT beat scratch")
    return 0 if better or not args.check else 1
