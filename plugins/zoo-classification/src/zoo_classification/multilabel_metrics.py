"""Multi-label metrics: average precision per class (mAP), F1 at per-class thresholds and their tuning.

Scores are sigmoid probabilities, one column per label; targets are 0/1 in the same layout. Average
precision is computed as scikit-learn's ``average_precision_score`` does (the precision at each distinct
score, weighted by the recall it adds; tied scores count together), without its dependency. A label
with no positive example has no AP: it is left out of the mean, and reported as ``None``.

Thresholds are tuned per label to maximise that label's F1 on the validation split: the cut is placed
half-way between the best score to keep and the next lower one, so a slightly lower score on new data
is still kept. A label without positives (or without any cut better than nothing) keeps 0.5.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

DEFAULT_THRESHOLD = 0.5


def average_precision(scores: torch.Tensor, positive: torch.Tensor) -> float | None:
    """AP of one label's ``scores`` (N,) against 0/1 ``positive`` (N,); None when nothing is positive."""
    n_pos = int(positive.sum().item())
    if n_pos == 0:
        return None
    order = torch.argsort(scores, descending=True, stable=True)
    s, p = scores[order].double(), positive[order].double()
    tps = torch.cumsum(p, 0)
    # the last index of every run of tied scores: one operating point per distinct score
    last = torch.nonzero(torch.cat([s[1:] != s[:-1], torch.tensor([True])])).flatten()
    tp = tps[last]
    precision = tp / (last + 1).double()
    recall = tp / n_pos
    gained = torch.diff(recall, prepend=torch.zeros(1, dtype=recall.dtype))
    return float((gained * precision).sum().item())


def best_threshold(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """The cut that maximises one label's F1 on these examples (``score >= cut`` is predicted positive)."""
    n_pos = int(positive.sum().item())
    if n_pos == 0 or len(scores) == 0:
        return DEFAULT_THRESHOLD
    order = torch.argsort(scores, descending=True, stable=True)
    s, p = scores[order].double(), positive[order].double()
    tps = torch.cumsum(p, 0)
    last = torch.nonzero(torch.cat([s[1:] != s[:-1], torch.tensor([True])])).flatten()
    tp = tps[last]
    predicted = (last + 1).double()
    f1 = 2 * tp / (predicted + n_pos)
    k = int(torch.argmax(f1).item())  # the first (highest cut) of equally good ones
    keep = float(s[last[k]].item())
    below = float(s[last[k] + 1].item()) if int(last[k]) + 1 < len(s) else 0.0
    return float(min(max((keep + below) / 2, 1e-6), 1.0))


def tune_thresholds(probs: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """Per-label F1-maximising thresholds of ``probs`` (N, C) against 0/1 ``targets`` (N, C)."""
    return [round(best_threshold(probs[:, c], targets[:, c]), 6) for c in range(probs.shape[1])]


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def summarize(
    logits: torch.Tensor,
    targets: torch.Tensor,
    thresholds: list[float] | None = None,
    per_class: bool = False,
) -> dict[str, Any]:
    """Loss, mAP and micro/macro F1 of multi-label ``logits`` (N, C) against 0/1 ``targets`` (N, C).

    ``thresholds``: the model's per-label cuts; None tunes them on these examples (the validation
    split at the end of training) and returns them as ``thresholds``.
    """
    num = logits.shape[1] if logits.ndim == 2 else 0
    if len(targets) == 0:
        nan = float("nan")
        return {"loss": nan, "map": nan, "micro_f1": nan, "macro_f1": nan}
    targets = targets.float()
    probs = logits.float().sigmoid()
    loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), targets).item()
    tuned = thresholds is None
    cuts = tune_thresholds(probs, targets) if tuned else [float(t) for t in thresholds]
    predicted = probs >= torch.tensor(cuts, dtype=probs.dtype)
    truth = targets > 0.5
    tp = (predicted & truth).sum(0).double()
    fp = (predicted & ~truth).sum(0).double()
    fn = (~predicted & truth).sum(0).double()
    support = truth.sum(0)
    aps = [average_precision(probs[:, c], truth[:, c]) for c in range(num)]
    f1s = [_f1(tp[c].item(), fp[c].item(), fn[c].item()) for c in range(num)]
    present = [c for c in range(num) if support[c] > 0]
    out: dict[str, Any] = {
        "loss": loss,
        "map": sum(aps[c] for c in present) / len(present) if present else float("nan"),
        "micro_f1": _f1(tp.sum().item(), fp.sum().item(), fn.sum().item()),
        "macro_f1": sum(f1s[c] for c in present) / len(present) if present else float("nan"),
    }
    if per_class:
        out["per_class"] = [
            {
                "ap": None if aps[c] is None else round(aps[c], 4),
                "f1": round(f1s[c], 4),
                "threshold": round(cuts[c], 4),
                "support": int(support[c].item()),
            }
            for c in range(num)
        ]
        out["thresholds"] = cuts
        out["thresholds_tuned_here"] = tuned
    return out


def is_threshold_list(value: Any, count: int) -> bool:
    """``count`` numbers strictly between 0 and 1 (what a thresholds file must hold)."""
    return (
        isinstance(value, list)
        and len(value) == count
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v <= 1 for v in value
        )
    )
