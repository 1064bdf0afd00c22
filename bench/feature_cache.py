"""How much does the feature cache save? A frozen-backbone head stage, cached vs recomputed features.

The default recipe's head stage (``zoo/effnet-lite0-fashion-mnist.toml`` stage 0: EfficientNet-Lite0
with its packaged ImageNet weights, frozen; a linear head trained on top), on a smaller Fashion-MNIST
subset and for ``--epochs`` epochs, run twice through the engine:

* cached: the engine's default -- one backbone pass over train + val (the "feature pass"), kept on
  disk, then every epoch trains and validates the head on the cached feature tensors;
* recomputed: the same recipe with the cache forced off (``Trainer(..., feature_cache=False)``, the
  switch ``modelzoo.finetune(..., feature_cache=False)`` exposes): every epoch runs the frozen
  backbone over every train and val image again.

Both stages write their per-epoch checkpoint, as always. Prints the epochs, the feature pass, both
stage times, and two ratios, which mean different things:

* per epoch, after the one-time feature pass: recomputed epoch / cached epoch -- the target is >= 20x;
* whole stage, feature pass included: ``E * t_recomputed / (t_pass + E * t_cached)``. It grows with the
  epochs E but stays below E (the pass costs about one recomputed epoch), so at 20 epochs it is < 20x
  by arithmetic; the break-even epoch count for 20x is printed.

    python bench/feature_cache.py                 # ~4 min on 2 slow CPU cores (the recomputed stage)
    python bench/feature_cache.py --epochs 30 --train 300 --check
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

TARGET = 20.0
RECIPE = Path(__file__).resolve().parents[1] / "zoo" / "effnet-lite0-fashion-mnist.toml"


def head_stage_recipe(args: argparse.Namespace):
    """The recipe's first (frozen-backbone) stage alone, on the CPU, with the bench's data size and epochs."""
    from modelzoo.engine.recipe import load_recipe

    recipe = load_recipe(
        args.recipe,
        [
            f"stages.0.epochs={args.epochs}",
            f"data.train_limit={args.train}",
            f"data.val_limit={args.val}",
            "device=cpu",
        ],
    )
    recipe.stages = recipe.stages[:1]
    if recipe.stages[0].train != "head":
        raise SystemExit(f"{args.recipe}: stage 0 trains {recipe.stages[0].train!r}, not the head alone")
    return recipe


def run_stage(recipe, out: Path, cache: bool) -> tuple[float, float, dict]:
    """Set up a trainer and time (feature pass, stage); returns the seconds and the last epoch's metrics row."""
    from modelzoo.engine.trainer import Trainer

    trainer = Trainer(recipe, out, quiet=True, feature_cache=cache)
    trainer.setup()
    feature_pass = 0.0
    if cache:  # the pass run_stage would do first; done apart (it is kept on disk) so it is timed apart
        start = time.perf_counter()
        trainer.cached_features(0)
        feature_pass = time.perf_counter() - start
    start = time.perf_counter()
    trainer.run_stage(0, recipe.stages[0], None, 0)
    return feature_pass, time.perf_counter() - start, trainer.history[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of head training")
    parser.add_argument("--train", type=int, default=400, help="train images")
    parser.add_argument("--val", type=int, default=100, help="validation images")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the per-epoch ratio is below {TARGET}x")
    args = parser.parse_args()

    recipe = head_stage_recipe(args)
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        print(
            f"{recipe.name} stage 0 ({recipe.model.backbone} frozen, {recipe.model.head} head), "
            f"{args.train} train / {args.val} val images at {recipe.data.image_size} px, "
            f"batch {recipe.data.batch_size}, {args.epochs} epochs, CPU",
            flush=True,
        )
        print("running with the feature cache ...", file=sys.stderr, flush=True)
        pass_s, cached_s, cached_row = run_stage(recipe, Path(tmp) / "cached", cache=True)
        print("running with features recomputed every epoch ...", file=sys.stderr, flush=True)
        _, recomputed_s, recomputed_row = run_stage(recipe, Path(tmp) / "recomputed", cache=False)

    e = args.epochs
    per_cached, per_recomputed = cached_s / e, recomputed_s / e
    per_epoch = per_recomputed / per_cached
    whole = recomputed_s / (pass_s + cached_s)
    # epochs E where E * r / (p + E * c) = TARGET  ->  E = TARGET * p / (r - TARGET * c)
    denom = per_recomputed - TARGET * per_cached
    break_even = f"{TARGET * pass_s / denom:.0f}" if denom > 0 else "never"
    print(f"feature pass (once, train + val, written to disk): {pass_s:7.2f} s")
    print(f"cached stage,     {e} epochs: {cached_s:7.2f} s ({per_cached:.3f} s/epoch)")
    print(f"recomputed stage, {e} epochs: {recomputed_s:7.2f} s ({per_recomputed:.3f} s/epoch)")
    print(
        f"final val accuracy: cached {cached_row['val_accuracy']:.4f}, recomputed {recomputed_row['val_accuracy']:.4f}"
    )
    verdict = "meets" if per_epoch >= TARGET else "misses"
    print(f"per-epoch ratio after the one-time pass: {per_epoch:.1f}x ({verdict} the target >= {TARGET:g}x)")
    print(f"whole-stage ratio at {e} epochs (feature pass included): {whole:.1f}x")
    print(f"whole-stage ratio reaches {TARGET:g}x at about {break_even} epochs")
    return 1 if args.check and per_epoch < TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
