"""Does the fine-tuned pretrained encoder beat the classic baselines? The text demo recipe vs TF-IDF.

Runs ``zoo/minilm-rotten-tomatoes.toml`` (or reads a finished run with ``--run DIR``) and, on exactly
the same train/validation texts, fits:

* TF-IDF (word 1-2-grams) + logistic regression (scikit-learn): the classic strong baseline;
* logistic regression on the frozen encoder's pooled embeddings (the run's own feature cache of
  stage 0, so the encoder is not run again);
  both at their best regularisation C *chosen on the validation set* (optimistic for the baselines);
* optionally (``--scratch``) the same recipe with ``model.pretrained = false``: the architecture
  trained from random init on the same budget.

Prints the accuracies side by side with wall times; ``--check`` exits 1 unless the recipe beats
every baseline.

    python bench/text_pretrained_vs_baseline.py                 # ~6-8 min on 2 busy CPU cores
    python bench/text_pretrained_vs_baseline.py --run runs/txt1  # reuse a finished run: seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
RECIPE = Path(__file__).resolve().parents[1] / "zoo" / "minilm-rotten-tomatoes.toml"


def finetune_run(recipe: Path, out: Path, overrides: list[str]) -> tuple[dict, float]:
    from modelzoo.engine import finetune

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


def frozen_embeddings_baseline(run_dir: Path) -> tuple[float, float] | None:
    """Logistic regression on the run's cached stage-0 embeddings (None if the cache is missing)."""
    import torch

    caches = sorted((run_dir / "cache").glob("features-*.pt"), key=lambda p: p.stat().st_mtime)
    if not caches:
        return None
    cache = caches[0]  # the first frozen stage's: the pretrained encoder's embeddings
    start = time.perf_counter()
    d = torch.load(cache, weights_only=True)
    accuracy = best_logreg(d["train"].numpy(), d["train_y"].numpy(), d["val"].numpy(), d["val_y"].numpy())
    return accuracy, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--run", type=Path, help="a finished run of the recipe to report instead of training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--scratch", action="store_true", help="also train the encoder from random init")
    parser.add_argument("--out", type=Path, help="keep run folders here (default: a temporary folder)")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the recipe beats every baseline")
    args = parser.parse_args()

    from zoo_text.textdata import load_text_data

    from modelzoo.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        rows: list[tuple[str, float, float]] = []
        if args.run:
            run_dir = args.run
            summary = json.loads((run_dir / "summary.json").read_text())
            recipe = load_recipe(run_dir / "recipe.toml")
            rows.append(("fine-tuned (recipe)", summary["metrics"]["accuracy"], summary["seconds"]))
        else:
            print("running the recipe ...", file=sys.stderr, flush=True)
            run_dir = root / "pretrained"
            metrics, seconds = finetune_run(args.recipe, run_dir, args.set)
            recipe = load_recipe(args.recipe, args.set)
            rows.append(("fine-tuned (recipe)", metrics["accuracy"], seconds))
        data = load_text_data(recipe.data, recipe.seed)
        frozen = frozen_embeddings_baseline(run_dir)
        if frozen:
            rows.append(("frozen encoder + logreg", *frozen))
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
    best_baseline = max(acc for _, acc, _ in rows[1:])
    better = rows[0][1] > best_baseline
    print(f"the recipe {'beats' if better else 'does NOT beat'} the best baseline ({best_baseline:.4f})")
    return 0 if better or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
