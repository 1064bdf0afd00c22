"""``zoo select``'s candidates: resolving names and wildcards to backbones with a pretrained tag, the base
recipe (a recipe file, or one built from ``--data`` alone) and one recipe per candidate.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..engine.recipe import Recipe, validate
from ..errors import RecipeError, ZooError
from .results import Candidate, Skipped

#: what ``--prior`` ranks by unless told otherwise: a key of ``PretrainedTag.metrics``
DEFAULT_PRIOR = "imagenet_top1"
#: the schedule of a recipe built from ``--data`` alone: the head on cached features, then the last groups
DEFAULT_STAGES = [
    {"name": "head", "train": "head", "epochs": 5, "lr": 3e-3},
    {"name": "finetune", "train": "last:2", "epochs": 2, "lr": 1e-3, "warmup_epochs": 0.2},
]
#: examples a recipe built from ``--data`` alone trains and validates on
DEFAULT_LIMITS = {"train_limit": 3000, "val_limit": 1000}
_WILDCARD = re.compile(r"[*?\[]")


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
    from ..engine.recipe import apply_overrides, load_recipe

    if recipe is not None:
        if data or task or head:
            raise ZooError("give either --recipe or --data/--task/--head, not both (the recipe names its data)")
        return load_recipe(recipe, overrides)
    from ..catalog.lookup import catalog

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
        "data": {**_zoo_data_defaults(data, task_name), **({"dataset": data} if data else {}), **DEFAULT_LIMITS},
        "optimizer": {"lr": 1e-3, "layer_decay": 0.7},
        "stages": [dict(s) for s in DEFAULT_STAGES],
    }
    return validate(apply_overrides(raw, overrides or []), source="zoo select")


def _zoo_data_defaults(data: str | None, task: str) -> dict[str, Any]:
    """The ``[data]`` table of the zoo's own recipe for this dataset and task, if it has one: its sizes
    were chosen for a CPU (a recipe built from ``--data`` alone would otherwise read every example at the
    backbone's pretrained size, e.g. 224 px, which takes half an hour of feature extraction on 2 cores)."""
    from ..catalog.lookup import catalog
    from ..engine.recipe import read_recipe_file, recipe_path

    if data is None:
        return {}
    for spec in catalog().filter(kind="recipe"):
        if spec.meta.get("dataset") == data and task in spec.tasks:
            try:
                table = read_recipe_file(recipe_path(spec.name)).get("data")
            except ZooError:
                continue
            if isinstance(table, dict):
                return {k: v for k, v in table.items() if k not in ("train_limit", "val_limit")}
    return {}


def _default_head(task: str, backbone: str | None) -> str:
    """The first head for the task (catalog order) that pairs with the backbone's outputs."""
    from ..catalog.lookup import catalog

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
    from ..catalog.lookup import catalog

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
        if not cat.serves(spec, task):
            skipped.append((name, f"it is for {', '.join(cat.tasks_for(spec)) or 'no task'}, not {task}"))
            continue
        if not spec.pretrained:
            skipped.append((name, "it has no pretrained weights"))
            continue
        tag = spec.tag(tag_name)
        note = None
        if tag_name is None and not _local_file(tag):
            if offline_only is None:
                from ..model.weights import hub_reachable

                offline_only = not hub_reachable()
            local = next((t for t in spec.pretrained if _local_file(t)), None)
            if offline_only and local is not None:
                note = f"default weights {spec.name}.{tag.tag} need the network; using {spec.name}.{local.tag}"
                tag = local
        key = (spec.qualified_name, tag.tag)
        if key in seen:
            continue
        seen.add(key)
        hub_ref = spec.meta.get("hub_ref")  # a Hub checkpoint: its pinned name, and the repo's own weights
        candidates.append(
            Candidate(
                label=name if hub_ref else f"{spec.name}.{tag.tag}",
                backbone=hub_ref or spec.qualified_name,
                arch=spec.name,
                pretrained=True if hub_ref else tag.tag,
                prior=tag.metrics.get(prior_key),
                license=tag.license or spec.license,
                note=note,
            )
        )
    return candidates, skipped


def _local_file(tag) -> bool:
    """True when one of the tag's sources is a file on this machine (``pkg:`` or ``file:``)."""
    from ..model.weights import SourceUnavailable, locate_source

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


# -- the whole selection ----------------------------------------------------------------------------
def check_task_supports_select(task: str) -> None:
    """One line before any work when the task has no transfer scores."""
    from ..model.task import Task, create_task, task_class

    _, cls = task_class(task)
    if cls.transfer_scores is Task.transfer_scores:
        create_task(task).transfer_scores(torch.zeros(0, 0), torch.zeros(0))  # raises the one-line error
