"""Ranking arithmetic for ``zoo select``: combining scores, P(rank 1), the Pareto front, and how well
a ranking predicted real fine-tunes (weighted Kendall tau, top-1 regret).

Why the scores are combined by their *ranks*: a task's transfer scores live on unrelated scales (an
accuracy in [0, 1], a log evidence per example that is only meaningful relative to other backbones),
so any weighted sum of raw values would be dominated by whichever score happens to spread most.
Ranks are scale-free, one outlying score moves a candidate by at most a few places, and each score
votes equally: the literature finds no single estimator reliably best, while cheap ones (a linear
probe, kNN) are strong baselines and LogME adds a different, Bayesian view of the same features.
Ties between mean ranks are broken by the first (most trusted) score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def ranks(values: Sequence[float], higher_is_better: bool = True) -> list[float]:
    """1 = best; tied values share the mean of the places they span; NaN ranks last."""
    n = len(values)
    key = [(-v if higher_is_better else v) if not math.isnan(v) else math.inf for v in values]
    order = sorted(range(n), key=lambda i: key[i])
    out = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and key[order[j + 1]] == key[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def combine(scores: Sequence[dict[str, float]]) -> list[float]:
    """Each candidate's mean rank over the score names they all have (lower is better)."""
    if not scores:
        return []
    names = [k for k in scores[0] if all(k in s for s in scores)]
    if not names:
        return [1.0] * len(scores)
    per_score = [ranks([float(s[k]) for s in scores]) for k in names]
    return [sum(r[i] for r in per_score) / len(names) for i in range(len(scores))]


def order(scores: Sequence[dict[str, float]]) -> list[int]:
    """Candidate indices, best first: by mean rank, ties by the first score (higher first)."""
    mean = combine(scores)
    first = next(iter(scores[0])) if scores else None
    return sorted(range(len(scores)), key=lambda i: (mean[i], -float(scores[i].get(first, 0.0)) if first else 0.0))


def rank_one_share(replicates: Sequence[Sequence[dict[str, float]]], count: int) -> list[float]:
    """P(rank 1) per candidate: the share of replicates (each: every candidate's scores on one
    re-drawn subsample) in which the candidate comes first."""
    wins = [0] * count
    for scores in replicates:
        wins[order(scores)[0]] += 1
    return [w / len(replicates) if replicates else float("nan") for w in wins]


def pareto_front(costs: Sequence[float], values: Sequence[float]) -> list[bool]:
    """True where no other point costs no more and scores at least as well, one of them strictly."""
    n = len(costs)
    front = []
    for i in range(n):
        dominated = any(
            costs[j] <= costs[i] and values[j] >= values[i] and (costs[j] < costs[i] or values[j] > values[i])
            for j in range(n)
            if j != i
        )
        front.append(not dominated)
    return front


def weighted_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Vigna's weighted Kendall tau with the hyperbolic weigher 1/(r + 1), the mean of the two
    rankings' values (what ``scipy.stats.weightedtau(x, y)`` computes, without needing scipy):
    agreement at the top of the ranking counts more than agreement at the bottom."""
    n = len(x)
    if n != len(y):
        raise ValueError("weighted_tau: x and y differ in length")
    if n < 2:
        return float("nan")

    def one(a: Sequence[float], b: Sequence[float]) -> float:
        place = {i: r for r, i in enumerate(sorted(range(n), key=lambda i: (-a[i], -b[i])))}
        num = norm_a = norm_b = 0.0
        for i in range(n):
            for j in range(i + 1, n):
                w = 1 / (place[i] + 1) + 1 / (place[j] + 1)
                da = (a[i] > a[j]) - (a[i] < a[j])
                db = (b[i] > b[j]) - (b[i] < b[j])
                num += w * da * db
                norm_a += w * (da != 0)
                norm_b += w * (db != 0)
        return num / math.sqrt(norm_a * norm_b) if norm_a and norm_b else float("nan")

    return (one(x, y) + one(y, x)) / 2


def regret(picked: int, truth: Sequence[float], higher_is_better: bool = True) -> float:
    """How much worse the picked candidate's true result is than the best one's (>= 0)."""
    best = max(truth) if higher_is_better else min(truth)
    return abs(best - truth[picked])
