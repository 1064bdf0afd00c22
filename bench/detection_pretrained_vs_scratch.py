"""Does ImageNet pretraining pay off for detection? The demo recipe, pretrained vs from scratch.

Runs ``zoo/mobilenetv2-fasterrcnn-fashion-scenes.toml`` twice on the same budget (same data, stages,
epochs, seed): once as written (MobileNetV2 with the packaged ImageNet weights), once with
``model.pretrained = false`` (the same architecture, random init). Prints COCO mAP, mAP@.5 and the
wall time of each, and exits 1 with ``--check`` when pretrained does not beat scratch on mAP.

The recipe's settings were picked on a hold-out, never on the val scenes this reports: see
``bench/detection_sweep.py`` (``--split holdout``).

    python bench/detection_pretrained_vs_scratch.py            # ~2 x 4-5 min on 2 CPU cores
    python bench/detection_pretrained_vs_scratch.py --set stages.0.epochs=1 --set stages.1.epochs=1
"""

from __future__ import annotations

import sys
from pathlib import Path

from _compare import Column, main

RECIPE = Path(__file__).resolve().parents[1] / "zoo" / "mobilenetv2-fasterrcnn-fashion-scenes.toml"
COLUMNS = [Column("map", "mAP", 7), Column("map_50", "mAP@.5", 7), Column("map_75", "mAP@.75", 8)]

if __name__ == "__main__":
    sys.exit(main(__doc__, RECIPE, COLUMNS, decides="map"))
