"""``zoo select``: which pretrained backbone for this data? Ranked on the data itself, without fine-tuning.

For each candidate backbone, the engine's own :class:`~modelzoo.engine.Trainer` sets up a fine-tune
of the recipe with that backbone (the recipe's data, the backbone's own preprocessing: exactly what
``zoo finetune`` would do) and computes its frozen features once, into the shared feature cache the
head stage reads (:mod:`.featurecache`), so the fine-tune of the pick starts from them and a second
selection on the same data computes nothing. The task then scores the features
(``Task.transfer_scores``) on subsamples it draws (``Task.transfer_subsample``): the core knows no
score and no target, only that every score is higher-is-better. Each score is averaged over several
draws, and P(rank 1) is the share of draws on which a candidate comes first: how much the pick
depends on which examples happened to be drawn.

Where the recipe fine-tunes only its last layer groups, the features entering the first trained
group are scored as well (:mod:`.entry_features`), and those scores rank (:func:`voting_scores`).
Candidates are ranked by their mean rank over the voting scores (:mod:`.ranking` says why), beside the
ranking by a published prior (ImageNet top-1 where plugins record it), because a static prior is
what an estimator has to beat. The top candidate's random-init twin, scored the same way, says what
pretraining is worth on this data. The budget bounds the wall time: each candidate's extraction cost
is estimated from a measured small pass, and those that would not fit are skipped and named.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .entry_features import Entry, capture, entry_point, forward_until, stack
from .errors import RecipeError, ZooError
from .recipe import Recipe, validate

#: what ``--prior`` ranks by unless told otherwise: a key of ``PretrainedTag.metrics``
DEFAULT_PRIOR = "imagenet_top1"
#: the schedule of a recipe built from ``--data`` alone: the head on cached features, then the last groups
DEFAULT_STAGES = [
    {"name": "head", "train": "head", "epochs": 5, "lr": 3e-3},
    {"name": "finetune", "train": "last:2", "epochs": 2, "lr": 1e-3, "warmup_epochs": 0.2},
]
#: examples a recipe built from ``--data`` alone trains and validates on
DEFAULT_LIMITS = {"train_limit": 3000, "val_limit": 1000}
SCORES_FORMAT = 1
#: the names of the entry features' scores (:mod:`.entry_features`) start with this
ENTRY_PREFIX = "entry_"
_WILDCARD = re.compile(r"[*?\[]")


class Skipped(Exception):
    """A candidate left out of the ranking, with the reason a user reads (and, when the budget was
    the reason, the seconds it would have needed)."""

    def __init__(self, reason: str, need: float | None = None) -> None:
        super().__init__(reason)
        self.need = need


@dataclass
class Candidate:
    """One backbone to rank: a registered architecture with one pretrained tag (or random init)."""

    label: str
    backbone: str
    arch: str
    pretrained: str | bool
    prior: float | None = None
    license: str | None = None
    note: str | None = None

    @property
    def reference(self) -> bool:
        return self.pretrained is False


@dataclass
class Scored:
    """A candidate whose features were extracted and scored."""

    candidate: Candidate
    feature_key: str
    params: int
    macs: int | None
    estimate_seconds: float | None
    feature_seconds: float
    from_cache: bool
    num_train: int
    dataset: str
    feats: torch.Tensor = field(repr=False)
    targets: torch.Tensor = field(repr=False)
    #: the mean of each score over the draws, and each draw's scores
    scores: dict[str, float] = field(default_factory=dict)
    draws: list[dict[str, float]] = field(default_factory=list)
    #: the train features entering the first group the recipe trains (:mod:`.entry_features`), if any
    entry_feats: torch.Tensor | None = field(default=None, repr=False)
    entry_group: str | None = None


@dataclass
class Selection:
    """What ``zoo select`` found: ranked candidates (best first), the reference, the skipped ones."""

    base: Recipe
    task: str
    dataset: str
    metric: str
    higher_is_better: bool
    prior_key: str
    #: examples per draw, and how many draws the scores are averaged over
    samples: int
    draws: int
    ranked: list[Scored]
    #: the scores whose mean rank orders the candidates (:func:`voting_scores`)
    ranked_by: list[str]
    mean_ranks: list[float]
    p_rank1: list[float]
    reference: Scored | None
    skipped: list[tuple[str, str]]
    budget_seconds: float | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def winner(self) -> Scored:
        return self.ranked[0]

    @property
    def score_names(self) -> list[str]:
        """The scores every ranked candidate has (a candidate may lack the entry features' ones)."""
        return common_scores(self.ranked)


# -- the base recipe and one recipe per candidate ---------------------------------------------------
def base_recipe(
    recipe: str | Path | None = None,
    data: str | None = None,
    task: str | None = None,
    head: str | None = None,
    overrides: list[str] | None = None,
    backbone: str | None = None,
) -> Recipe:
    """The recipe every candidate is set up with: a recipe file as given (its data, stages, seed),
    or one built from a registered dataset (``data``) and/or ``--set data.FIELD=...`` overrides,
    with the default schedule and limits above; ``backbone`` stands in until candidates replace it."""
    from .recipe import apply_overrides, load_recipe

    if recipe is not None:
        if data or task or head:
            raise ZooError("give either --recipe or --data/--task/--head, not both (the recipe names its data)")
        return load_recipe(recipe, overrides)
    from .catalog import catalog

    cat = catalog()
    if data is not None:
        spec = cat.get(data, kind="dataset")
        if task is None:
            if len(spec.tasks) != 1:
                raise ZooError(f"dataset {spec.name!r} is for {', '.join(spec.tasks) or 'no task'}; give --task")
            task = spec.tasks[0]
    if task is None:
        raise ZooError("give --data NAME (zoo list --kind dataset), --recipe FILE, or --task with --set data.FIELD=...")
    task_name = cat.task(task).name
    if head is None:
        head = _default_head(task_name, backbone)
    raw: dict[str, Any] = {
        "name": _slug(f"select-{data or task_name}"),
        "task": task_name,
        "model": {"backbone": backbone or "unset", "head": head},
        "data": {**({"dataset": data} if data else {}), **DEFAULT_LIMITS},
        "optimizer": {"lr": 1e-3, "layer_decay": 0.7},
        "stages": [dict(s) for s in DEFAULT_STAGES],
    }
    return validate(apply_overrides(raw, overrides or []), source="zoo select")


def _default_head(task: str, backbone: str | None) -> str:
    """The first head for the task (catalog order) that pairs with the backbone's outputs."""
    from .catalog import catalog

    cat = catalog()
    outputs = set(cat.get(backbone, kind="backbone").outputs) if backbone else None
    heads = [h for h in cat.filter(kind="head", task=task) if outputs is None or outputs & set(h.consumes)]
    if not heads:
        raise ZooError(f"no installed head fits task {task!r} and {backbone}; give --head (zoo list --kind head)")
    return heads[0].qualified_name


def candidate_recipe(base: Recipe, cand: Candidate, seed: int | None = None, name: str | None = None) -> Recipe:
    """The base recipe with the candidate's backbone and weights (its ``backbone_options`` only when
    it is the base's own backbone; the base's ``[reference]`` figures belong to the base's backbone)."""
    raw = base.to_dict()
    model = dict(raw["model"])
    same = model.get("backbone") == cand.backbone
    model.update(backbone=cand.backbone, pretrained=cand.pretrained)
    if not same:
        model.pop("backbone_options", None)
    raw.update(model=model, reference={})
    if seed is not None:  # another training seed; the data stays the one the candidates were scored on
        raw["seed"], raw["data_seed"] = seed, base.seed_for_data
    if name is not None:
        raw["name"] = name
    try:
        return validate(raw, source=raw["name"])
    except RecipeError as exc:
        raise Skipped(f"the recipe does not fit it ({exc})") from None


def _dur(seconds: float) -> str:
    """Seconds as a user reads them: ``0.25s``, ``3.1s``, ``42s``."""
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.2g}s"


def _slug(text: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_\-]+", "-", text).strip("-_") or "select"
    return out[:100]


# -- candidates -------------------------------------------------------------------------------------
def resolve_candidates(
    names: list[str], task: str, prior_key: str = DEFAULT_PRIOR
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Candidates from names (``arch``, ``arch.tag``, ``plugin:arch``) and wildcard patterns, in the
    order given. Unknown names and patterns that match nothing are errors (did-you-mean); matched
    backbones that cannot serve (another task, no pretrained weights) are returned as skipped."""
    from .catalog import catalog

    cat = catalog()
    if not names:
        raise ZooError("give --candidates: backbone names or patterns, e.g. --candidates 'arch*' other_arch.tag")
    found: list[tuple[str, Any, str | None]] = []
    for name in names:
        if _WILDCARD.search(name):
            specs = cat.filter(include=name, kind="backbone")
            if not specs:
                raise ZooError(f"no backbone matches {name!r} (see: zoo list {name!r} --kind backbone)")
            found += [(s.name, s, None) for s in specs]
        else:
            spec, tag = cat.resolve(name, kind="backbone")
            found.append((name, spec, tag))
    candidates, skipped, seen = [], [], set()
    offline_only: bool | None = None
    for name, spec, tag_name in found:
        if task not in spec.tasks:
            skipped.append((name, f"it is for {', '.join(spec.tasks) or 'no task'}, not {task}"))
            continue
        if not spec.pretrained:
            skipped.append((name, "it has no pretrained weights"))
            continue
        tag = spec.tag(tag_name)
        note = None
        if tag_name is None and not _local_file(tag):
            if offline_only is None:
                from .weights import hub_reachable

                offline_only = not hub_reachable()
            local = next((t for t in spec.pretrained if _local_file(t)), None)
            if offline_only and local is not None:
                note = f"default weights {spec.name}.{tag.tag} need the network; using {spec.name}.{local.tag}"
                tag = local
        key = (spec.qualified_name, tag.tag)
        if key in seen:
            continue
        seen.add(key)
        candidates.append(
            Candidate(
                label=f"{spec.name}.{tag.tag}",
                backbone=spec.qualified_name,
                arch=spec.name,
                pretrained=tag.tag,
                prior=tag.metrics.get(prior_key),
                license=tag.license or spec.license,
                note=note,
            )
        )
    return candidates, skipped


def _local_file(tag) -> bool:
    """True when one of the tag's sources is a file on this machine (``pkg:`` or ``file:``)."""
    from .weights import SourceUnavailable, locate_source

    for source in tag.sources:
        if source.startswith(("pkg:", "file:")):
            try:
                locate_source(source)
                return True
            except SourceUnavailable:
                continue
    return False


def reference_candidate(cand: Candidate) -> Candidate:
    """The same architecture with random weights: what pretraining adds is the difference."""
    return Candidate(
        label=f"{cand.arch} (random init)", backbone=cand.backbone, arch=cand.arch, pretrained=False, license=None
    )


# -- features ---------------------------------------------------------------------------------------
def extract(
    recipe: Recipe, cand: Candidate, budget_left: float | None, workdir: Path, log: Callable[[str], None]
) -> Scored:
    """Set the candidate up exactly as ``zoo finetune`` would, then take its train features from the
    shared cache or compute them (all of train and val, as the head stage needs), unless the measured
    estimate exceeds ``budget_left`` seconds."""
    from torch.utils.data import Subset

    from .compare import count_flops
    from .engine import Trainer, compute_features
    from .featurecache import shared_path

    trainer = Trainer(recipe, workdir, quiet=True)
    try:
        trainer.setup()
    except ZooError as exc:
        raise Skipped(f"cannot set it up ({exc})") from None
    task, model = trainer.task, trainer.model
    if not task.feature_cache:
        raise Skipped(f"task {task.name} caches no features for it with head {recipe.model.head!r}; try another --head")
    key = trainer.feature_key()
    cached = shared_path(key).is_file()
    train = task.dataset("train")
    total = len(train) + len(task.dataset("val"))
    model.backbone.eval()
    macs = None
    try:
        batch = next(iter(trainer.loader(Subset(train, [0, 1] if len(train) > 1 else [0]), shuffle=False)))
        macs = count_flops(task.features, model, task.to_device(batch)) // 2 // min(2, len(train))
    except Exception as exc:  # the plot then lacks this point; the ranking does not need it
        log(f"  note: MACs of {cand.label} not counted ({type(exc).__name__}: {str(exc)[:100]})")
    estimate = None
    if not cached:
        bs = recipe.data.batch_size
        compute_features(model, trainer.loader(Subset(train, range(min(len(train), 8))), False), task)  # warm-up
        probe = list(range(min(len(train), 2 * bs)))
        start = time.perf_counter()
        compute_features(model, trainer.loader(Subset(train, probe), False), task)
        estimate = (time.perf_counter() - start) / len(probe) * total
        if budget_left is not None and estimate > budget_left:
            raise Skipped(
                f"its features ({total} examples) need ~{_dur(estimate)}, {_dur(max(0.0, budget_left))} of the"
                " budget is left; raise --budget or lower data.train_limit",
                need=estimate,
            )
        log(f"  {cand.label}: features of {total} examples, ~{_dur(estimate)}")
    start = time.perf_counter()
    entry = _entry_point(model, recipe, cand.label, log)
    if entry is None:
        feats, targets, _, _ = trainer.cached_features(0)
        entry_feats = None
    else:
        with capture(entry) as seen:  # the entry features come with the feature pass, when there is one
            feats, targets, _, _ = trainer.cached_features(0)
        entry_feats = cached_entry_features(trainer, key, entry, seen, len(targets), total, log)
    seconds = 0.0 if cached else time.perf_counter() - start
    return Scored(
        candidate=cand,
        feature_key=key,
        params=sum(p.numel() for p in model.backbone.parameters()),
        macs=macs,
        estimate_seconds=estimate,
        feature_seconds=seconds,
        from_cache=cached,
        num_train=len(targets),
        dataset=task.dataset_name,
        feats=feats,
        targets=targets,
        entry_feats=entry_feats,
        entry_group=entry.group if entry_feats is not None else None,
    )


def _entry_point(model, recipe: Recipe, label: str, log: Callable[[str], None]) -> Entry | None:
    """The entry point, or None: the entry scores are an extra view, so a backbone whose layer groups
    cannot say where training starts loses them (with a note), never the selection."""
    try:
        return entry_point(model, recipe)
    except ZooError:  # the recipe's stages do not fit this backbone's groups: the fine-tune says so itself
        return None
    except Exception as exc:  # a plugin's layer_groups() that fails here fails the fine-tune too, with its own error
        log(f"  note: no entry features for {label} ({type(exc).__name__}: {str(exc)[:100]})")
        return None


def entry_feature_key(key: str, group: str) -> str:
    """The cache key of the entry features (and their scores) of the features cached under ``key``."""
    return f"{key}-entry-{_slug(group)}"


def cached_entry_features(
    trainer, key: str, entry: Entry, seen: list, rows: int, total: int, log: Callable[[str], None]
) -> torch.Tensor | None:
    """The entry features of the train split: from the user cache, from what the feature pass just
    captured, or from a pass over the train split that stops at the entry module; then cached beside
    the final features (which the publishing never evicts)."""
    from .featurecache import eviction_note, limit_bytes, publish, shared_path, touch
    from .fsutil import atomic_write

    entry_key = entry_feature_key(key, entry.group)
    found = trainer.read_cached_features(entry_key, [shared_path(entry_key)])
    if found is not None and isinstance(found.get("train"), torch.Tensor) and len(found["train"]) == rows:
        touch(shared_path(entry_key))
        return found["train"]
    feats = stack(seen, rows, total)
    if feats is None and not seen:  # the final features came from the cache: a short pass for these
        try:
            feats = _entry_pass(trainer, entry, rows)
        except Exception as exc:  # an extra view: losing it must not lose the selection
            log(f"  note: no entry features ({type(exc).__name__}: {str(exc)[:100]})")
            return None
    if feats is None:
        return None
    path = trainer.out / "cache" / f"features-{entry_key}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: torch.save({"key": entry_key, "train": feats}, p))
    limit = limit_bytes()
    evicted = publish(path, entry_key, limit, also_keep=(shared_path(key),))
    if evicted:
        log(f"  {eviction_note(evicted, limit)}")
    return feats


def _entry_pass(trainer, entry: Entry, rows: int) -> torch.Tensor | None:
    """The train split through the backbone up to the entry module, and no further."""
    task, model = trainer.task, trainer.model
    model.backbone.eval()
    with torch.no_grad(), capture(entry, stop=True) as seen:
        for batch in trainer.loader(task.dataset("train"), False):
            forward_until(lambda: task.features(model, task.to_device(batch)))  # noqa: B023 (called at once)
            if not seen or seen[-1] is None:
                return None  # the module was not called, or gave no map or vector: nothing to score
    return stack(seen, rows, rows)


# -- scores -----------------------------------------------------------------------------------------
class ScoreCache:
    """Scores of one feature file, by the exact subsample they were computed on (a second selection
    on the same data recomputes nothing); a JSON file beside the features, in the user cache."""

    def __init__(self, feature_key: str, scorer: str) -> None:
        from .paths import cache_dir

        self.path = cache_dir() / "select" / f"scores-{feature_key}.json"
        self.scorer = scorer
        self.entries: dict[str, dict[str, float]] = {}
        self.dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") == SCORES_FORMAT and data.get("scorer") == scorer:
                self.entries = dict(data["entries"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass

    @staticmethod
    def digest(indices: torch.Tensor, seed: int) -> str:
        h = hashlib.sha256(str(seed).encode())
        h.update(indices.to(torch.int64).contiguous().numpy().tobytes())
        return h.hexdigest()[:20]

    def get(self, digest: str) -> dict[str, float] | None:
        return self.entries.get(digest)

    def put(self, digest: str, scores: dict[str, float]) -> None:
        self.entries[digest] = scores
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        from .fsutil import atomic_write_text

        payload = {"format": SCORES_FORMAT, "scorer": self.scorer, "entries": self.entries}
        try:
            atomic_write_text(self.path, json.dumps(payload))
        except OSError:
            pass  # an unwritable cache only costs time
        self.dirty = False


def _scores(task, item: Scored, caches: tuple[ScoreCache, ...], indices: torch.Tensor, seed: int) -> dict[str, float]:
    """The task's transfer scores of the final features on one subsample, and (named ``entry_*``)
    those of the entry features where the candidate has them."""
    found = _scores_of(task, item.feats, item.targets, caches[0], indices, seed)
    if item.entry_feats is not None and len(caches) > 1:
        entry = _scores_of(task, item.entry_feats, item.targets, caches[1], indices, seed)
        found.update({f"{ENTRY_PREFIX}{name}": value for name, value in entry.items()})
    return found


def _score_caches(task, item: Scored) -> tuple[ScoreCache, ...]:
    scorer = _scorer_id(task)
    caches = [ScoreCache(item.feature_key, scorer)]
    if item.entry_feats is not None:
        caches.append(ScoreCache(entry_feature_key(item.feature_key, item.entry_group or ""), scorer))
    return tuple(caches)


def _scores_of(
    task, feats: torch.Tensor, targets: torch.Tensor, cache: ScoreCache, indices: torch.Tensor, seed: int
) -> dict[str, float]:
    digest = cache.digest(indices, seed)
    found = cache.get(digest)
    if found is None:
        # scores work on small matrices, where one intra-op thread is faster than several, and far
        # faster on a busy machine (measured: a linear probe 3 s on one thread, 22 s on two)
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            raw = task.transfer_scores(feats[indices], targets[indices], seed)
        finally:
            torch.set_num_threads(before)
        found = {k: float(v) for k, v in raw.items()}
        if not found:
            raise ZooError(f"task {task.name!r}: transfer_scores returned no scores; fix its plugin")
        cache.put(digest, found)
    return found


def _mean_scores(draws: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(d[k] for d in draws) / len(draws) for k in draws[0]}


def _scorer_id(task) -> str:
    """Which code computed the scores: the task class and a digest of the package implementing its
    ``transfer_scores`` (so editing or upgrading that plugin invalidates every cached score)."""
    import sys

    cls = type(task)
    owner = next(k for k in cls.__mro__ if "transfer_scores" in vars(k))  # the class that implements it
    package = sys.modules.get(owner.__module__.split(".")[0])
    files = [Path(p) for d in getattr(package, "__path__", []) for p in sorted(Path(d).rglob("*.py"))]
    if not files and getattr(package, "__file__", None):
        files = [Path(package.__file__)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return f"{cls.__module__}.{cls.__qualname__}:{digest.hexdigest()[:16]}"


def common_scores(items: list[Scored]) -> list[str]:
    """The score names every one of ``items`` has, in the first one's order."""
    if not items:
        return []
    return [k for k in items[0].scores if all(k in item.scores for item in items)]


def voting_scores(items: list[Scored]) -> list[str]:
    """The scores the ranking is made of: those of the entry features when every candidate has them
    (the recipe fine-tunes its last groups, so what reaches them is what it cannot change), else those
    of the final features. Chosen on a hold-out of the training split, never on a reported one:
    ``bench/select_validation.py --split holdout`` compares the rules; the README has the table."""
    names = common_scores(items)
    entry = [k for k in names if k.startswith(ENTRY_PREFIX)]
    return entry or [k for k in names if not k.startswith(ENTRY_PREFIX)]


def _only(scores: dict[str, float], names: list[str]) -> dict[str, float]:
    return {k: scores[k] for k in names}


# -- the whole selection ----------------------------------------------------------------------------
def check_task_supports_select(task: str) -> None:
    """One line before any work when the task has no transfer scores."""
    from .task import Task
    from .tasks import create_task, task_class

    _, cls = task_class(task)
    if cls.transfer_scores is Task.transfer_scores:
        create_task(task).transfer_scores(torch.zeros(0, 0), torch.zeros(0))  # raises the one-line error


def select(
    base: Recipe,
    candidates: list[str],
    budget_seconds: float | None = None,
    samples: int = 1000,
    draws: int = 10,
    prior_key: str = DEFAULT_PRIOR,
    reference: bool = True,
    log: Callable[[str], None] | None = None,
) -> Selection:
    """Rank ``candidates`` for ``base``'s task and data (see the module docstring)."""
    from .tasks import create_task

    log = log or (lambda msg: None)
    if samples < 10:
        raise ZooError(f"--samples {samples}: score on at least 10 examples")
    if draws < 1:
        raise ZooError("--draws must be >= 1")
    if budget_seconds is not None and budget_seconds <= 0:
        raise ZooError("--budget must be a positive duration, e.g. 90s, 5m or 1h")
    from .featurecache import limit_bytes

    limit_bytes()  # a bad MODELZOO_FEATURE_CACHE_GB stops here, before any candidate is set up
    start = time.perf_counter()
    check_task_supports_select(base.task)
    cands, skipped = resolve_candidates(candidates, base.task, prior_key)
    if not cands:
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped)
        raise ZooError(f"no candidate can be ranked ({reasons})")
    notes = [f"{c.label}: {c.note}" for c in cands if c.note]

    def left() -> float | None:
        return None if budget_seconds is None else budget_seconds - (time.perf_counter() - start)

    extracted: list[Scored] = []
    estimates: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="zoo-select-") as tmp:
        for i, cand in enumerate(cands):
            log(f"[{i + 1}/{len(cands)}] {cand.label}")
            try:
                recipe = candidate_recipe(base, cand)
                extracted.append(extract(recipe, cand, left(), Path(tmp) / f"c{i}", log))
            except Skipped as exc:
                skipped.append((cand.label, str(exc)))
                log(f"  skipped: {exc}")
                if exc.need is not None:
                    estimates.append((cand.label, exc.need))
        if not extracted:
            if estimates:
                name, need = min(estimates, key=lambda e: e[1])
                raise ZooError(
                    f"budget {_dur(budget_seconds)} too small: the cheapest candidate ({name}) needs ~{_dur(need)}"
                    f" of feature extraction; raise --budget to at least {_dur(need * 1.5 + 30)}"
                )
            reasons = "; ".join(f"{n}: {r}" for n, r in skipped)
            raise ZooError(f"no candidate could be ranked ({reasons})")
        targets = extracted[0].targets
        for item in extracted[1:]:
            if not torch.equal(item.targets, targets):
                raise ZooError(
                    f"{item.candidate.label} saw other examples than {extracted[0].candidate.label};"
                    " the data must not depend on the backbone"
                )
        task = create_task(base.task, base)
        seed = base.seed
        caches = [_score_caches(task, item) for item in extracted]
        # every draw is a fresh subsample of the training features; a draw is at most half of them,
        # so the draws differ (P(rank 1) measures how much the pick depends on which examples were drawn)
        size = min(samples, len(targets)) if draws == 1 else max(10, min(samples, len(targets) // 2))
        subsamples: list[tuple[torch.Tensor, int]] = []
        round_seconds = 0.0
        for d in range(draws):
            budget = left()
            if d and budget is not None and round_seconds > budget:
                notes.append(f"scores and P(rank 1) from {d} of {draws} subsamples: the budget ran out")
                break
            t0 = time.perf_counter()
            subsamples.append((task.transfer_subsample(targets, size, seed + d), seed + d))
            for item, pair in zip(extracted, caches):
                item.draws.append(_scores(task, item, pair, *subsamples[-1]))
            round_seconds = time.perf_counter() - t0
        for item, pair in zip(extracted, caches):
            for cache in pair:
                cache.save()
            item.scores = _mean_scores(item.draws)
        from .ranking import combine, order, rank_one_share

        vote = voting_scores(extracted)
        lacking = [item.candidate.label for item in extracted if item.entry_feats is None]
        if lacking and len(lacking) < len(extracted):
            notes.append(
                f"ranked by the final features' scores: {', '.join(lacking)} ha{'s' if len(lacking) == 1 else 've'}"
                " no entry features (the ranking uses only the scores every candidate has)"
            )
        scores = [_only(item.scores, vote) for item in extracted]
        ranking = order(scores)
        mean = combine(scores)
        p1 = rank_one_share(
            [[_only(item.draws[d], vote) for item in extracted] for d in range(len(subsamples))], len(extracted)
        )
        ref = None
        if reference:
            top = extracted[ranking[0]].candidate
            twin = reference_candidate(top)
            log(f"[reference] {twin.label}")
            try:
                ref = extract(candidate_recipe(base, twin), twin, left(), Path(tmp) / "reference", log)
                pair = _score_caches(task, ref)
                ref.draws = [_scores(task, ref, pair, idx, s) for idx, s in subsamples]
                ref.scores = _mean_scores(ref.draws)
                for cache in pair:
                    cache.save()
            except Skipped as exc:
                skipped.append((twin.label, str(exc)))
                log(f"  skipped: {exc}")
    return Selection(
        base=base,
        task=base.task,
        dataset=extracted[0].dataset,
        metric=task.metric,
        higher_is_better=task.higher_is_better,
        prior_key=prior_key,
        samples=size,
        draws=len(subsamples),
        ranked=[extracted[i] for i in ranking],
        ranked_by=vote,
        mean_ranks=[mean[i] for i in ranking],
        p_rank1=[p1[i] for i in ranking],
        reference=ref,
        skipped=skipped,
        budget_seconds=budget_seconds,
        seconds=time.perf_counter() - start,
        notes=notes,
    )
