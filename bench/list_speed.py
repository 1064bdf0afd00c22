"""How instant is `zoo list`? Warm-cache listing time against `import timm; timm.list_models()`.

Both are measured in the same run, as fresh interpreters (what a user waits for):

* ``python -m modelzoo list`` with a warm catalog cache (run once first to warm it), median of 5;
* ``python -c "import timm; timm.list_models()"``, median of 3.

Prints both medians and their ratio; the target is a ratio of at most 0.05.
By default a fresh temporary catalog cache is used (so the result does not depend on the user's cache);
``--cache DIR`` uses DIR instead. ``--check`` exits 1 when the ratio misses the target.

    python bench/list_speed.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 0.05


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="catalog cache dir (default: a fresh temporary one)")
    parser.add_argument("--zoo-runs", type=int, default=5)
    parser.add_argument("--timm-runs", type=int, default=3)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio exceeds {TARGET}")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("MODELZOO_PLUGINS", "MODELZOO_NO_CACHE")}
        env["MODELZOO_CACHE"] = args.cache or tmp
        zoo = [sys.executable, "-m", "modelzoo", "list"]
        timm = [sys.executable, "-c", "import timm; timm.list_models()"]
        baseline = [sys.executable, "-c", "pass"]

        cold = wall(zoo, env)  # builds and caches the catalog if the cache is cold
        zoo_times = [wall(zoo, env) for _ in range(args.zoo_runs)]
        timm_times = [wall(timm, env) for _ in range(args.timm_runs)]
        python_times = [wall(baseline, env) for _ in range(3)]

    zoo_s, timm_s = statistics.median(zoo_times), statistics.median(timm_times)
    ratio = zoo_s / timm_s
    print(f"first `python -m modelzoo list` (warms the cache): {cold:.3f} s")
    print(f"warm  `python -m modelzoo list`  median of {len(zoo_times)}: {zoo_s:.3f} s")
    print(f"`python -c 'import timm; timm.list_models()'` median of {len(timm_times)}: {timm_s:.3f} s")
    print(f"(bare `python -c pass`: {statistics.median(python_times):.3f} s)")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"ratio warm zoo list / timm.list_models: {ratio:.3f} ({verdict} the target <= {TARGET})")
    return 1 if args.check and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
