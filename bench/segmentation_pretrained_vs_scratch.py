"""Does ImageNet pretraining pay off for segmentation? The demo recipe, pretrained vs random init.

Runs ``zoo/effnet-lite0-fpn-fashion-segments.toml`` twice on the same budget (same data, stages,
epochs, seed): once as written (EfficientNet-Lite0 with the packaged ImageNet weights), once with
``model.pretrained = false`` (the same architecture, random init). Prints mIoU, pixel accuracy and
the wall time of each, and exits 1 with ``--check`` when pretrained does not beat random init on mIoU.

Tune on the hold-out, never on the reported split: ``--set data.options.holdout=true`` makes the
validation scenes from Fashion-MNIST *train* items the training scenes never use.

    python bench/segmentation_pretrained_vs_scratch.py                        # the reported split
    python bench/segmentation_pretrained_vs_scratch.py --set data.options.holdout=true
"""

from __future__ import annotations

import sys
from pathlib import Path

from _compare import Column, main

RECIPE = Path(__file__).resolve().parents[1] / "zoo" / "effnet-lite0-fpn-fashion-segments.toml"
COLUMNS = [Column("miou", "mIoU", 7), Column("pixel_accuracy", "pix-acc", 8)]

if __name__ == "__main__":
    sys.exit(main(__doc__, RECIPE, COLUMNS, decides="miou"))
