"""Do two jobs side by side cost about twice one? Wall time and CPU time of two default runs started
together vs one run alone, on the same cores.

Users run on laptops, CI runners and shared servers. Before the speed settings, two fine-tunes of the
default recipe sharing 2 cores took 8x one alone: torch sized its threads to the machine, not to what
was free, and waiting OpenMP threads spun on the cores the other run needed. Now threads are sized to
the usable cores and waiting threads sleep (``OMP_WAIT_POLICY=PASSIVE``, :mod:`modelzoo.engine.speed`),
so the target is: two together finish within ``TARGET`` x the wall time of one alone.

Each run is ``zoo finetune RECIPE --quiet`` in its own process and run folder, with the same user
cache (so the cached features and the speed measurement are shared, as on a user's machine: a warm-up
run fills them first, untimed). Reported: each process's wall time and CPU seconds (``os.wait4``), the
ratio together / alone, and the load average while they ran. ``--old`` runs the same with the previous
behaviour forced (``OMP_WAIT_POLICY=ACTIVE``, every machine core as threads, NCHW), for the side by side.

    python bench/two_runs.py                                # the default recipe, ~10 min on 2 cores
    python bench/two_runs.py --recipe zoo/x.toml --set stages.1.epochs=1 --old
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 2.5
DEFAULT = "effnet-lite0-fashion-mnist"


def start(recipe: str, out: Path, sets: list[str], env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "modelzoo", "finetune", recipe, "--out", str(out), "--quiet"]
    for item in sets:
        cmd += ["--set", item]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait(proc: subprocess.Popen, began: float) -> tuple[float, float]:
    """(wall seconds since ``began``, CPU seconds of the process and its children)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"a run failed: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
    return time.perf_counter() - began, usage.ru_utime + usage.ru_stime


def runs(recipe: str, root: Path, sets: list[str], env: dict[str, str], n: int, tag: str) -> list[tuple[float, float]]:
    began = time.perf_counter()
    procs = [start(recipe, root / f"{tag}-{i}", sets, env) for i in range(n)]
    return [wait(p, began) for p in procs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=DEFAULT, help=f"a recipe name or file (default: {DEFAULT})")
    parser.add_argument("--set", action="append", default=[], help="recipe overrides, as zoo finetune --set")
    parser.add_argument("--old", action="store_true", help="also run with the old behaviour, side by side")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if together / alone exceeds {TARGET}")
    args = parser.parse_args()
    from modelzoo.util.cores import usable_cores

    with tempfile.TemporaryDirectory(prefix="zoo-two-runs-") as tmp:
        root = Path(tmp)
        base = {**os.environ, "MODELZOO_CACHE": os.environ.get("MODELZOO_CACHE", str(root / "cache"))}
        base.pop("OMP_NUM_THREADS", None)
        base.pop("OMP_WAIT_POLICY", None)
        settings = {"new": base}
        if args.old:
            cores = str(os.cpu_count() or 1)
            settings["old"] = {
                **base,
                "OMP_WAIT_POLICY": "ACTIVE",
                "OMP_NUM_THREADS": cores,
                "MODELZOO_CHANNELS_LAST": "0",
            }
        print(f"{args.recipe} {' '.join(args.set)}; {usable_cores()} usable cores, load {os.getloadavg()[0]:.1f}")
        runs(args.recipe, root, args.set, base, 1, "warm")  # fills the feature cache and the speed measurement
        verdict = 0
        for name, env in settings.items():
            (alone, cpu_alone), *_ = runs(args.recipe, root, args.set, env, 1, f"{name}-alone")
            together = runs(args.recipe, root, args.set, env, 2, f"{name}-together")
            load = os.getloadavg()[0]
            wall = max(w for w, _ in together)
            ratio = wall / alone
            print(
                f"{name}: alone {alone:.1f} s wall ({cpu_alone:.1f} CPU-s); two together {wall:.1f} s wall"
                f" ({', '.join(f'{c:.1f}' for _, c in together)} CPU-s); together / alone {ratio:.2f}x"
                f" (target <= {TARGET}); load after {load:.1f}"
            )
            verdict |= int(name == "new" and ratio > TARGET)
    return verdict if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
