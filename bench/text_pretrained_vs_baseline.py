"""Does the fine-tuned pretrained encoder beat the classic baselines? The text demo recipe vs TF-IDF.

Runs ``zoo/minilm-rotten-tomatoes.toml`` (or reads a finished run with ``--run DIR``) and, on exactly
the same train/validation texts, fits:

* TF-IDF (word 1-2-grams) + logistic regression (scikit-learn): the classic strong baseline;
* logistic regression on the frozen encoder's pooled embeddings (the run's own feature cache of
  its first frozen stage, so the encoder is not run again; computed when the run has none);
  both at their best regularisation C *chosen on the validation set* (optimistic for the baselines);
* optionally (``--scratch``) the same recipe with ``model.pretrained = false``: the architecture
  trained from random init on the same budget.

Prints the accuracies side by side with wall times and the machine's 1-minute load average around
the recipe's run (wall time depends on the load: measure on an idle machine), then the recipe's margin
over the frozen-embedding baseline in points; ``--check`` exits 1 unless the recipe beats every
baseline by at least ``--margin`` points (default 0).

    python bench/text_pretrained_vs_baseline.py                 # ~5 min on 2 idle CPU cores
    python bench/text_pretrained_vs_baseline.py --run runs/txt1  # reuse a finished run: seconds
    python bench/text_pretrained_vs_baseline.py --check --margin 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from recipe_sweep import cold_feature_cache

C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
RECIPE = Path(__file__).resolve().parents[1] / "zoo" / "minilm-rotten-tomatoes.toml"


def finetune_run(recipe: Path, out: Path, overrides: list[str]) -> tuple[dict, float]:
    from modelzoo.engine.trainer import finetune

    start = time.perf_counter()
    result = finetune(recipe, out=out, overrides=overrides, quiet=True)
    return result.metrics, time.perf_counter() - start


def tfidf_baseline(train, val, labels: list[str]) -> tuple[float, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    start = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train, x_val = vec.fit_transform(train.texts), vec.transform(val.texts)
    y_train = np.array([labels.index(y) for y in train.labels])
    y_val = np.array([labels.index(y) for y in val.labels])
    return best_logreg(x_train, y_train, x_val, y_val), time.perf_counter() - start


def best_logreg(x_train, y_train, x_val, y_val) -> float:
    """Validation accuracy of logistic regression at its best C on the validation set itself:
    an optimistic figure for the baseline, so beating it means something."""
    from sklearn.linear_model import LogisticRegression

    scores = []
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=5000).fit(x_train, y_train)
        scores.append(float((clf.predict(x_val) == y_val).mean()))
    return max(scores)


def frozen_embeddings_baseline(run_dir: Path, recipe) -> tuple[float, float]:
    """Logistic regression on the pretrained encoder's pooled embeddings: the run's cache of its first
    frozen stage when there is one, else computed here (the recipe's encoder and head pooling)."""
    import torch

    start = time.perf_counter()
    caches = sorted((run_dir / "cache").glob("features-*.pt"), key=lambda p: p.stat().st_mtime)
    if caches and recipe.stages[0].train == "head":
        d = torch.load(caches[0], weights_only=True)  # the first frozen stage's: the pretrained encoder's
        x_train, y_train, x_val, y_val = d["train"], d["train_y"], d["val"], d["val_y"]
    else:
        from modelzoo.engine.trainer import Trainer

        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(recipe, Path(tmp), quiet=True)
            trainer.setup()
            x_train, y_train, x_val, y_val = trainer.cached_features(0)
    accuracy = best_logreg(x_train.numpy(), y_train.numpy(), x_val.numpy(), y_val.numpy())
    return accuracy, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--run", type=Path, help="a finished run of the recipe to report instead of training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--scratch", action="store_true", help="also train the encoder from random init")
    parser.add_argument("--out", type=Path, help="keep run folders here (default: a temporary folder)")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the recipe beats every baseline")
    parser.add_argument("--margin", type=float, default=0.0, help="points the recipe must win by for --check")
    args = parser.parse_args()

    from zoo_text.textdata import load_text_data

    from modelzoo.engine.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        rows: list[tuple[str, float, float]] = []
        load = [os.getloadavg()[0]]
        if args.run:
            run_dir = args.run
            summary = json.loads((run_dir / "summary.json").read_text())
            recipe = load_recipe(run_dir / "recipe.toml")
            rows.append(("fine-tuned (recipe)", summary["metrics"]["accuracy"], summary["seconds"]))
        else:
            os.environ.update(cold_feature_cache(root / "cache"))  # time the feature pass, as a first run does
            print("running the recipe ...", file=sys.stderr, flush=True)
            run_dir = root / "pretrained"
            metrics, seconds = finetune_run(args.recipe, run_dir, args.set)
            recipe = load_recipe(args.recipe, args.set)
            rows.append(("fine-tuned (recipe)", metrics["accuracy"], seconds))
        load.append(os.getloadavg()[0])
        data = load_text_data(recipe.data, recipe.seed)
        rows.append(("frozen encoder + logreg", *frozen_embeddings_baseline(run_dir, recipe)))
        rows.append(("TF-IDF 1-2-gram + logreg", *tfidf_baseline(data.train, data.val, data.labels)))
        if args.scratch:
            print("running the recipe from random init ...", file=sys.stderr, flush=True)
            metrics, seconds = finetune_run(args.recipe, root / "scratch", [*args.set, "model.pretrained=false"])
            rows.append(("same encoder from scratch", metrics["accuracy"], seconds))
    print(
        f"{recipe.name}: {recipe.model.backbone} on {data.name} {'/'.join(data.labels)},"
        f" {len(data.train)} train / {len(data.val)} val (same texts for every row)"
    )
    print(f"{'model':<28} {'accuracy':>8} {'seconds':>8}")
    for name, accuracy, seconds in rows:
        print(f"{name:<28} {accuracy:8.4f} {seconds:8.1f}")
    if not args.run:
        print(f"load average (1 min) before/after the recipe's run: {load[0]:.2f}/{load[1]:.2f}")
    best_baseline = max(acc for _, acc, _ in rows[1:])
    margin = 100 * (rows[0][1] - best_baseline)
    better = margin > args.margin
    print(f"the recipe {'beats' if margin > 0 else 'does NOT beat'} the best baseline ({best_baseline:.4f})")
    print(f"margin over frozen embeddings + logreg: {100 * (rows[0][1] - rows[1][1]):+.1f} points")
    return 0 if better or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
