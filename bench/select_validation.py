"""Does ``zoo select`` pick the backbone that fine-tunes best? The proof on real data and real weights.

Runs ``zoo select --validate N`` on the packaged Fashion-MNIST subset (the default recipe's data,
schedule and seed: ``zoo/effnet-lite0-fashion-mnist.toml``) with the packaged ImageNet backbones,
EfficientNet-Lite0/1/2 and MobileNetV2, plus the random-init reference of the top candidate. Every
candidate is then fine-tuned with that recipe and two training seeds (``--seeds N`` for more; the
data subsets stay the recipe's), and the table compares, per candidate,
the combined score and its parts (linear probe, kNN, LogME) and the ImageNet prior with the fine-tuned
accuracy; then weighted Kendall tau, top-1 regret and seed-to-seed noise for the combined score and
for the prior, and the selection's seconds against the fine-tunes' seconds.

**Choosing the estimator never looks at the reported split.** ``--split holdout`` keeps the recipe's
3,000 training images and validates every fine-tune on 1,000 *other* images of Fashion-MNIST's training
split (``bench/recipe_sweep.py``'s hold-out); the ranking rules in :data:`RULES` are compared there,
and the product ranks by the winner, declared before the hold-out fine-tunes ran: the highest weighted
tau, then the lowest regret, then the fewest scores. ``--split reported`` (the default) then gives the
README's figures on the recipe's validation split.

The selection runs cold, in a fresh cache (features and scores computed; only the converted weights
are shared with the user cache, as they are named by content), then once more warm, from the cache.
MobileNetV2 is timm's ``mobilenetv2_100`` with torchvision's ImageNet weights (the same file as
``torchvision:mobilenet_v2.imagenet1k_v1``): timm groups its layers like the EfficientNets, so the
recipe's ``train = "last:3"`` unfreezes a comparable share of each network.

    python bench/select_validation.py --out /tmp/selbench     # ten fine-tunes
    python bench/select_validation.py --seeds 4 --out /tmp/selbench   # twenty (30 min on 2 idle cores); the ten above are reused
    python bench/select_validation.py --set data.train_limit=1000 --set data.val_limit=500   # quicker
    python bench/select_validation.py --split holdout --out /tmp/seldev   # where the ranking rule is chosen

Finished fine-tunes are recorded under ``--out``, so an interrupted bench resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from math import nan
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "zoo" / "effnet-lite0-fashion-mnist.toml"
CANDIDATES = [
    "tf_efficientnet_lite0.in1k_pkg",
    "tf_efficientnet_lite1.in1k_pkg",
    "tf_efficientnet_lite2.in1k_pkg",
    "mobilenetv2_100.tv_in1k",
]


#: ``zoo ARGS`` in a process whose task validates on a hold-out of the *training* split (see
#: ``bench/recipe_sweep.py``): the estimators are compared there, never on the reported split
HOLDOUT_LAUNCH = (
    "import sys; sys.path.insert(0, {bench!r}); from recipe_sweep import use_train_holdout; "
    "use_train_holdout({task!r}); from modelzoo.cli.main import main; sys.exit(main())"
)


def zoo(args: list[str], env: dict[str, str], holdout_task: str | None = None) -> tuple[float, str]:
    """Run ``zoo ARGS`` (with ``holdout_task``: validating on the training split's hold-out); its wall
    seconds and stdout (stderr streams through)."""
    start = time.perf_counter()
    launch = ["-m", "modelzoo"]
    if holdout_task:
        launch = ["-c", HOLDOUT_LAUNCH.format(bench=str(Path(__file__).parent), task=holdout_task)]
    proc = subprocess.run([sys.executable, *launch, *args], env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"zoo {' '.join(args)} failed ({proc.returncode})")
    return time.perf_counter() - start, proc.stdout


def user_weights() -> Path:
    from modelzoo.sdk import cache_dir

    path = cache_dir() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path


def print_table(record: dict, cold_wall: float | None, warm_wall: float, warm_seconds: float) -> bool:
    v = record["validation"]
    cands = {c["name"]: c for c in record["candidates"]}
    ref = record["reference"]
    print(
        f"recipe {v['recipe']} ({record['dataset']}: {record['examples']['train']} train examples), seeds {v['seeds']}"
    )
    print(
        f"scores: mean over {record['examples']['draws']} class-stratified subsamples of {record['examples']['per_draw']}"
    )
    print(f"mean rank over: {', '.join(record.get('ranked_by') or record['scores'])}")
    head = f"{'candidate':<34} {'rank':>4} {'mean rank':>9} {'probe':>6} {'kNN':>6} {'LogME':>7}"
    head += f" {'e.probe':>7} {'e.kNN':>6} {'e.LogME':>7} {'P(r1)':>5}"
    head += f" {'top-1':>6} {'fine-tune acc % (mean ± half-range)':>30} {'s/run':>6}"
    print(head)
    for row in v["candidates"]:
        c = cands.get(row["name"]) or ref
        rank = "ref" if row["reference"] else str(c["rank"])
        mean_rank = "-" if row["reference"] else f"{c['mean_rank']:.2f}"
        p1 = "-" if row["reference"] else f"{c['p_rank1']:.2f}"
        prior = "-" if c.get("prior") is None else f"{c['prior']:.1f}"
        s = c["scores"]
        acc = f"{100 * row['mean']:.2f} ± {100 * row['spread'] / 2:.2f}"
        per_seed = "/".join(f"{100 * x:.1f}" for x in row["values"])
        print(
            f"{row['name']:<34} {rank:>4} {mean_rank:>9} {s['probe']:6.3f} {s['knn']:6.3f} {s['logme']:7.3f}"
            f" {s.get('entry_probe', nan):7.3f} {s.get('entry_knn', nan):6.3f} {s.get('entry_logme', nan):7.3f} {p1:>5}"
            f" {prior:>6} {acc + f' ({per_seed})':>30} {sum(row['seconds']) / len(row['seconds']):6.0f}"
        )
    print()
    print(f"{'ranking by':<36} {'weighted tau':>12} {'per seed':>22} {'top-1 regret (± s.e.)':>21}  pick")
    rows = [("combined score", v["combined"]), ("ImageNet top-1 prior", v["prior"])]
    rows += [(f"{name} alone", q) for name, q in v.get("per_score", {}).items()]
    rows += [(label, ranked_by(record, names, vote)) for label, (names, vote) in RULES.items()]
    for label, q in rows:
        if q is None:
            continue
        per_tau = "/".join(f"{t:.2f}" for t in q["tau_per_seed"])
        reg = f"{100 * q['regret']:.2f} ± {100 * q['regret_se']:.2f} pt"
        print(f"{label:<36} {q['tau']:12.2f} {per_tau:>22} {reg:>21}  {q['pick']}")
    noise = v["seed_noise"]
    print(
        f"seed-to-seed noise of the fine-tunes: mean spread {100 * noise['mean_spread']:.2f} pt,"
        f" mean std {100 * noise['mean_std']:.2f} pt; weighted tau between the seeds' rankings"
        f" {noise['tau_between_seeds']:.2f}{' (mean over pairs of seeds)' if len(v['seeds']) > 2 else ''}"
    )
    gain = ref["pretraining_gain"]["probe"] if ref else None
    ref_row = next((r for r in v["candidates"] if r["reference"]), None)
    if ref_row:
        best = max(r["mean"] for r in v["candidates"] if not r["reference"])
        print(
            f"does pretraining help? probe {gain:+.3f} over random init; fine-tuned {100 * (best - ref_row['mean']):+.2f} pt"
        )
    sel, ft = v["selection_seconds"], v["finetune_seconds"]
    # the ledger's fine-tune seconds include reused runs, so the process's wall says nothing then
    wall = (
        "fine-tunes reused from --out" if cold_wall is None else f"zoo select wall {cold_wall - ft:.0f}s incl. start-up"
    )
    print(
        f"time: selection {sel:.0f}s cold ({wall}),"
        f" {warm_seconds:.1f}s warm from the cache (wall {warm_wall:.0f}s); fine-tunes {ft:.0f}s;"
        f" selection = {100 * sel / ft:.1f}% of the fine-tunes"
    )
    top = v["combined"]["regret"] <= 0.01
    tau_ok = v["combined"]["tau"] >= v["prior"]["tau"]
    time_ok = sel <= 0.1 * ft
    print(
        f"targets: top pick within 1 point of the best fine-tune: {'yes' if top else 'NO'};"
        f" combined tau >= prior tau: {'yes' if tau_ok else 'NO'}; selection <= 10% of fine-tunes: {'yes' if time_ok else 'NO'}"
    )
    return top and tau_ok and time_ok


def ranked_by(record: dict, names: list[str], prior_vote: bool = False) -> dict | None:
    """The ranking quality of the mean rank over the scores ``names`` (and the ImageNet prior as one
    more vote), from ``selection.json``: the rules the estimators are chosen among. None when a
    candidate lacks one of the scores."""
    from modelzoo.select.ranking import combine
    from modelzoo.select.validate import _ranking_quality

    v = record["validation"]
    rows = [r for r in v["candidates"] if not r["reference"]]
    cands = {c["name"]: c for c in record["candidates"]}
    if not all(n in cands[r["name"]]["scores"] for r in rows for n in names):
        return None
    votes = [{n: cands[r["name"]]["scores"][n] for n in names} for r in rows]
    if prior_vote:
        votes = [{**vote, "prior": cands[r["name"]].get("prior") or 0.0} for vote, r in zip(votes, rows)]
    score = [-m for m in combine(votes)]
    truths = [[r["values"][s] for r in rows] for s in range(len(v["seeds"]))]
    quality = _ranking_quality(score, [r["mean"] for r in rows], truths)
    return {**quality, "pick": rows[quality["pick"]]["name"]}


#: the ranking rules compared on the training split's hold-out (``--split holdout``); the product
#: ranks by the one that predicted the hold-out fine-tunes best, declared before they were run:
#: highest weighted tau, then lowest regret, then fewer scores
RULES = {
    "final features (probe, kNN, LogME)": (["probe", "knn", "logme"], False),
    "entry features (entry_*)": (["entry_probe", "entry_knn", "entry_logme"], False),
    "all six scores": (["probe", "knn", "logme", "entry_probe", "entry_knn", "entry_logme"], False),
    "all six + prior vote": (["probe", "knn", "logme", "entry_probe", "entry_knn", "entry_logme"], True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--candidates", nargs="+", default=CANDIDATES)
    parser.add_argument("--seeds", type=int, default=2, help="fine-tunes per candidate (default 2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--threads", type=int, help="torch threads per process (OMP_NUM_THREADS; default: torch's)")
    parser.add_argument("--out", type=Path, help="keep the selection and run folders here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--split",
        choices=["reported", "holdout"],
        default="reported",
        help="fine-tunes validate on the recipe's val split (reported) or on 1,000 other images of the"
        " training split (holdout: where estimators are compared and chosen)",
    )
    args = parser.parse_args()
    overrides = args.set
    with tempfile.TemporaryDirectory(prefix="select-bench-") as tmp:
        out = args.out or Path(tmp) / "out"
        cache = Path(tmp) / "cache"
        cache.mkdir()
        (cache / "weights").symlink_to(user_weights(), target_is_directory=True)
        env = {**os.environ, "MODELZOO_CACHE": str(cache)}
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        common = ["--recipe", str(args.recipe), "--candidates", *args.candidates]
        common += [x for o in overrides for x in ("--set", o)]
        validate = str(len(args.candidates))
        load_before = os.getloadavg()[0]
        # the split names the folders: the fine-tune ledger is keyed by run name, and a hold-out figure
        # must never be reused as a reported one (or the reverse)
        cold_dir = out / ("cold" if args.split == "reported" else "holdout-cold")
        warm_dir = out / ("warm" if args.split == "reported" else "holdout-warm")
        cold = ["select", *common, "--validate", validate, "--seeds", str(args.seeds), "--out", str(cold_dir)]
        task = tomllib.loads(args.recipe.read_text()).get("task") if args.split == "holdout" else None
        reused = (cold_dir / "validate" / "runs.json").is_file()
        cold_wall, _ = zoo(cold, env, task)
        warm_wall, _ = zoo(["select", *common, "--out", str(warm_dir), "--quiet"], env, task)
        record = json.loads((cold_dir / "selection.json").read_text())
        warm = json.loads((warm_dir / "selection.json").read_text())
        print(f"zoo select {' '.join(common)} --validate {validate} --seeds {args.seeds} (split: {args.split})")
        threads = f"{args.threads} torch thread(s) per process" if args.threads else "torch's default threads"
        print(
            f"overrides: {', '.join(overrides) or 'none'}; {threads}; CPU: {os.cpu_count()} cores; "
            f"1-min load average at start/end: {load_before:.2f}/{os.getloadavg()[0]:.2f}"
        )
        ok = print_table(record, None if reused else cold_wall, warm_wall, warm["seconds"])
        if args.out is None:
            print("(run folders were temporary; pass --out DIR to keep them)")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
