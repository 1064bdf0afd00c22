"""Does the fine-tune engine cost time? Engine epoch time vs a hand-written PyTorch loop.

Both train the SAME model (assembled once with ``modelzoo.assemble``; the plain loop gets a copy with
identical weights), on the SAME data (the engine's in-memory Fashion-MNIST tensors and transforms,
wrapped in the same ``DataLoader`` settings: batch size, shuffle, no workers), with the same optimizer
(AdamW, same lr and weight decay), the whole network trainable (``train = "all"``), no augmentation,
on the CPU. One "epoch" is what each side does per epoch:

* engine: ``Trainer.run_stage`` for a one-epoch stage -- optimizer and LR schedule set-up, the train
  pass, the validation pass, the checkpoint (model + optimizer state) and ``metrics.jsonl``;
* plain loop: the train pass and the same validation pass (accuracy), nothing else.

The two are measured side by side in one process, interleaved (A B B A ...) after one untimed warm-up
epoch each, and the median of the per-pair ratios is reported; the target is a ratio of at most 1.05.
Timings on a shared CPU are noisy: look at the per-pair ratios, and at the ratio of the fastest epochs
(noise only ever adds time, so the minimums are the least disturbed estimate).

The engine's one real extra is the checkpoint it writes after every epoch so a killed run resumes
exactly: ``torch.save`` of the model and AdamW state (~50 MB for MobileNetV3-Large) plus an fsync,
a FIXED ~0.1-0.2 s per epoch here. It is counted against the engine, and printed apart; its share
shrinks as epochs grow (a few hundred images per epoch on 2 slow cores makes it a few percent).

    python bench/engine_speed.py                  # ~2-3 min on 2 slow CPU cores
    python bench/engine_speed.py --repeats 3 --train 128 --check
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

TARGET = 1.05


def make_recipe(args: argparse.Namespace, name: str = "engine-speed", epochs: int = 1):
    """A one-stage, whole-network, no-augmentation CPU recipe on in-memory Fashion-MNIST (also bench/memory.py's)."""
    from modelzoo.engine.recipe import validate

    return validate(
        {
            "name": name,
            "seed": 0,
            "device": "cpu",
            "amp": False,
            "model": {"backbone": args.backbone, "pretrained": False, "head": "linear"},
            "data": {
                "dataset": "fashion-mnist",
                "train_limit": args.train,
                "val_limit": args.val,
                "image_size": args.image_size,
                "batch_size": args.batch_size,
                "augment": "none",
                "num_workers": 0,
            },
            "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "layer_decay": 1.0},
            "stages": [{"name": "all", "train": "all", "epochs": epochs, "schedule": "constant"}],
        }
    )


def plain_epoch(
    model: nn.Module, opt: torch.optim.Optimizer, train: Dataset, val: Dataset, batch_size: int, seed: int
) -> float:
    """The loop a user would write by hand: train pass, then validation accuracy; returns seconds."""
    start = time.perf_counter()
    model.train()
    gen = torch.Generator().manual_seed(seed)
    for x, y in DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(val, batch_size=batch_size):
            correct += (model(x).argmax(1) == y).sum().item()
    return time.perf_counter() - start


def engine_epoch(trainer, stage) -> tuple[float, float]:
    """One engine epoch (a one-epoch stage); returns (wall seconds, the seconds the engine itself logged)."""
    start = time.perf_counter()
    trainer.run_stage(0, stage, None, 0)
    return time.perf_counter() - start, trainer.history[-1]["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="mobilenetv3_large_100", help="any registered backbone (random init)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--train", type=int, default=512, help="train images per epoch")
    parser.add_argument("--val", type=int, default=128, help="validation images per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10, help="timed epochs per side (interleaved)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the median ratio exceeds {TARGET}")
    args = parser.parse_args()

    from modelzoo import assemble
    from modelzoo.engine.trainer import Trainer

    recipe = make_recipe(args)
    stage = recipe.stages[0]
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        trainer = Trainer(recipe, Path(tmp), quiet=True)
        trainer.setup()
        a = trainer.task
        train_set, val_set = a.dataset("train"), a.dataset("val")
        plain = assemble(
            args.backbone, "linear", num_classes=len(a.labels), labels=a.labels, pretrained=False
        )  # the same backbone + head, built the same way ...
        plain.load_state_dict(copy.deepcopy(trainer.model.state_dict()))  # ... with the same weights
        opt = torch.optim.AdamW(plain.parameters(), lr=recipe.optimizer.lr, weight_decay=recipe.optimizer.weight_decay)

        def run_plain(i: int) -> float:
            return plain_epoch(plain, opt, train_set, val_set, args.batch_size, seed=i)

        print(
            f"{args.backbone} at {args.image_size} px, {len(train_set)} train / {len(val_set)} val images, "
            f"batch {args.batch_size}, AdamW, train=all, CPU ({torch.get_num_threads()} threads)",
            flush=True,
        )
        engine_epoch(trainer, stage)  # warm-up (allocator, lazy init), untimed
        run_plain(-1)
        rows = []
        for i in range(args.repeats):
            if i % 2 == 0:
                eng, logged = engine_epoch(trainer, stage)
                pln = run_plain(i)
            else:
                pln = run_plain(i)
                eng, logged = engine_epoch(trainer, stage)
            rows.append((eng, logged, pln))
            print(
                f"  pair {i + 1}: engine {eng:6.2f} s (train+val {logged:6.2f} s, checkpoint etc. {eng - logged:5.2f} s)"
                f"   plain {pln:6.2f} s   ratio {eng / pln:.3f}",
                flush=True,
            )
    ratios = [e / p for e, _, p in rows]
    ratio = statistics.median(ratios)
    eng_med, pln_med = statistics.median(r[0] for r in rows), statistics.median(r[2] for r in rows)
    print(f"median engine epoch {eng_med:.2f} s, median plain epoch {pln_med:.2f} s over {len(rows)} pairs")
    print(f"per-pair ratios: {', '.join(f'{r:.3f}' for r in ratios)} (min {min(ratios):.3f}, max {max(ratios):.3f})")
    ckpt = statistics.median(e - lg for e, lg, _ in rows)
    print(f"engine checkpoint + metrics write per epoch (median): {ckpt:.2f} s ({ckpt / eng_med:.1%} of its epoch)")
    no_ckpt = statistics.median(lg / p for _, lg, p in rows)
    print(f"median ratio without the checkpoint (engine train+val / plain): {no_ckpt:.3f}")
    fastest = min(r[0] for r in rows) / min(r[2] for r in rows)
    print(f"ratio of the fastest epochs (engine min / plain min): {fastest:.3f}")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"median ratio engine / plain epoch time: {ratio:.3f} ({verdict} the target <= {TARGET})")
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
