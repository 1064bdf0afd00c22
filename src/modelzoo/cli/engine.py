"""CLI commands of the fine-tune engine: finetune, eval, predict.

None of them knows a task: printing results, evaluation reports and predict options all come from
the model's task plugin (``zoo list --kind task``). A task's ``zoo predict`` flags are plain data in
its spec (``meta["predict_options"]``), so they are added to the parser without importing anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import ZooError


def cmd_finetune(args: argparse.Namespace) -> int:
    import os

    if args.nproc or "WORLD_SIZE" in os.environ:
        # torch.distributed's C++ warnings (store retries with stack traces, DDP tuning hints) drown the
        # one line the engine prints for a failure; set TORCH_CPP_LOG_LEVEL yourself to see them
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")
    import signal

    from ..engine.launch import stdout_is_rank_zero
    from ..engine.trainer import finetune

    def stop(signum, frame):  # SIGTERM (a scheduler, kill) stops as Ctrl-C does: cleanly, resumable
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)

    if args.find_lr is not None:
        return find_lr_command(args)
    if args.nproc is not None and args.nproc < 1:
        raise ZooError("--nproc must be a whole number >= 1 (worker processes on this machine)")
    if args.nproc and args.nproc > 1:
        return _launch(args)
    run = finetune(
        args.recipe, out=args.out, resume=args.resume, overrides=args.set or [], quiet=args.quiet or args.json
    )
    if not stdout_is_rank_zero():
        return 0
    if args.json:
        print(
            json.dumps(
                {"run": str(run.path), "recipe": run.recipe.name, "metrics": run.metrics, "epochs": len(run.history)}
            )
        )
    else:
        m = run.metrics
        value = m.get(run.metric)
        shown = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
        print(
            f"run {run.path}: {run.metric} {shown}, loss {m.get('loss', float('nan')):.4f}"
            f" on {run.model.config['dataset'].get('num_val', '?')} validation examples"
        )
    return 0


def find_lr_command(args: argparse.Namespace) -> int:
    """``zoo finetune RECIPE --find-lr [STAGE]``: the lr range test instead of the run."""
    from ..engine.lr_finder import find_lr, summary_line

    if args.resume:
        raise ZooError("--find-lr tests a recipe from its start; it cannot be combined with --resume")
    recipe, stage = args.recipe, args.find_lr
    if recipe is None and stage != "last" and not stage.lstrip("-").isdigit():
        recipe, stage = stage, "last"  # `zoo finetune --find-lr RECIPE`: the flag took the recipe as its value
    if recipe is None:
        raise ZooError("--find-lr needs a recipe: zoo finetune RECIPE --find-lr [STAGE]")
    result = find_lr(recipe, out=args.out, overrides=args.set or [], stage=stage, quiet=args.quiet or args.json)
    if args.json:
        keys = ("stage", "stage_name", "suggestion", "steepest", "diverged_at", "start_lr", "end_lr")
        print(json.dumps({**{k: getattr(result, k) for k in keys}, "steps": len(result.lrs), "path": str(result.path)}))
    else:
        print(summary_line(result))
    return 0


def _launch(args: argparse.Namespace) -> int:
    """``--nproc N``: validate here, pick the run folder, then start N workers through torchrun."""
    from pathlib import Path

    from ..engine.launch import launch, worker_args
    from ..engine.recipe import load_recipe
    from ..engine.trainer import resolve_out

    if args.resume:
        out = Path(args.resume)
    else:
        if args.recipe is None:
            raise ZooError("give a recipe (a zoo/*.toml file or a registered recipe name), or --resume RUN_DIR")
        recipe = load_recipe(args.recipe, args.set or [])
        if recipe.data.batch_size < args.nproc:
            raise ZooError(
                f"data.batch_size {recipe.data.batch_size} is the global batch; with {args.nproc} processes it must"
                f" be at least {args.nproc}"
            )
        out = resolve_out(recipe, args.out)
    argv = list(args.argv)
    return launch(worker_args(argv[argv.index("finetune") :], None if args.resume else out), args.nproc, out)


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a run on its recipe's validation split, or on ``--data PATH`` in the task's formats."""
    from pathlib import Path

    from torch.utils.data import DataLoader

    from ..engine.recipe import ModelCfg, Recipe, StageCfg, apply_overrides, data_section, load_recipe
    from ..engine.training import pick_device
    from ..loading import load
    from ..model.task import create_task, task_class

    if args.batch_size <= 0:
        raise ZooError("--batch-size must be a positive whole number")
    model = load(args.run)
    device = pick_device(args.device)
    model.to(device)
    recipe_path = Path(str(args.run)) / "recipe.toml"
    overrides = args.set or []
    if recipe_path.is_file():
        recipe = load_recipe(recipe_path, overrides)
    elif args.data:  # a pulled model has no recipe: the task's data defaults (+ --set), and the data given
        _, cls = task_class(model.task)
        data = apply_overrides({"data": {}}, overrides)
        unknown = [key for key in data if key != "data"]
        if unknown:
            raise ZooError(f"--set {unknown[0]}...: only data.* fields apply to zoo eval of a model without a recipe")
        recipe = Recipe(
            name="eval",
            task=model.task,
            model=ModelCfg(backbone=model.config["backbone"]["name"], head=model.config["head"]["name"]),
            data=data_section(cls.Data, data["data"]),
            stages=[StageCfg(name="eval")],
        )
    else:
        raise ZooError(f"{args.run} has no recipe.toml; pass --data PATH to evaluate on")
    recipe.data.batch_size = args.batch_size
    task = create_task(model.task, recipe, device)
    if args.data:
        task.load_eval_data(args.data, model)
    else:
        task.load_data()
    if task.labels != model.labels:
        raise ZooError(f"the data's classes {task.labels} do not match the model's labels {model.labels}")
    task.prepare(model)
    dataset = task.dataset("val")
    loader = DataLoader(dataset, batch_size=args.batch_size, collate_fn=task.collate)
    result = task.evaluate(model, loader, final=True)
    if args.json:
        print(json.dumps(result))
        return 0
    print(task.report(result, examples=len(dataset)))
    return 0


def predict_option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cast(kind: str):
    return {"int": int, "float": float, "str": str, "path": str}[kind]


def add_task_predict_options(parser: argparse.ArgumentParser) -> None:
    """The ``zoo predict`` flags the installed tasks declare (plain data from the catalog, no import)."""
    from ..catalog.lookup import catalog

    seen: dict[str, list[str]] = {}
    kinds: dict[str, dict[str, str]] = {}  # option -> task -> its type
    options: dict[str, dict[str, Any]] = {}
    for spec in catalog().filter(kind="task"):
        for opt in spec.task_meta.predict_options:
            seen.setdefault(opt.name, []).append(spec.name)
            kinds.setdefault(opt.name, {})[spec.name] = opt.type
            options.setdefault(opt.name, opt)
    if not options:
        return
    group = parser.add_argument_group("task options (each applies to the tasks named)")
    for name, opt in sorted(options.items()):
        kind = opt.type
        help_text = f"{opt.help} [{', '.join(seen[name])}]".strip()
        if opt.default is not None:
            help_text += f" (default {opt.default})"
        if len(set(kinds[name].values())) > 1:  # tasks disagree on its type: parsed per model (_task_options)
            per_task = "; ".join(f"{t}: {k}" for t, k in kinds[name].items())
            group.add_argument(
                predict_option_flag(name),
                dest=f"task_{name}",
                default=None,
                metavar="VALUE",
                help=f"{help_text} [{per_task}]",
            )
        elif kind == "bool":
            group.add_argument(
                predict_option_flag(name), dest=f"task_{name}", action="store_true", default=None, help=help_text
            )
        else:
            group.add_argument(
                predict_option_flag(name),
                dest=f"task_{name}",
                type=_cast(kind),
                default=None,
                metavar=kind.upper(),
                help=help_text,
            )


def _task_options(args: argparse.Namespace, task_spec) -> dict[str, Any]:
    """The model's task options: those given on the command line (checked to be the task's), else the
    defaults its spec declares (the spec is the one source of a default)."""
    given = {k[len("task_") :]: v for k, v in vars(args).items() if k.startswith("task_") and v is not None}
    declared = {o.name: o for o in task_spec.task_meta.predict_options}
    foreign = [n for n in given if n not in declared]
    if foreign:
        valid = ", ".join(predict_option_flag(n) for n in declared) or "none"
        raise ZooError(
            f"{predict_option_flag(foreign[0])} is not an option of {task_spec.name} models (options: {valid})"
        )
    for name, value in given.items():  # a string where this task wants another type: another task's option too
        kind = declared[name].type
        if isinstance(value, str) and kind not in ("str", "path"):
            given[name] = _parse_option(value, kind, predict_option_flag(name), task_spec.name)
    defaults = {name: opt.default for name, opt in declared.items() if opt.default is not None}
    return {**defaults, **given}


_TRUTH = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _parse_option(value: str, kind: str, flag: str, task: str) -> Any:
    """``value`` as the ``kind`` the model's task declares, or one line saying what it expects."""
    try:
        if kind == "bool":
            return _TRUTH[value.strip().lower()]
        return _cast(kind)(value)
    except (KeyError, ValueError):
        expects = "true or false" if kind == "bool" else f"an {kind}" if kind == "int" else f"a {kind}"
        raise ZooError(f"{flag} takes {expects} for {task} models, not {value!r:.40}") from None


def cmd_predict(args: argparse.Namespace) -> int:
    from ..catalog.lookup import catalog
    from ..loading import load
    from ..model.task import create_task

    model = load(args.model)
    spec = catalog().task(model.task)
    options = _task_options(args, spec)
    inputs = list(args.inputs)
    if inputs == ["-"]:  # one input per line on stdin (file names, or texts for a text model)
        inputs = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    task = create_task(model.task, device=next(model.parameters()).device)
    results = task.predict(model, inputs, **options)
    written = task.save_predictions(model, inputs, results, **options)
    if args.json:
        print(json.dumps(task.to_json(inputs, results)))
    else:
        print(task.show(model, inputs, results, **options))
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction, command: str | None = None) -> None:
    with_task_options = command == "predict"
    p = sub.add_parser("finetune", help="fine-tune a recipe (TOML file or registered recipe name)")
    p.add_argument("recipe", nargs="?", help="zoo/*.toml, a recipe file, or a recipe name from zoo list --kind recipe")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a field, e.g. stages.1.epochs=5 (repeatable)"
    )
    p.add_argument("--out", help="run folder (default runs/<recipe>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train with N processes on this machine (DistributedDataParallel through torch.distributed.run;"
        " NCCL on GPUs, gloo on CPUs); data.batch_size stays the GLOBAL batch, split across the processes",
    )
    p.add_argument(
        "--find-lr",
        nargs="?",
        const="last",
        metavar="STAGE",
        help="instead of training, run the lr range test (fastai-style) for a stage (default: the last) and"
        " write lr_finder.png with a suggested lr",
    )
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("eval", help="evaluate a run: its task's metrics, per class where the task has classes")
    p.add_argument("run", help="run folder or hf-hub:org/name[@rev]")
    p.add_argument(
        "--data", help="data to evaluate on, in a format of the model's task (default: the run's validation split)"
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a data field for this evaluation, e.g. data.label_map=map.json",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="run a model (run folder or Hub model) on inputs, as its task does")
    p.add_argument("model", help="run folder or hf-hub:org/name[@rev]")
    p.add_argument(
        "inputs", nargs="+", help="inputs as the model's task takes them (files, texts); '-': one per line on stdin"
    )
    p.add_argument("--json", action="store_true")
    if with_task_options:
        add_task_predict_options(p)
    p.set_defaults(func=cmd_predict)
