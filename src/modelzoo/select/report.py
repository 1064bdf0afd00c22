"""What ``zoo select`` writes and prints: ``selection.json``, the score-vs-cost plot, the winner's
recipe, and the text tables (the selection, and ``--validate``'s comparison with real fine-tunes).

The JSON is the record (every number the tables show, plus feature keys and timings); the tables
are for reading; the recipe is a normal recipe that ``zoo finetune`` runs, and because its data,
seed and backbone are the selection's, its head stage reads the features the selection cached.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..util.files import atomic_write_text
from ..util.text import table
from .candidates import _slug, candidate_recipe
from .ranking import pareto_front, ranks
from .results import Scored, Selection


def _gmacs(item: Scored) -> float | None:
    return item.macs / 1e9 if item.macs is not None else None


def _sd(draws: list[dict[str, float]]) -> dict[str, float]:
    """Each score's standard deviation over the draws (0 with one draw)."""
    out = {}
    for k in draws[0]:
        values = [d[k] for d in draws]
        mean = sum(values) / len(values)
        out[k] = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))
    return out


def _entry(item: Scored) -> dict[str, Any]:
    c = item.candidate
    return {
        "name": c.label,
        "backbone": c.backbone,
        "pretrained": c.pretrained,
        "license": c.license,
        "scores": item.scores,
        "scores_sd": _sd(item.draws),
        "entry_group": item.entry_group,
        "params": item.params,
        "gmacs": _gmacs(item),
        "feature_key": item.feature_key,
        "features_from_cache": item.from_cache,
        "feature_seconds": round(item.feature_seconds, 2),
        "estimate_seconds": round(item.estimate_seconds, 2) if item.estimate_seconds is not None else None,
        **({"note": c.note} if c.note else {}),
    }


def selection_record(sel: Selection, recipe_file: Path | None = None) -> dict[str, Any]:
    """``selection.json``: candidates best first, with scores, per-score ranks, mean rank, P(rank 1),
    the prior and its rank, cost and whether the candidate is on the score-vs-GMACs Pareto front."""
    names = sel.score_names
    score_ranks = {k: ranks([item.scores[k] for item in sel.ranked]) for k in names}
    priors = [item.candidate.prior for item in sel.ranked]
    prior_ranks = ranks([p if p is not None else math.nan for p in priors])
    front = _front(sel)
    candidates = []
    for i, item in enumerate(sel.ranked):
        candidates.append(
            {
                "rank": i + 1,
                **_entry(item),
                "score_ranks": {k: score_ranks[k][i] for k in names},
                "mean_rank": sel.mean_ranks[i],
                "p_rank1": sel.p_rank1[i],
                "prior": priors[i],
                "prior_rank": prior_ranks[i] if priors[i] is not None else None,
                "pareto": front.get(i, False),
            }
        )
    ref = None
    if sel.reference is not None:
        ref = {
            **_entry(sel.reference),
            "of": sel.winner.candidate.label,
            "pretraining_gain": {
                k: sel.winner.scores[k] - sel.reference.scores[k] for k in names if k in sel.reference.scores
            },
        }
    return {
        "format": 1,
        "task": sel.task,
        "dataset": sel.dataset,
        "recipe": sel.base.name,
        "data": sel.base.to_dict()["data"],
        "seed": sel.base.seed,
        "scores": names,
        "ranked_by": sel.ranked_by,
        "prior": sel.prior_key,
        "examples": {
            "train": sel.winner.num_train,
            "per_draw": sel.samples,
            "draws": sel.draws,
        },
        "candidates": candidates,
        "reference": ref,
        "skipped": [{"name": n, "reason": r} for n, r in sel.skipped],
        "notes": sel.notes,
        "winner": sel.winner.candidate.label,
        "recipe_file": str(recipe_file) if recipe_file else None,
        "budget_seconds": sel.budget_seconds,
        "seconds": round(sel.seconds, 1),
    }


def _front(sel: Selection) -> dict[int, bool]:
    """Pareto front of the first score against GMACs, over the candidates whose MACs were counted."""
    first = sel.score_names[0]
    idx = [i for i, item in enumerate(sel.ranked) if item.macs is not None]
    flags = pareto_front([sel.ranked[i].macs for i in idx], [sel.ranked[i].scores[first] for i in idx])
    return dict(zip(idx, flags))


def write_recipe(sel: Selection, out: Path) -> Path:
    """The winner's recipe: the selection's recipe with the winner's backbone and weights."""
    win = sel.winner
    first = sel.score_names[0]
    name = _slug(f"{sel.dataset}-{win.candidate.arch}")
    recipe = candidate_recipe(sel.base, win.candidate, name=name)
    recipe.description = (
        f"{win.candidate.label} on {sel.dataset}, chosen by zoo select from {len(sel.ranked)} candidates"
        f" ({first} {win.scores[first]:.4f}, mean rank {sel.mean_ranks[0]:.2f}, P(rank 1) {_p(sel.p_rank1[0])})"
    )
    return atomic_write_text(out / f"{name}.toml", recipe.to_toml())


def write_outputs(sel: Selection, out: Path) -> dict[str, Path]:
    """selection.json, selection.png and the winner's recipe in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    recipe = write_recipe(sel, out)
    paths = {"recipe": recipe}
    try:
        paths["plot"] = plot_selection(sel, out / "selection.png")
    except Exception as exc:  # a plot must never lose the selection itself
        sel.notes.append(f"plot not written ({type(exc).__name__}: {exc})")
    paths["json"] = atomic_write_text(
        out / "selection.json", json.dumps(selection_record(sel, recipe), indent=2, default=float) + "\n"
    )
    return paths


def plot_selection(sel: Selection, path: Path) -> Path:
    """The first score against GMACs per example: candidates, the Pareto front, the pick, the reference."""
    from ..util.plots import pyplot, save_figure

    plt = pyplot()
    first = sel.score_names[0]
    front = _front(sel)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [(i, item) for i, item in enumerate(sel.ranked) if item.macs is not None]
    # labels alternate above/below along the cost axis, so neighbouring points keep readable labels
    below = {i: n % 2 == 1 for n, (i, _) in enumerate(sorted(points, key=lambda p: _gmacs(p[1])))}
    for i, item in points:
        on_front = front.get(i, False)
        ax.scatter(
            _gmacs(item),
            item.scores[first],
            s=120 if i == 0 else 50,
            marker="*" if i == 0 else "o",
            color="tab:red" if i == 0 else ("tab:blue" if on_front else "tab:gray"),
            zorder=3,
        )
        ax.annotate(
            f"{i + 1}. {item.candidate.label}",
            (_gmacs(item), item.scores[first]),
            fontsize=8,
            xytext=(5, -11 if below[i] else 4),
            textcoords="offset points",
        )
    pareto = sorted((_gmacs(item), item.scores[first]) for i, item in points if front.get(i, False))
    if len(pareto) > 1:
        ax.step(
            [p[0] for p in pareto],
            [p[1] for p in pareto],
            where="post",
            color="tab:blue",
            linewidth=1,
            label="Pareto front",
        )
    ref = sel.reference
    if ref is not None and ref.macs is not None:
        ax.scatter(
            _gmacs(ref),
            ref.scores[first],
            marker="o",
            facecolors="none",
            edgecolors="black",
            s=50,
            label=ref.candidate.label,
            zorder=3,
        )
    ax.set(
        xlabel="GMACs per example (as extracted)",
        ylabel=first,
        title=f"zoo select on {sel.dataset}: {first} vs cost ({sel.samples} examples)",
    )
    ax.grid(alpha=0.3)
    ax.margins(x=0.3, y=0.15)  # room for the labels
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, path)


def _score(entry: dict[str, Any], name: str) -> str:
    """A score cell; "-" where the candidate lacks the score (the reference may lack entry scores)."""
    value = entry["scores"].get(name)
    return "-" if value is None else f"{value:.4f}"


def _p(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def format_selection(record: dict[str, Any]) -> str:
    """The selection as text (from :func:`selection_record`'s dict)."""
    names = record["scores"]
    ex = record["examples"]
    lines = [
        f"zoo select: {len(record['candidates'])} candidate(s) for {record['task']} on {record['dataset']}."
        f" Scores: the mean over {ex['draws']} subsample(s) of {ex['per_draw']} of the {ex['train']} training"
        " examples; P(rank 1): the share of subsamples on which the candidate ranks first"
    ]
    prior = record["prior"].upper()
    headers = ["RANK", "CANDIDATE", *(n.upper() for n in names), "MEAN RANK", "P(RANK 1)", f"{prior} (RANK)", "GMACS"]
    headers.append("FEATURES")
    rows = []
    for c in record["candidates"]:
        prior_cell = "-" if c["prior"] is None else f"{c['prior']:.2f} ({c['prior_rank']:g})"
        rows.append(
            [
                str(c["rank"]),
                c["name"] + (" *" if c["pareto"] else ""),
                *(f"{c['scores'][n]:.4f}" for n in names),
                f"{c['mean_rank']:.2f}",
                _p(c["p_rank1"]),
                prior_cell,
                "-" if c["gmacs"] is None else f"{c['gmacs']:.4f}",
                "cache" if c["features_from_cache"] else f"{c['feature_seconds']:.1f}s",
            ]
        )
    ref = record["reference"]
    if ref is not None:
        rows.append(
            [
                "ref",
                ref["name"],
                *(_score(ref, n) for n in names),
                "-",
                "-",
                "-",
                "-" if ref["gmacs"] is None else f"{ref['gmacs']:.4f}",
                "cache" if ref["features_from_cache"] else f"{ref['feature_seconds']:.1f}s",
            ]
        )
    lines += table(headers, rows).splitlines()
    lines.append("(* on the Pareto front of " + names[0] + " vs GMACs)")
    voters = record.get("ranked_by") or names
    if voters != names:
        groups = sorted({c["entry_group"] for c in record["candidates"] if c.get("entry_group")})
        where = f" (the features entering {', '.join(groups)}, the first group the recipe trains)" if groups else ""
        lines.append(f"MEAN RANK is over {', '.join(voters)}{where}")
    if ref is not None:
        gain = ref["pretraining_gain"]
        verdict = "pretraining helps here" if gain[names[0]] > 0 else "pretraining does NOT help here"
        lines.append(
            f"does pretraining help? {ref['of']} vs the same architecture from random init: "
            + ", ".join(f"{n} {gain[n]:+.4f}" for n in names if n in gain)
            + f" ({verdict})"
        )
    for s in record["skipped"]:
        lines.append(f"skipped {s['name']}: {s['reason']}")
    for note in record["notes"]:
        lines.append(f"note: {note}")
    lines.append(f"pick: {record['winner']}   ({record['seconds']:.1f}s)")
    return "\n".join(lines)


def format_validation(result: dict[str, Any], record: dict[str, Any]) -> str:
    """``--validate``: the candidates' scores beside their fine-tuned metric, then tau, regret and noise."""
    metric = result["metric"]
    names = record["scores"]
    by_name = {c["name"]: c for c in record["candidates"]}
    if record["reference"] is not None:
        by_name[record["reference"]["name"]] = {**record["reference"], "mean_rank": None, "prior": None}
    seeds = result["seeds"]
    headers = ["CANDIDATE", "MEAN RANK", *(n.upper() for n in names), record["prior"].upper()]
    headers += [f"{metric.upper()} s{s}" for s in seeds] + [f"{metric.upper()} MEAN ± SPREAD", "FINETUNE S"]
    rows = []
    for c in result["candidates"]:
        sel = by_name[c["name"]]
        rows.append(
            [
                c["name"],
                "ref" if c["reference"] else f"{sel['mean_rank']:.2f}",
                *(_score(sel, n) for n in names),
                "-" if sel.get("prior") is None else f"{sel['prior']:.2f}",
                *(f"{v:.4f}" for v in c["values"]),
                f"{c['mean']:.4f} ± {c['spread']:.4f}",
                f"{sum(c['seconds']):.0f}",
            ]
        )
    lines = [f"validation: {len(seeds)} seed(s) x {len(result['candidates'])} fine-tunes of recipe {result['recipe']}"]
    lines += table(headers, rows).splitlines()
    for key, label in (("combined", "combined score"), ("prior", f"prior ({record['prior']})")):
        q = result.get(key)
        if q is None:
            continue
        per_tau = ", ".join(f"{t:.2f}" for t in q["tau_per_seed"])
        per_regret = ", ".join(f"{r:.4f}" for r in q["regret_per_seed"])
        lines.append(
            f"{label:<24} weighted tau {q['tau']:.2f} (per seed {per_tau});"
            f" top-1 regret {q['regret']:.4f} ± {q['regret_se']:.4f} {metric} (per seed {per_regret}); pick {q['pick']}"
        )
    alone = result.get("per_score") or {}
    if alone:
        lines.append(
            "each score alone: "
            + ", ".join(f"{n} tau {q['tau']:.2f} regret {q['regret']:.4f}" for n, q in alone.items())
        )
    noise = result.get("seed_noise")
    if noise:
        lines.append(
            f"seed-to-seed noise: mean spread {noise['mean_spread']:.4f} {metric}, mean std {noise['mean_std']:.4f};"
            f" weighted tau between the seeds' rankings {noise['tau_between_seeds']:.2f}"
            + (" (mean over pairs of seeds)" if len(seeds) > 2 else "")
        )
    sel_s, ft_s = result["selection_seconds"], result["finetune_seconds"]
    share = f" ({100 * sel_s / ft_s:.1f}%)" if ft_s else ""
    lines.append(f"time: selection {sel_s:.0f}s vs fine-tunes {ft_s:.0f}s{share}")
    return "\n".join(lines)
