"""``zoo select --validate K``: does the ranking hold up against real fine-tunes?

Fine-tunes the top K candidates (and the random-init reference) with the selection's own recipe
and two seeds each (``--seeds N`` for more), then measures how well the combined score, and the
published prior beside it, predicted the fine-tuned metric: weighted Kendall tau (agreement at the
top counts most), top-1 regret (how far the pick is from the best fine-tune, with its standard error
paired by seed), and the seed-to-seed noise of the fine-tunes themselves, which bounds what any
ranking can achieve. Only the training seed varies: ``data_seed`` stays the selection's, so every
fine-tune trains and is measured on the examples the candidates were scored on (as the user's own
fine-tune will be), and the seeds share one feature pass per candidate. Each figure is also given per
seed, so the reader sees how much of it is noise, and each score is judged alone as well (which
estimator predicted this data best). Finished run folders are reused, so an interrupted
validation resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .candidates import _slug, candidate_recipe
from .ranking import regret, weighted_tau
from .results import Candidate, Selection


def _finetune(recipe, out: Path, metric: str, ledger: Path) -> tuple[float, float]:
    """The run's final metric and its wall seconds. Finished runs are recorded in ``ledger`` (a JSON
    file beside the run folders) and read back instead of rerun."""
    from ..engine.trainer import finetune
    from ..util.files import atomic_write_text

    done = json.loads(ledger.read_text(encoding="utf-8")) if ledger.is_file() else {}
    if out.name in done and (out / "model.safetensors").is_file():
        return float(done[out.name]["value"]), float(done[out.name]["seconds"])
    start = time.perf_counter()
    if (out / "recipe.toml").is_file():  # an interrupted run: continue it from its last checkpoint
        run = finetune(recipe, resume=out, quiet=True)
    else:
        run = finetune(recipe, out=out, quiet=True)
    seconds = time.perf_counter() - start  # setup, every stage and the final evaluation: what a user waits for
    done[out.name] = {"value": float(run.metrics[metric]), "seconds": round(seconds, 1)}
    atomic_write_text(ledger, json.dumps(done, indent=2) + "\n")
    return float(run.metrics[metric]), seconds


def _ranking_quality(score: list[float], truth: list[float], truths: list[list[float]]) -> dict[str, Any]:
    """tau and regret of ``score`` (higher = predicted better) against the mean and each seed's truth."""
    pick = max(range(len(score)), key=lambda i: score[i])
    best = max(range(len(truth)), key=lambda i: truth[i])
    # the regret paired by seed (every candidate is fine-tuned with the same seeds, and a seed moves them
    # all alike): its standard error says whether the pick is really behind the best, or only by chance
    paired = [t[best] - t[pick] for t in truths]
    return {
        "tau": weighted_tau(score, truth),
        "tau_per_seed": [weighted_tau(score, t) for t in truths],
        "pick": pick,
        "regret": regret(pick, truth),
        "regret_se": statistics.stdev(paired) / math.sqrt(len(paired)) if len(paired) >= 2 else math.nan,
        "regret_per_seed": [regret(pick, t) for t in truths],
    }


def validate_selection(
    sel: Selection, k: int, out: Path, seeds: int = 2, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Fine-tune the top ``k`` candidates (+ the reference) ``seeds`` times each; compare the rankings."""
    from ..errors import ZooError

    log = log or (lambda msg: None)
    if k < 1:
        raise ZooError("--validate K needs K >= 1 (the number of top candidates to fine-tune)")
    if seeds < 2:
        raise ZooError("--seeds N needs N >= 2: seed-to-seed noise is what the ranking is judged against")
    ranked = [item.candidate for item in sel.ranked[:k]]
    picks: list[Candidate] = ranked + ([sel.reference.candidate] if sel.reference else [])
    seed_list = [sel.base.seed + s for s in range(seeds)]
    sign = 1.0 if sel.higher_is_better else -1.0
    runs: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    total = len(picks) * len(seed_list)
    done = 0
    for cand in picks:
        for seed in seed_list:
            done += 1
            weights = "scratch" if cand.reference else cand.pretrained
            name = _slug(f"{sel.dataset}-{cand.arch}-{weights}-d{sel.base.seed_for_data}-s{seed}")
            log(f"[validate {done}/{total}] fine-tuning {cand.label} with seed {seed}")
            recipe = candidate_recipe(sel.base, cand, seed=seed, name=name)
            value, secs = _finetune(recipe, out / "validate" / name, sel.metric, out / "validate" / "runs.json")
            runs.setdefault(cand.label, []).append(value)
            seconds.setdefault(cand.label, []).append(secs)
            log(f"  {sel.metric} {value:.4f} in {secs:.0f}s")
    truth = [sign * sum(runs[c.label]) / len(seed_list) for c in ranked]
    truths = [[sign * runs[c.label][s] for c in ranked] for s in range(len(seed_list))]
    combined = [-float(i) for i in range(len(ranked))]  # the final ranking (mean rank, ties broken)
    lowest = min((c.prior for c in ranked if c.prior is not None), default=0.0)
    prior = [c.prior if c.prior is not None else lowest - 1.0 for c in ranked]
    spreads = {label: max(v) - min(v) for label, v in runs.items()}
    result: dict[str, Any] = {
        "metric": sel.metric,
        "seeds": seed_list,
        "recipe": sel.base.name,
        "candidates": [
            {
                "name": c.label,
                "values": runs[c.label],
                "mean": sum(runs[c.label]) / len(seed_list),
                "spread": spreads[c.label],
                "seconds": seconds[c.label],
                "reference": c.reference,
            }
            for c in picks
        ],
        "finetune_seconds": sum(sum(v) for v in seconds.values()),
        "selection_seconds": sel.seconds,
        "feature_seconds": sum(item.feature_seconds for item in sel.ranked)
        + (sel.reference.feature_seconds if sel.reference else 0.0),
    }
    if len(ranked) >= 2:
        result["combined"] = _ranking_quality(combined, truth, truths)
        result["combined"]["pick"] = ranked[result["combined"]["pick"]].label
        if any(c.prior is not None for c in ranked):
            result["prior"] = _ranking_quality(prior, truth, truths)
            result["prior"]["pick"] = ranked[result["prior"]["pick"]].label
        # each score alone: which estimator predicted this data's fine-tunes (higher is better for all)
        result["per_score"] = {}
        for score in sel.score_names:
            quality = _ranking_quality([item.scores[score] for item in sel.ranked[:k]], truth, truths)
            result["per_score"][score] = {**quality, "pick": ranked[quality["pick"]].label}
        noise = [spreads[c.label] for c in ranked]
        pairs = list(itertools.combinations(truths, 2))
        result["seed_noise"] = {
            "mean_spread": sum(noise) / len(noise),
            "mean_std": sum(statistics.stdev(runs[c.label]) for c in ranked) / len(ranked),
            # with more than two seeds: the mean over every pair of seeds' rankings
            "tau_between_seeds": sum(weighted_tau(a, b) for a, b in pairs) / len(pairs) if pairs else math.nan,
        }
    return result
