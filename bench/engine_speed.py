"""Does the fine-tune engine cost time? Engine epoch time vs the best hand-written PyTorch loop.

Both train the SAME model (assembled once with ``modelzoo.assemble``; the plain loop gets a copy with
identical weights), on the SAME data (the engine's in-memory Fashion-MNIST tensors and transforms,
wrapped in the same ``DataLoader`` settings: batch size, shuffle, no workers), with the same optimizer
(AdamW, same lr and weight decay), the whole network trainable (``train = "all"``), no augmentation,
on the CPU. One "epoch" is what each side does per epoch:

* engine: ``Trainer.run_stage`` for a one-epoch stage -- optimizer and LR schedule set-up, the train
  pass, the validation pass, the checkpoint (model + optimizer state) and ``metrics.jsonl``;
* plain loop: the train pass and the same validation pass (accuracy), nothing else, with the SAME
  speed settings the engine chose for this machine (:mod:`modelzoo.engine.speed`: torch threads,
  channels_last when measured faster, bf16 autocast when measured faster): the best plain loop, not the
  naive one.

``--vs-old`` instead puts the engine with today's settings beside the engine with the old ones
(NCHW everywhere off CUDA, torch's default threads = every core of the machine), epoch for epoch in one
process: the gain of the measured settings (the target is >= 2x on a CPU with channels_last kernels).
With ``--recipe``, the recipe's last stage (the default recipe's fine-tune stage) runs whole both
ways, the new side with the frozen-layer cache (:mod:`modelzoo.engine.prefixcache`; its one pass per
stage is counted), the old side recomputing the frozen layers every batch: seconds per epoch.
The OpenMP wait policy cannot change inside one process; bench/two_runs.py measures it (two runs at once).

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
    python bench/engine_speed.py --vs-old --repeats 4
    python bench/engine_speed.py --vs-old --repeats 2 --recipe zoo/effnet-lite0-fashion-mnist.toml
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
            "task": "image-classification",
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
    model: nn.Module,
    opt: torch.optim.Optimizer,
    train: Dataset,
    val: Dataset,
    batch_size: int,
    seed: int,
    channels_last: bool = False,
    dtype: torch.dtype | None = None,
) -> float:
    """The loop a user would write by hand: train pass, then validation accuracy; returns seconds.
    ``channels_last`` / ``dtype``: the layout and autocast the best hand-written loop would use."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    start = time.perf_counter()
    model.train()
    gen = torch.Generator().manual_seed(seed)
    for x, y in DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(model(x.contiguous(memory_format=layout)).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
    model.eval()
    correct = 0
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
        for x, y in DataLoader(val, batch_size=batch_size):
            correct += (model(x.contiguous(memory_format=layout)).argmax(1) == y).sum().item()
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
    parser.add_argument("--vs-old", action="store_true", help="the engine with the old settings vs the new ones")
    parser.add_argument(
        "--recipe",
        type=Path,
        help="with --vs-old: time this recipe's last stage, whole (e.g. zoo/effnet-lite0-fashion-mnist.toml)",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="with --recipe: overrides")
    args = parser.parse_args()
    if args.vs_old:
        return vs_old_recipe(args) if args.recipe else vs_old(args)

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
        best = trainer.speed  # the engine's settings are the plain loop's too
        plain.to(memory_format=torch.channels_last if best.channels_last else torch.contiguous_format)
        opt = torch.optim.AdamW(plain.parameters(), lr=recipe.optimizer.lr, weight_decay=recipe.optimizer.weight_decay)

        def run_plain(i: int) -> float:
            return plain_epoch(
                plain, opt, train_set, val_set, args.batch_size, seed=i, channels_last=best.channels_last,
                dtype=best.amp_dtype,
            )  # fmt: skip

        print(
            f"{args.backbone} at {args.image_size} px, {len(train_set)} train / {len(val_set)} val images, "
            f"batch {args.batch_size}, AdamW, train=all; both sides {best.line()}",
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


def old_and_new(recipe, tmp: str):
    """Two trainers of ``recipe``: ``new`` with the measured settings, ``old`` with the old rule off CUDA
    (NCHW, fp32, torch's default threads: every core of the machine, the frozen layers run every batch)."""
    import os

    from modelzoo.engine.speed import adopt
    from modelzoo.engine.trainer import Trainer

    new = Trainer(recipe, Path(tmp) / "new", quiet=True)
    new.setup()
    new.threads = torch.get_num_threads()
    old = Trainer(recipe, Path(tmp) / "old", quiet=True)
    old.setup()
    adopt(old, False, None)
    old.frozen_prefix = lambda *a, **k: None
    old.threads = os.cpu_count() or 1
    return old, new


def alternate(run_old, run_new, repeats: int, unit: str) -> list[float]:
    """``repeats`` pairs in alternating order (A B, B A, ...: drift hits both sides alike); old / new ratios."""
    ratios = []
    for i in range(repeats):
        if i % 2 == 0:
            o = run_old()
            n = run_new()
        else:
            n = run_new()
            o = run_old()
        ratios.append(o / n)
        print(f"  pair {i + 1}: old {o:6.2f} {unit}   new {n:6.2f} {unit}   old/new {ratios[-1]:.2f}x", flush=True)
    return ratios


def vs_old(args: argparse.Namespace) -> int:
    """The engine with the old settings (NCHW, every core of the machine as threads) beside the engine with
    the measured ones, alternating epochs in one process; the median ratio old / new."""
    recipe = make_recipe(args)
    stage = recipe.stages[0]
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        old, new = old_and_new(recipe, tmp)
        print(f"new: {new.speed.line()}\nold: cpu, {old.threads} threads, contiguous, fp32", flush=True)

        def epoch(t) -> float:
            torch.set_num_threads(t.threads)
            return engine_epoch(t, stage)[0]

        epoch(new), epoch(old)  # warm-up
        ratios = alternate(lambda: epoch(old), lambda: epoch(new), args.repeats, "s")
    print(f"median speed-up of the measured settings over the old ones: {statistics.median(ratios):.2f}x")
    return 0


def vs_old_recipe(args: argparse.Namespace) -> int:
    """The last stage of ``args.recipe`` (the default recipe's fine-tune stage: its data, epochs and
    settings) run whole by the engine with the old settings (NCHW, every core as threads, the frozen
    layers recomputed every batch) and with today's (measured layout and threads, the frozen-layer cache,
    whose one pass per stage is counted), alternating; seconds per epoch and the median ratio."""
    from modelzoo.engine.recipe import load_recipe

    recipe = load_recipe(args.recipe, ["device=cpu", *args.set])
    si, stage = len(recipe.stages) - 1, recipe.stages[-1]
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        old, new = old_and_new(recipe, tmp)
        planned, used = new.frozen_prefix, []

        def watched(*a, **k):
            found = planned(*a, **k)
            used.append(found is not None)
            return found

        new.frozen_prefix = watched
        print(f"{args.recipe.name}: stage {si} {stage.name!r}, {stage.epochs} epoch(s), train = {stage.train!r}")
        print(f"new: {new.speed.line()}, frozen-layer cache\nold: cpu, {old.threads} threads, contiguous, fp32")

        def run(t) -> float:
            torch.set_num_threads(t.threads)
            start = time.perf_counter()
            t.run_stage(si, stage, None, 0)
            return (time.perf_counter() - start) / stage.epochs

        ratios = alternate(lambda: run(old), lambda: run(new), args.repeats, "s/epoch")
    print(f"the new side trained on cached frozen-layer outputs in {sum(used)} of {len(used)} stage runs")
    print(
        f"median speed-up of a {args.recipe.stem} fine-tune epoch over the old engine: {statistics.median(ratios):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
