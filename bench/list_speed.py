"""How instant is `zoo list`? Cold and warm listing against `import timm; timm.list_models()`.

All three are fresh interpreters (what a user waits for), measured in the same run, interleaved:

* cold: ``python -m modelzoo list`` with an empty catalog cache (each run gets a new one): unchanged
  first-party plugins come from the shipped ``registry.json``; nothing imports torch;
* warm: ``python -m modelzoo list`` with the cache the cold run left;
* ``python -c "import timm; timm.list_models()"``.

Prints medians, the ratios to timm's time (targets: cold <= 0.1, warm <= 0.05) and each command's
peak RSS (``ru_maxrss`` of the child process). ``--check`` exits 1 when a ratio misses its target.

    python bench/list_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGETS = {"cold": 0.1, "warm": 0.05}


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (interleaved)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio misses its target")
    args = parser.parse_args()

    base = {k: v for k, v in os.environ.items() if k not in ("MODELZOO_PLUGINS", "MODELZOO_NO_CACHE")}
    zoo = [sys.executable, "-m", "modelzoo", "list"]
    timm = [sys.executable, "-c", "import timm; timm.list_models()"]
    results: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": [], "timm": []}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        for i in range(args.runs):
            env = {**base, "MODELZOO_CACHE": os.path.join(tmp, f"cache{i}")}
            results["cold"].append(measure(zoo, env))  # an empty cache: the shipped registry
            results["warm"].append(measure(zoo, env))  # the cache the cold run wrote
            results["timm"].append(measure(timm, base))

    medians = {k: statistics.median(s for s, _ in v) for k, v in results.items()}
    peaks = {k: max(m for _, m in v) for k, v in results.items()}
    failed = False
    print(f"median of {args.runs} runs each, fresh interpreters, interleaved")
    print(f"{'command':<44} {'seconds':>8} {'peak RSS':>10}")
    labels = {
        "cold": "zoo list, empty cache (shipped registry)",
        "warm": "zoo list, warm cache",
        "timm": "import timm; timm.list_models()",
    }
    for key, label in labels.items():
        print(f"{label:<44} {medians[key]:8.3f} {peaks[key]:7.0f} MiB")
    for key, target in TARGETS.items():
        ratio = medians[key] / medians["timm"]
        ok = ratio <= target
        failed |= not ok
        print(
            f"ratio {key} zoo list / timm.list_models: {ratio:.3f} ({'meets' if ok else 'misses'} the target <= {target})"
        )
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
