"""``zoo predict RUN DIR/`` against a hand-written batched loop over the same model and files, and its
peak memory on a folder ten times larger.

* speed: images/s of ``zoo predict RUN DIR --out preds.csv`` (its own count of the loop's seconds, which
  is what a user waits for per image; start-up and model loading are reported apart) against a plain
  loop written by hand over the same files: a torch ``DataLoader`` with the same workers and batch size,
  the model's own evaluation preprocessing, ``softmax`` + ``topk``, rows written with ``csv.writer``,
  in the faster memory format for this machine (NCHW or channels_last, timed on one batch before the
  clock starts, as ``zoo predict`` chooses by measurement).
  Each side runs in a fresh process, interleaved ``--pairs`` times; the ratio is the median of the pairs'
  ``hand loop images/s / zoo predict images/s`` (target: at most 1.1);
* memory: peak RSS (``os.wait4``: the process tree's largest) of ``zoo predict`` on ``--files`` images and
  on ``--large`` files (the same images hard-linked, so the disk holds one copy); target: at most
  +50 MiB for ten times the files: nothing per file is kept but its name.

The model is the default recipe's architecture (``tf_efficientnet_lite0``, random weights: speed does not
depend on their values) at ``--image-size`` px, saved as a run folder with ``modelzoo.save_model``.

    python bench/predict_speed.py [--files 5000] [--large 50000] [--pairs 3] [--workers 2] [--check]
    python bench/predict_speed.py --smoke      # a few hundred files, one pair: checks the script runs
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.1
TARGET_GROWTH_MIB = 50.0

HAND_LOOP = r"""
import csv, sys, time
import torch
from torch.utils.data import DataLoader, Dataset
from modelzoo import load
from modelzoo.sdk import read_image_tensor
from zoo_classification.data import build_transform

run, folder, out, workers, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(int(sys.argv[6]))
model = load(run).eval()
tf = build_transform(model.preprocess, train=False, augment="none", from_files=True)
files = sorted(str(p) for p in __import__("pathlib").Path(folder).rglob("*.png"))
layout = torch.contiguous_format
with torch.inference_mode():  # the best loop for this machine: the faster memory format, timed on one batch
    x = torch.stack([tf(read_image_tensor(f)) for f in files[:batch]])
    best = None
    for fmt in (torch.contiguous_format, torch.channels_last) * 2:
        model.to(memory_format=fmt)
        t = time.perf_counter()
        model(x.contiguous(memory_format=fmt))
        t = time.perf_counter() - t
        if best is None or t < best:
            best, layout = t, fmt
model.to(memory_format=layout)

class Files(Dataset):
    def __len__(self):
        return len(files)
    def __getitem__(self, i):
        return tf(read_image_tensor(files[i]))

start = time.perf_counter()
rows = 0
with open(out, "w", newline="") as fh, torch.inference_mode():
    writer = csv.writer(fh)
    for i, x in enumerate(DataLoader(Files(), batch_size=batch, num_workers=workers)):
        probs, idx = model(x.contiguous(memory_format=layout)).softmax(-1).topk(5, -1)
        for j, (p, k) in enumerate(zip(probs.tolist(), idx.tolist())):
            writer.writerow([files[i * batch + j], *[v for pair in zip([model.labels[c] for c in k], p) for v in pair]])
            rows += 1
print(f"hand {rows} {time.perf_counter() - start:.3f} {layout}")
"""


def make_run(root: Path, backbone: str, size: int) -> Path:
    from modelzoo import assemble, save_model

    labels = [f"class{i}" for i in range(10)]
    model = assemble(
        backbone,
        "linear",
        labels=labels,
        pretrained=False,
        preprocess={"input_size": [3, size, size]},
        task="image-classification",
    )
    save_model(model, root / "run")
    return root / "run"


def make_images(folder: Path, n: int, size: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"d{i // 500:03d}" / f"img{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def link_images(folder: Path, images: list[Path], n: int) -> None:
    """``n`` files: hard links to ``images`` round-robin (one copy on disk)."""
    for i in range(n):
        path = folder / f"d{i // 500:04d}" / f"img{i:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(images[i % len(images)], path)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """``(wall seconds, peak RSS MiB of the process tree, stdout + stderr)``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def zoo_predict(run: Path, folder: Path, out: Path, args, env) -> tuple[float, float, float]:
    """``(images/s of the loop, wall seconds, peak MiB)`` of one ``zoo predict``."""
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "modelzoo", "predict", str(run), str(folder), "--out", str(out)]
    cmd += ["--workers", str(args.workers), "--batch-size", str(args.batch_size)]
    wall, peak, text = timed(cmd, env)
    found = re.search(r"predicted ([\d,]+) files in ([\d.]+)s", text)
    if not found:
        sys.exit(f"no summary line from zoo predict:\n{text[-2000:]}")
    files, seconds = int(found.group(1).replace(",", "")), float(found.group(2))
    return files / seconds, wall, peak


def hand_loop(run: Path, folder: Path, out: Path, args, env) -> tuple[float, float, str]:
    cmd = [sys.executable, "-c", HAND_LOOP, str(run), str(folder), str(out), str(args.workers)]
    cmd += [str(args.batch_size), str(args.threads)]
    wall, _, text = timed(cmd, env)
    _, rows, seconds, layout = re.search(r"hand (\d+) ([\d.]+) (\S+)", text).group(0).split()
    return int(rows) / float(seconds), wall, layout.removeprefix("torch.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--large", type=int, default=50000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--backbone", default="timm:tf_efficientnet_lite0")
    parser.add_argument("--smoke", action="store_true", help="200 / 400 files, one pair, a tiny model")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.large, args.pairs, args.backbone, args.image_size = 200, 400, 1, "timm:test_convnext", 32
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory(prefix="predict-speed-") as tmp:
        root = Path(tmp)
        run = make_run(root, args.backbone, args.image_size)
        images = make_images(root / "files", args.files, args.image_size)
        link_images(root / "large", images, args.large)
        zoo_rates, hand_rates, ratios = [], [], []
        for pair in range(args.pairs):
            z, z_wall, _ = zoo_predict(run, root / "files", root / "zoo.csv", args, env)
            h, h_wall, layout = hand_loop(run, root / "files", root / "hand.csv", args, env)
            zoo_rates.append(z)
            hand_rates.append(h)
            ratios.append(h / z)
            print(
                f"pair {pair + 1}: zoo predict {z:,.1f} images/s ({z_wall:.1f} s wall), hand loop {h:,.1f} images/s"
                f" ({h_wall:.1f} s wall, {layout}): ratio {h / z:.3f}",
                flush=True,
            )
        ratio = statistics.median(ratios)
        _, _, small_peak = zoo_predict(run, root / "files", root / "small.csv", args, env)
        _, _, large_peak = zoo_predict(run, root / "large", root / "large.csv", args, env)
    growth = large_peak - small_peak
    print(
        f"speed: hand loop / zoo predict = {ratio:.3f} (median of {args.pairs}; target <= {TARGET_RATIO});"
        f" zoo predict {statistics.median(zoo_rates):,.1f} images/s, hand loop {statistics.median(hand_rates):,.1f}"
    )
    print(
        f"memory: peak {small_peak:.0f} MiB for {args.files:,} files, {large_peak:.0f} MiB for {args.large:,}:"
        f" {growth:+.0f} MiB (target <= +{TARGET_GROWTH_MIB:.0f})"
    )
    missed = ratio > TARGET_RATIO or growth > TARGET_GROWTH_MIB
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
