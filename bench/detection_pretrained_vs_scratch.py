"""Does ImageNet pretraining pay off for detection? The demo recipe, pretrained vs from scratch.

Runs ``zoo/mobilenetv2-fasterrcnn-fashion-scenes.toml`` twice on the same budget (same data, stages,
epochs, seed): once as written (MobileNetV2 with the packaged ImageNet weights), once with
``model.pretrained = false`` (the same architecture, random init). Prints COCO mAP, mAP@.5 and the
wall time of each, and exits 1 with ``--check`` when pretrained does not beat scratch on mAP.

    python bench/detection_pretrained_vs_scratch.py            # ~2 x 4-5 min on 2 CPU cores
    python bench/detection_pretrained_vs_scratch.py --set stages.0.epochs=1 --set stages.1.epochs=1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "zoo" / "mobilenetv2-fasterrcnn-fashion-scenes.toml"


def run(recipe: Path, out: Path, overrides: list[str]) -> tuple[dict, float]:
    from modelzoo.engine import finetune

    start = time.perf_counter()
    result = finetune(recipe, out=out, overrides=overrides, quiet=True)
    return result.metrics, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for both runs")
    parser.add_argument("--out", type=Path, help="keep the two run folders here (default: a temporary folder)")
    parser.add_argument("--check", action="store_true", help="exit 1 unless pretrained beats scratch on mAP")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        rows = []
        for name, extra in (("pretrained", []), ("scratch", ["model.pretrained=false"])):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            metrics, seconds = run(args.recipe, root / name, [*args.set, *extra])
            rows.append((name, metrics, seconds))
    print(f"{args.recipe.name} (same data, stages and seed)")
    print(f"{'backbone':<12} {'mAP':>7} {'mAP@.5':>7} {'mAP@.75':>8} {'seconds':>8}")
    for name, m, s in rows:
        print(f"{name:<12} {m['map']:7.4f} {m['map_50']:7.4f} {m['map_75']:8.4f} {s:8.1f}")
    better = rows[0][1]["map"] > rows[1][1]["map"]
    print("pretrained beats scratch" if better else "pretrained does NOT beat scratch")
    return 0 if better or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
