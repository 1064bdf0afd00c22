"""Does the fine-tune engine cost memory? Peak RSS of ``modelzoo.finetune`` vs a hand-written loop.

Each side runs in its own fresh Python process (so neither inherits the other's allocations) and
reports its peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) when done:

* engine: ``modelzoo.finetune(recipe)`` end to end -- data, model, a whole-network stage (validation
  and a checkpoint of model + optimizer state every epoch), final evaluation, ``model.safetensors``,
  plots;
* plain: the same data loaded the same way (``zoo_classification.data.load_image_data``, same transform,
  the same in-memory tensors), the same model (``modelzoo.assemble``), the same batch size and
  optimizer (AdamW), the hand-written loop of ``bench/engine_speed.py`` for the same epochs
  (train + validation), then ``torch.save`` of the weights.

A third process that only imports torch, timm and modelzoo shows the floor every side pays.
Prints the three peaks and the ratio engine / plain; the target is at most 1.2.

    python bench/memory.py                        # ~1-2 min on 2 slow CPU cores
    python bench/memory.py --backbone resnet18 --check
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.2
sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_speed: the shared recipe and plain loop


def make_recipe(args: argparse.Namespace):
    """The engine-speed bench's recipe, for ``args.epochs`` epochs."""
    from engine_speed import make_recipe as speed_recipe

    return speed_recipe(args, name="memory", epochs=args.epochs)


def peak_mib() -> float:
    """This process's peak RSS in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_imports(args: argparse.Namespace) -> None:
    import timm  # noqa: F401
    import torch  # noqa: F401

    import modelzoo.engine  # noqa: F401


def child_engine(args: argparse.Namespace) -> None:
    from modelzoo.engine.trainer import finetune

    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        finetune(make_recipe(args), out=Path(tmp) / "run", quiet=True)


def child_plain(args: argparse.Namespace) -> None:
    import torch
    from engine_speed import plain_epoch
    from zoo_classification.data import ImageDataset, build_transform, load_image_data

    from modelzoo import assemble
    from modelzoo.model.task import create_task

    recipe = make_recipe(args)
    torch.manual_seed(recipe.seed)
    data = load_image_data(recipe.data, recipe.seed, create_task(recipe.task, recipe).registered_dataset)
    model = assemble(
        args.backbone,
        "linear",
        num_classes=len(data.labels),
        pretrained=False,
        preprocess={"input_size": [3, args.image_size, args.image_size]},
    )
    tf = build_transform(model.preprocess, train=False, augment="none", from_files=False)
    train, val = ImageDataset(data.train, tf), ImageDataset(data.val, tf)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.optimizer.lr, weight_decay=recipe.optimizer.weight_decay)
    for epoch in range(args.epochs):
        plain_epoch(model, opt, train, val, args.batch_size, seed=epoch)
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        torch.save(model.state_dict(), Path(tmp) / "model.pt")


CHILDREN = {"imports": child_imports, "engine": child_engine, "plain": child_plain}


def measure(which: str, argv: list[str]) -> tuple[float, float]:
    """Run one side in a fresh interpreter; returns (peak RSS MiB, wall seconds)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, *argv, "--child", which], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"the {which} process failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_mib"], time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="mobilenetv3_large_100", help="any registered backbone (random init)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--val", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio exceeds {TARGET}")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        CHILDREN[args.child](args)
        print(json.dumps({"peak_mib": peak_mib()}))
        return 0

    argv = [
        f"--backbone={args.backbone}",
        f"--image-size={args.image_size}",
        f"--train={args.train}",
        f"--val={args.val}",
        f"--batch-size={args.batch_size}",
        f"--epochs={args.epochs}",
    ]
    print(
        f"{args.backbone} at {args.image_size} px, {args.train} train / {args.val} val images, "
        f"batch {args.batch_size}, AdamW, train=all, {args.epochs} epochs, CPU; each in a fresh process",
        flush=True,
    )
    peaks = {}
    for which in ("imports", "plain", "engine"):
        peaks[which], seconds = measure(which, argv)
        print(f"  peak RSS {which:<8} {peaks[which]:8.1f} MiB   ({seconds:5.1f} s)", flush=True)
    ratio = peaks["engine"] / peaks["plain"]
    floor = peaks["imports"]
    print(f"above the import floor: engine +{peaks['engine'] - floor:.1f} MiB, plain +{peaks['plain'] - floor:.1f} MiB")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"ratio peak RSS engine / plain: {ratio:.3f} ({verdict} the target <= {TARGET})")
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
