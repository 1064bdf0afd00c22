"""Does ImageNet pretraining pay off? The default recipe, pretrained vs from scratch.

Runs ``zoo/effnet-lite0-fashion-mnist.toml`` twice on the same budget (same data, stages, epochs,
seed): once as written (EfficientNet-Lite0 with the packaged ImageNet weights), once with
``model.pretrained = false`` (the same architecture, random init). Prints the final val accuracy,
macro recall and wall time of each, and exits 1 with ``--check`` when pretrained does not beat
scratch on accuracy. The measured numbers go into the recipe's ``[reference]`` table.

    python bench/pretrained_vs_scratch.py            # ~2 x 2-4 min on 2 CPU cores
    python bench/pretrained_vs_scratch.py --set data.train_limit=500 --set data.val_limit=200
"""

from __future__ import annotations

import sys
from pathlib import Path

from _compare import Column, main

RECIPE = Path(__file__).resolve().parents[1] / "zoo" / "effnet-lite0-fashion-mnist.toml"
COLUMNS = [Column("accuracy", "val_acc", 8), Column("macro_recall", "recall", 7)]

if __name__ == "__main__":
    sys.exit(main(__doc__, RECIPE, COLUMNS, decides="accuracy"))
