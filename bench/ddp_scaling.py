"""Does training scale with processes? samples/s of the same recipe on 1 and on N processes.

The default recipe's model and data (EfficientNet-Lite0 with its packaged ImageNet weights, Fashion-MNIST
at 64 px), one whole-network stage of ``--epochs`` epochs on ``--train`` images, run by ``zoo finetune``
with 1 process and with ``--nproc N`` (DistributedDataParallel, gloo on the CPU, NCCL on GPUs), the
global batch the same. Per run: the median over epochs after the first of ``train images / epoch
seconds`` (an epoch's seconds include its validation pass), and the ratio N / 1. On a 2-core CPU the
ratio is about 1 or below (two processes share the cores one process already used); that is the
honest figure there. Nothing else should run meanwhile.

    python bench/ddp_scaling.py [--nproc 2] [--train 1000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "zoo" / "effnet-lite0-fashion-mnist.toml"


def write_recipe(path: Path, args: argparse.Namespace) -> Path:
    import tomli_w

    data = tomllib.loads(RECIPE.read_text())
    data.pop("reference", None)
    data["name"] = "ddp-scaling"
    data["device"] = args.device
    data["data"].update({"train_limit": args.train, "val_limit": args.val, "batch_size": args.batch_size})
    data["stages"] = [{"name": "all", "train": "all", "epochs": args.epochs, "lr": 1e-3, "freeze_bn_stats": True}]
    path.write_text(tomli_w.dumps(data))
    return path


def run(recipe: Path, out: Path, nproc: int, cache: Path) -> float:
    env = {**os.environ, "MODELZOO_CACHE": str(cache)}
    cmd = [
        sys.executable,
        "-m",
        "modelzoo",
        "finetune",
        str(recipe),
        "--out",
        str(out),
        "--quiet",
        "--nproc",
        str(nproc),
    ]
    subprocess.run(cmd, env=env, check=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["seconds"] for r in rows[1:]] or [rows[0]["seconds"]]
    return statistics.median(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--val", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-ddp-") as tmp:
        recipe = write_recipe(Path(tmp) / "recipe.toml", args)
        one = run(recipe, Path(tmp) / "one", 1, Path(tmp) / "cache")
        many = run(recipe, Path(tmp) / "many", args.nproc, Path(tmp) / "cache")
    rate_one, rate_many = args.train / one, args.train / many
    print(f"{args.train} train images, global batch {args.batch_size}, {args.device}, median epoch after the first")
    print(f"1 process:  {one:7.2f} s/epoch  {rate_one:7.1f} samples/s")
    print(f"{args.nproc} processes: {many:7.2f} s/epoch  {rate_many:7.1f} samples/s")
    print(f"ratio {args.nproc} / 1: {rate_many / rate_one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
