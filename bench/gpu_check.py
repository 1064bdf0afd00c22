"""GPU check: the engine's CUDA path (bf16 autocast, channels_last, torch.compile, DDP on NCCL) on
ResNet-50 at 224 px, next to a hand-written bf16 AMP loop on the same model and batch (the limit).

One prepared script, meant to be run once where a GPU is lent (it takes a few minutes):

    python bench/gpu_check.py --all            # every configuration below, one after the other
    python bench/gpu_check.py                  # engine, 1 process
    python bench/gpu_check.py --compile        # engine with torch.compile
    python bench/gpu_check.py --nproc 2        # DDP over NCCL, 2 processes (2 GPUs, or 2 on one if allowed)

For each configuration it prints, per process group: the engine's training throughput in img/s
(``Trainer.train_epoch``: in-memory uint8 images through the engine's transform and loader,
host-to-device copy, autocast forward, backward, AdamW step, schedule; DDP gradient all-reduce when
``--nproc`` > 1), time per epoch, ``torch.cuda.max_memory_allocated``, whether the engine chose bf16
and channels_last, and the hand-written loop's img/s on one resident batch of the same model with the
same autocast dtype, memory format and optimizer, with the ratio engine / hand-written.

Data: ``--data synthetic`` (default: noise images whose brightness says the class, made in memory) or
``--data fashion-mnist`` (needs its files). Without a CUDA device it says so and exits 0 (1 with
``--require-gpu``); ``--device cpu`` runs the same code on the CPU (gloo for ``--nproc``) with tiny
sizes, only to smoke-test the script:

    python bench/gpu_check.py --device cpu --backbone timm:resnet18 --image-size 32 --train 64 --val 32 \\
        --batch-size 16 --epochs 1 --steps 3 --all
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_recipe(args: argparse.Namespace):
    """The backbone + linear head, whole network trained, AMP on, on ``--device``."""
    from modelzoo.engine.recipe import validate

    data = {
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "augment": "none",
        "train_limit": args.train,
        "val_limit": args.val,
    }
    if args.data == "fashion-mnist":
        data["dataset"] = "fashion-mnist"
    else:  # validated as an ImageFolder recipe, then the task's data are replaced in memory
        data["path"] = "synthetic"
        data["mean"], data["std"] = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    return validate(
        {
            "name": "gpu-check",
            "seed": 0,
            "device": args.device,
            "amp": True,
            "compile": args.compile,
            "model": {"backbone": args.backbone, "pretrained": False, "head": "linear"},
            "data": data,
            "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},
            "stages": [{"name": "all", "train": "all", "epochs": 1, "warmup_epochs": 0.1}],
        }
    )


def synthetic_loader(task, args: argparse.Namespace):
    """Replace the task's ``load_data`` with in-memory (N, H, W, 3) uint8 noise images, brightness by class."""
    import torch
    from zoo_classification.data import ImageData, Split

    def split(n: int, seed: int) -> Split:
        gen = torch.Generator().manual_seed(seed)
        targets = torch.randint(0, args.classes, (n,), generator=gen)
        # brightness 20..194 by class plus uint8 noise 0..59: never above 255, and no int64 copy of the set
        base = (targets * (175 // args.classes) + 20).to(torch.uint8).view(n, 1, 1, 1)
        size = (n, args.image_size, args.image_size, 3)
        images = torch.randint(0, 60, size, generator=gen, dtype=torch.uint8).add_(base)
        return Split(targets=targets.tolist(), images=images)

    def load_data() -> None:
        labels = [f"class{i}" for i in range(args.classes)]
        train, val = split(args.train, 0), split(args.val, 1)
        task.loaded = ImageData("synthetic", labels, train, val, {"num_train": len(train), "num_val": len(val)})
        task.labels, task.dataset_name, task.data_info = labels, "synthetic", task.loaded.info

    return load_data


def sync(device) -> None:
    """Wait for queued GPU work, so wall-clock time covers it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hand_written_loop(trainer, steps: int) -> float:
    """img/s of a plain bf16-AMP loop (forward, backward, AdamW step) on one resident batch of this
    process's share: the same model, autocast dtype, memory format and optimizer; no data loading."""
    import torch
    from torch import nn

    from modelzoo.engine.training import make_optimizer, param_groups

    model, r = trainer.model, trainer.recipe
    opt = make_optimizer(r, param_groups(model, trainer.groups, 1e-4, 0.0, 1.0))
    local = r.data.batch_size // trainer.world.size
    x = torch.randn(local, 3, r.data.image_size, r.data.image_size, device=trainer.device)
    if trainer.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, len(trainer.task.labels), (local,), device=trainer.device)
    model.train()

    def step() -> None:
        with torch.autocast(trainer.device.type, dtype=trainer.amp_dtype, enabled=trainer.amp_dtype is not None):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(min(5, steps)):
        step()
    sync(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(trainer.device)
    return steps * local / (time.perf_counter() - start)


def measure(args: argparse.Namespace) -> dict:
    """One configuration in this process (a worker of the group when launched with --nproc)."""
    import torch

    from modelzoo.engine.trainer import Trainer
    from modelzoo.engine.training import epoch_seed

    recipe = make_recipe(args)
    with tempfile.TemporaryDirectory(prefix="zoo-gpu-check-") as tmp:
        trainer = Trainer(recipe, Path(tmp), quiet=True)
        if args.data == "synthetic":
            trainer.task.load_data = synthetic_loader(trainer.task, args)
        trainer.setup()
        cuda = trainer.device.type == "cuda"
        conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
        if cuda:
            torch.cuda.reset_peak_memory_stats(trainer.device)
        start = time.perf_counter()
        trainer.run_stage(0, recipe.stages[0], None, 0)  # warm-up: the real stage (compile, DDP, val, checkpoint)
        warmup = time.perf_counter() - start
        from modelzoo.engine.training import make_optimizer, param_groups

        r = trainer.recipe
        opt = make_optimizer(r, param_groups(trainer.model, trainer.groups, r.optimizer.lr, 0.05, 1.0))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
        seconds = []
        for epoch in range(args.epochs):
            loader = trainer.loader(trainer.task.dataset("train"), shuffle=True, seed=epoch_seed(0, 1, epoch))
            sync(trainer.device)
            start = time.perf_counter()
            trainer.train_epoch(loader, opt, sched, cached=False, frozen=False, desc="timed")
            sync(trainer.device)
            seconds.append(time.perf_counter() - start)
        hand = hand_written_loop(trainer, steps=args.steps)
        result = {
            "device": torch.cuda.get_device_name(trainer.device) if cuda else "CPU",
            "processes": trainer.world.size,
            "rank": trainer.world.rank,
            "autocast": str(trainer.amp_dtype),
            "channels_last": conv.weight.is_contiguous(memory_format=torch.channels_last),
            "compiled": recipe.compile,
            "warmup_seconds": round(warmup, 1),
            "epoch_seconds": round(statistics.median(seconds), 2),
            "engine_img_s": round(args.train / statistics.median(seconds), 1),  # the global images per second
            "hand_written_img_s_per_process": round(hand, 1),
            "peak_gib": round(torch.cuda.max_memory_allocated(trainer.device) / 2**30, 2) if cuda else None,
        }
    return result


def report(label: str, rows: list[dict]) -> None:
    first = rows[0]
    hand = sum(r["hand_written_img_s_per_process"] for r in rows)  # the limit of the whole group
    print(
        f"{label}: {first['device']}, {first['processes']} process(es), autocast {first['autocast']},"
        f" channels_last {first['channels_last']}, compiled {first['compiled']}"
    )
    print(
        f"  engine: {first['engine_img_s']:.1f} img/s, {first['epoch_seconds']:.2f} s/epoch (warm-up stage {first['warmup_seconds']} s)"
    )
    print(f"  hand-written bf16 AMP loop: {hand:.1f} img/s; engine / hand-written: {first['engine_img_s'] / hand:.2f}")
    peaks = [r["peak_gib"] for r in rows if r["peak_gib"] is not None]
    if peaks:
        print(f"  torch.cuda.max_memory_allocated per process: {', '.join(f'{p:.2f} GiB' for p in peaks)}")


def launch(args: argparse.Namespace, argv: list[str]) -> list[dict]:
    """Run this script's measurement in ``--nproc`` processes through torch.distributed.run."""
    with tempfile.TemporaryDirectory(prefix="zoo-gpu-check-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(args.nproc),
            __file__,
            *argv,
            "--worker-out",
            tmp,
        ]
        proc = subprocess.run(cmd, env={**os.environ, "TORCH_CPP_LOG_LEVEL": "ERROR"})
        if proc.returncode != 0:
            raise SystemExit(f"the {args.nproc}-process run failed (exit {proc.returncode})")
        return [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("rank*.json"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="timm:resnet50", help="a registered backbone (random init)")
    parser.add_argument("--data", choices=("synthetic", "fashion-mnist"), default="synthetic")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--train", type=int, default=4096, help="train images per epoch (the global count)")
    parser.add_argument("--val", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10, help="classes of the synthetic data")
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--epochs", type=int, default=2, help="timed training epochs after the warm-up stage")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cuda:N; cpu only to smoke-test the script")
    parser.add_argument("--steps", type=int, default=30, help="steps of the hand-written loop")
    parser.add_argument("--compile", action="store_true", help="recipe compile = true (torch.compile)")
    parser.add_argument("--nproc", type=int, default=1, help="DDP processes (NCCL on CUDA, gloo on CPU)")
    parser.add_argument("--all", action="store_true", help="1 process, 1 process compiled, and DDP with 1 and 2")
    parser.add_argument("--require-gpu", action="store_true", help="exit 1 (not 0) when there is no CUDA device")
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)  # set by launch() for its workers
    args = parser.parse_args()

    import torch

    if args.worker_out:  # a worker of launch(): measure, leave the result for rank 0's process
        result = measure(args)
        Path(args.worker_out, f"rank{result['rank']}.json").write_text(json.dumps(result))
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device (torch.cuda.is_available() is False"
            f"{'' if torch.version.cuda else '; this torch build has no CUDA'}); nothing to check here. "
            "Run it on a machine with an NVIDIA GPU.",
            file=sys.stderr,
        )
        return 1 if args.require_gpu else 0
    print(
        f"{args.backbone} at {args.image_size} px, {args.data} data ({args.train} train / {args.val} val),"
        f" global batch {args.batch_size}, train=all, AdamW",
        flush=True,
    )
    base = [a for a in sys.argv[1:] if a not in ("--all", "--compile") and not a.startswith("--nproc")]
    if "--nproc" in sys.argv[1:]:
        i = sys.argv.index("--nproc")
        base = [a for j, a in enumerate(sys.argv[1:], 1) if j not in (i, i + 1) and a not in ("--all", "--compile")]
    configs = (
        [
            ("1 process", False, 1),
            ("1 process, torch.compile", True, 1),
            ("DDP, 1 process", False, -1),
            ("DDP, 2 processes", False, 2),
        ]
        if args.all
        else [(f"{args.nproc} process(es)" + (", torch.compile" if args.compile else ""), args.compile, args.nproc)]
    )
    for label, compiled, nproc in configs:
        if abs(nproc) > 1 and args.device.startswith("cuda") and torch.cuda.device_count() < abs(nproc):
            print(f"{label}: skipped, {torch.cuda.device_count()} GPU(s) here (NCCL takes one GPU per process)")
            continue
        if nproc == 1:
            args.compile = compiled
            rows = [measure(args)]
        else:
            args.nproc = abs(nproc)
            rows = launch(args, base + (["--compile"] if compiled else []))
        report(label, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
