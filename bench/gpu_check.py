"""GPU check: an AMP bf16 + channels_last fine-tune of ResNet-50 through the engine, in < 5 minutes.

Runs a whole-network stage (``train = "all"``) of timm ``resnet50`` (random init: no weights to fetch)
at 224 px through ``modelzoo``'s engine on ``device = "cuda"`` with ``amp = true``. The engine itself
picks bf16 autocast (fp16 where the GPU lacks bf16) and puts the model and every image batch in
channels_last; this script checks that it did, then prints:

* engine training throughput, img/s: ``Trainer.train_epoch`` (data loading from in-memory uint8
  images through the engine's transform and DataLoader workers, host->device copy, autocast forward,
  backward, AdamW step, LR schedule), timed epochs after a warm-up epoch run as a real stage
  (train + validation + checkpoint);
* raw step throughput, img/s: the same model, autocast and optimizer on one batch already on the
  GPU, no data loading -- what the engine's number can at most reach;
* ``torch.cuda.max_memory_allocated`` over the run.

Data: ``--data synthetic`` (default; noise images whose brightness says the class, made in memory,
nothing to download) or ``--data fashion-mnist`` (the registered dataset, resized to 224 px; needs
its files).
Without a CUDA device it prints why and exits 0 (1 with ``--require-gpu``). ``--device cpu`` runs the
same code path on the CPU (no AMP, no channels_last), only to smoke-test this script with tiny sizes.

    python bench/gpu_check.py                     # ~1-2 min on one modern GPU
    python bench/gpu_check.py --train 2048 --batch-size 64 --epochs 1
    python bench/gpu_check.py --device cpu --backbone timm:resnet18 --image-size 32 --train 64 --val 32 --batch-size 16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def make_recipe(args: argparse.Namespace):
    """ResNet-50 + linear head, whole network trained, AMP on, CUDA (``--device``)."""
    from modelzoo.recipe import validate

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
        torch.cuda.synchronize()


def raw_step_throughput(trainer, steps: int) -> float:
    """img/s of forward + backward + step on one resident batch: the engine's ceiling."""
    import torch
    from torch import nn

    from modelzoo.engine import make_optimizer, param_groups

    model, r = trainer.model, trainer.recipe
    opt = make_optimizer(r, param_groups(model, trainer.groups, 1e-4, 0.0, 1.0))
    x = torch.randn(r.data.batch_size, 3, r.data.image_size, r.data.image_size, device=trainer.device)
    if trainer.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, len(trainer.task.labels), (r.data.batch_size,), device=trainer.device)
    model.train()

    def step() -> None:
        with torch.autocast(trainer.device.type, dtype=trainer.amp_dtype, enabled=trainer.amp_dtype is not None):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    sync(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(trainer.device)
    return steps * r.data.batch_size / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="timm:resnet50", help="a registered backbone (random init)")
    parser.add_argument("--data", choices=("synthetic", "fashion-mnist"), default="synthetic")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--train", type=int, default=4096, help="train images per epoch")
    parser.add_argument("--val", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10, help="classes of the synthetic data")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2, help="timed training epochs after the warm-up stage")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cuda:N; cpu only to smoke-test the script")
    parser.add_argument("--steps", type=int, default=30, help="steps of the raw-throughput measurement")
    parser.add_argument("--require-gpu", action="store_true", help="exit 1 (not 0) when there is no CUDA device")
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device (torch.cuda.is_available() is False"
            f"{'' if torch.version.cuda else '; this torch build has no CUDA'}); nothing to check here. "
            "Run it on a machine with an NVIDIA GPU.",
            file=sys.stderr,
        )
        return 1 if args.require_gpu else 0

    from modelzoo.engine import Trainer, epoch_seed

    recipe = make_recipe(args)
    with tempfile.TemporaryDirectory(prefix="zoo-gpu-check-") as tmp:
        trainer = Trainer(recipe, Path(tmp), quiet=True)
        if args.data == "synthetic":
            trainer.task.load_data = synthetic_loader(trainer.task, args)
        trainer.setup()
        conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
        channels_last = conv.weight.is_contiguous(memory_format=torch.channels_last)
        cuda = trainer.device.type == "cuda"
        print(
            f"{torch.cuda.get_device_name(trainer.device) if cuda else 'CPU'}: {args.backbone} at {args.image_size} px, {args.data} data "
            f"({args.train} train / {args.val} val), batch {args.batch_size}, train=all, AdamW, "
            f"{trainer.workers} loader workers"
        )
        print(f"autocast dtype: {trainer.amp_dtype}; model channels_last: {channels_last}", flush=True)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        trainer.run_stage(0, recipe.stages[0], None, 0)  # warm-up: the real stage path, validation, checkpoint
        row = trainer.history[-1]
        print(
            f"warm-up stage (1 epoch, train + val + checkpoint): {time.perf_counter() - start:.1f} s, "
            f"train_loss {row['train_loss']:.4f}, val_accuracy {row['val_accuracy']:.4f}",
            flush=True,
        )
        opt = trainer_optimizer(trainer)
        rates = []
        for epoch in range(args.epochs):
            loader = trainer.loader(trainer.task.dataset("train"), shuffle=True, seed=epoch_seed(0, 1, epoch))
            sync(trainer.device)
            start = time.perf_counter()
            loss = trainer.train_epoch(loader, *opt, cached=False, frozen=False, desc="timed")
            sync(trainer.device)
            rates.append(len(loader.dataset) / (time.perf_counter() - start))
            print(f"  timed epoch {epoch + 1}: {rates[-1]:7.1f} img/s (train_loss {loss:.4f})", flush=True)
        raw = raw_step_throughput(trainer, steps=args.steps)
        peak = torch.cuda.max_memory_allocated(trainer.device) if cuda else None
    engine = statistics.median(rates)
    print(f"engine training throughput: {engine:.1f} img/s (median of {len(rates)} epochs)")
    print(f"raw step throughput (resident batch, no data loading): {raw:.1f} img/s")
    print(f"engine / raw: {engine / raw:.2f}")
    if peak is not None:
        print(f"torch.cuda.max_memory_allocated: {peak / 2**30:.2f} GiB")
    return 0


def trainer_optimizer(trainer):
    """A fresh optimizer + constant schedule over the stage's trainable parameters, as run_stage builds them."""
    import torch

    from modelzoo.engine import make_optimizer, param_groups

    r = trainer.recipe
    opt = make_optimizer(r, param_groups(trainer.model, trainer.groups, r.optimizer.lr, r.optimizer.weight_decay, 1.0))
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


if __name__ == "__main__":
    sys.exit(main())
