"""``zoo select`` end to end: candidates -> features within the budget -> scores -> ranking."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..engine.recipe import Recipe
from ..errors import ZooError
from ..model.task import Task
from ..util.cores import LoadWatch
from ..util.nest import nest_rows, nests_equal
from .candidates import (
    DEFAULT_PRIOR,
    candidate_recipe,
    check_task_supports_select,
    reference_candidate,
    resolve_candidates,
)
from .features import extract
from .results import Candidate, Scored, Selection, Skipped, _dur, _only, voting_scores
from .scores import _mean_scores, _score_caches, _scores

#: what ``--prior`` ranks by unless told otherwise: a key of ``PretrainedTag.metrics``


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
    from ..model.task import create_task

    log = log or (lambda msg: None)
    if samples < 10:
        raise ZooError(f"--samples {samples}: score on at least 10 examples")
    if draws < 1:
        raise ZooError("--draws must be >= 1")
    if budget_seconds is not None and budget_seconds <= 0:
        raise ZooError("--budget must be a positive duration, e.g. 90s, 5m or 1h")
    from ..engine.featurecache import limit_bytes

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

    with tempfile.TemporaryDirectory(prefix="zoo-select-") as tmp:
        watch = LoadWatch()  # the estimates and feature times are only as good as the machine is idle
        extracted = _extract_all(base, cands, left, Path(tmp), skipped, budget_seconds, log)
        busy = watch.note("feature speeds and budget estimates")
        notes += [busy] if busy else []  # said with the selection's other notes
        task = create_task(base.task, base)
        size, subsamples = _score_draws(task, extracted, samples, draws, base.seed, left, notes)
        from .ranking import combine, order, rank_one_share

        vote = _voting(task, extracted)
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
            ref = _reference(base, task, extracted[ranking[0]].candidate, subsamples, left, Path(tmp), skipped, log)
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


def _voting(task: Task, extracted: list[Scored]) -> list[str]:
    """The scores that rank the candidates; one line when the task found no view applicable."""
    vote = voting_scores(extracted)
    if not vote:
        raise ZooError(
            f"task {task.name!r} scored no view of any candidate (transfer_scores returned {{}}, 'not applicable',"
            f" for every view in select_views {tuple(task.select_views)}); zoo select cannot rank them for this task"
        )
    return vote


def _extract_all(
    base: Recipe,
    cands: list[Candidate],
    left: Callable[[], float | None],
    tmp: Path,
    skipped: list[tuple[str, str]],
    budget_seconds: float | None,
    log: Callable[[str], None],
) -> list[Scored]:
    """Each candidate's frozen features within the budget left (those that do not fit are skipped and
    named); all candidates must have seen the same examples."""
    extracted: list[Scored] = []
    estimates: list[tuple[str, float]] = []
    for i, cand in enumerate(cands):
        log(f"[{i + 1}/{len(cands)}] {cand.label}")
        try:
            recipe = candidate_recipe(base, cand)
            extracted.append(extract(recipe, cand, left(), tmp / f"c{i}", log))
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
        if not nests_equal(item.targets, targets):
            raise ZooError(
                f"{item.candidate.label} saw other examples than {extracted[0].candidate.label};"
                " the data must not depend on the backbone"
            )
    return extracted


def _score_draws(
    task: Task,
    extracted: list[Scored],
    samples: int,
    draws: int,
    seed: int,
    left: Callable[[], float | None],
    notes: list[str],
) -> tuple[int, list[tuple[torch.Tensor, int]]]:
    """Score every candidate on each subsample (while the budget lasts); ``(examples per draw, draws)``.

    Every draw is a fresh subsample of the training features; a draw is at most half of them, so the
    draws differ (P(rank 1) measures how much the pick depends on which examples were drawn)."""
    targets = extracted[0].targets
    caches = [_score_caches(task, item) for item in extracted]
    size = min(samples, nest_rows(targets)) if draws == 1 else max(10, min(samples, nest_rows(targets) // 2))
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
    return size, subsamples


def _reference(
    base: Recipe,
    task: Task,
    top: Candidate,
    subsamples: list[tuple[torch.Tensor, int]],
    left: Callable[[], float | None],
    tmp: Path,
    skipped: list[tuple[str, str]],
    log: Callable[[str], None],
) -> Scored | None:
    """The top candidate's random-init twin, scored on the same subsamples: what pretraining is worth here."""
    twin = reference_candidate(top)
    log(f"[reference] {twin.label}")
    try:
        ref = extract(candidate_recipe(base, twin), twin, left(), tmp / "reference", log)
    except Skipped as exc:
        skipped.append((twin.label, str(exc)))
        log(f"  skipped: {exc}")
        return None
    pair = _score_caches(task, ref)
    ref.draws = [_scores(task, ref, pair, idx, s) for idx, s in subsamples]
    ref.scores = _mean_scores(ref.draws)
    for cache in pair:
        cache.save()
    return ref
