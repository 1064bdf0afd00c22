"""CLI commands of the fine-tune engine: finetune, eval, predict.

None of them knows a task: printing results, evaluation reports and predict options all come from
the model's task plugin (``zoo list --kind task``). A task's ``zoo predict`` flags are plain data in
its spec (``meta["predict_options"]``), so they are added to the parser without importing anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ZooError
from .output import note, out


def cmd_finetune(args: argparse.Namespace) -> int:
    import os

    if args.nproc or args.nnodes or "WORLD_SIZE" in os.environ:
        # torch.distributed's C++ warnings (store retries with stack traces, DDP tuning hints) drown the
        # one line the engine prints for a failure; set TORCH_CPP_LOG_LEVEL yourself to see them
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")
    import signal

    from ..engine.launch import end_worker, prepare_worker, restarted_resume, stdout_is_rank_zero
    from ..engine.trainer import finetune

    prepare_worker()  # a worker of --nproc: a fatal signal leaves its Python stack for the launcher's line

    def stop(signum, frame):  # SIGTERM (a scheduler, kill) stops as Ctrl-C does: cleanly, resumable
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)

    if args.find_lr is not None:
        return find_lr_command(args)
    args.set = [*(args.set or []), *_track_overrides(args)]
    if args.nproc is not None and args.nproc < 1:
        raise ZooError("--nproc must be a whole number >= 1 (worker processes on this machine)")
    if args.max_restarts is not None and args.max_restarts < 0:
        raise ZooError("--max-restarts must be a whole number >= 0 (automatic restarts after a worker dies)")
    if (args.nproc and args.nproc > 1) or args.max_restarts or args.nnodes or args.rdzv_endpoint or args.rdzv_id:
        return _launch(args)
    try:
        run = finetune(
            args.recipe,
            out=args.out,
            resume=args.resume or restarted_resume(args.out, args.resume),  # torchrun restarted the workers
            overrides=args.set or [],
            quiet=args.quiet or args.json,
            force=args.force,
        )
    except (Exception, KeyboardInterrupt) as exc:
        _worker_failed(exc, args)
        raise
    if not stdout_is_rank_zero():
        return end_worker()  # rank >= 1: nothing to print; it leaves at once (see end_worker)
    if args.json:
        out(
            json.dumps(
                {"run": str(run.path), "recipe": run.recipe.name, "metrics": run.metrics, "epochs": len(run.history)}
            )
        )
    else:
        m = run.metrics
        value = m.get(run.metric)
        shown = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
        out(
            f"run {run.path}: {run.metric} {shown}, loss {m.get('loss', float('nan')):.4f}"
            f" on {run.model.config['dataset'].get('num_val', '?')} validation examples"
        )
    return 0


def _track_overrides(args: argparse.Namespace) -> list[str]:
    """``--track a,b``: the recipe's ``tracking.backends``, each name checked before any work starts."""
    from ..tracking.registry import check_backends, parse_backends

    names = parse_backends(args.track)
    if not names:
        return []
    if args.resume:
        raise ZooError(
            f"--track starts trackers with a new run; --resume {args.resume} continues the trackers that run"
            " began with (its tracking.json)"
        )
    check_backends(names)
    return ["tracking.backends=" + json.dumps(names)]


def _worker_failed(exc: BaseException, args: argparse.Namespace) -> None:
    """Under torchrun: a collective that failed because a peer went away becomes its one line (raised
    here), and every failure is recorded for the ``--nproc`` launcher's line (:mod:`..engine.launch`)."""
    import os

    if "WORLD_SIZE" not in os.environ:
        return
    from ..engine import distributed
    from ..engine.launch import record_failure

    world = distributed.world_from_env()
    if not isinstance(exc, ZooError) and distributed.is_lost_peer(exc, world):
        lost = distributed.lost_peer(exc, world, args.resume or args.out)
        record_failure(lost, str(lost))
        raise lost from None
    record_failure(exc, str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}")


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
        out(json.dumps({**{k: getattr(result, k) for k in keys}, "steps": len(result.lrs), "path": str(result.path)}))
    else:
        out(summary_line(result))
    return 0


def _launch(args: argparse.Namespace) -> int:
    """``--nproc N`` / ``--max-restarts K`` / ``--nnodes M --rdzv-endpoint HOST:PORT``: validate here,
    pick the run folder, then start this node's workers through torchrun (restarted up to K times, each
    time from the run's last checkpoint)."""
    from pathlib import Path

    from ..engine.launch import launch, worker_args
    from ..engine.recipe import load_recipe
    from ..engine.rendezvous import parse_nodes
    from ..engine.runlock import check_new_out
    from ..engine.trainer import resolve_out

    nproc = args.nproc or 1  # --max-restarts alone: one worker, restarted
    given = Path(args.resume or args.out) if (args.resume or args.out) else None
    nodes = parse_nodes(args.nnodes, args.rdzv_endpoint, args.rdzv_id, given)
    if args.resume:
        out = Path(args.resume)
    else:
        if args.recipe is None:
            raise ZooError("give a recipe (a zoo/*.toml file or a registered recipe name), or --resume RUN_DIR")
        recipe = load_recipe(args.recipe, args.set or [])
        world = nproc * (nodes.count if nodes else 1)
        if recipe.data.batch_size < world:
            raise ZooError(
                f"data.batch_size {recipe.data.batch_size} is the global batch; with {world} processes it must"
                f" be at least {world}"
            )
        out = resolve_out(recipe, args.out)
        check_new_out(out)  # before any worker starts: a restarted one then resumes only what this launch began
    argv = list(args.argv)
    workers = worker_args(argv[argv.index("finetune") :], None if args.resume else out)
    return launch(workers, nproc, out, max_restarts=args.max_restarts or 0, nodes=nodes, new=not args.resume)


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a run on its recipe's validation split, or on ``--data PATH`` in the task's formats."""

    from torch.utils.data import DataLoader

    from ..engine.recipe import ModelCfg, Recipe, StageCfg, apply_overrides, data_section, load_recipe
    from ..engine.training import pick_device
    from ..loading import model_folder
    from ..model.folder import load_model
    from ..model.task import create_task, task_class

    if args.batch_size <= 0:
        raise ZooError("--batch-size must be a positive whole number")
    folder = model_folder(args.run)  # hf-hub:ORG/NAME@REV: the pulled copy, recipe.toml included
    model = load_model(folder)
    device = pick_device(args.device)
    model.to(device)
    from ..engine.speed import inference_layout

    inference_layout(model, device)  # channels_last where measured faster for this backbone and device
    recipe_path = folder / "recipe.toml"
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
    pictures = _eval_pictures(task, result, args.out) + _eval_errors(task, model, loader, args)
    if args.json:
        out(json.dumps(result))
    else:
        out(task.report(result, examples=len(dataset)))
    for path in pictures:
        note(f"wrote {path}")
    return 0


def _eval_pictures(task: Any, result: dict[str, Any], out: str | None) -> list[str]:
    """The task's pictures of this evaluation (``write_artifacts``) in ``--out DIR``; none without it."""
    if not out:
        return []
    from pathlib import Path

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ZooError(f"--out {out} is a file; give a folder for the evaluation's pictures")
    folder.mkdir(parents=True, exist_ok=True)
    return [str(folder / name) for name in task.write_artifacts(result, folder)]


def _eval_errors(task: Any, model: Any, loader: Any, args: argparse.Namespace) -> list[str]:
    """``--errors N``: the task's N most confident mistakes (a CSV and a gallery) in ``--out DIR``, else
    in the run folder (a Hub model's: the working directory)."""
    if args.errors is None:
        return []
    if args.errors < 1:
        raise ZooError("--errors must be a whole number >= 1 (how many mistakes to show)")
    folder = Path(args.out) if args.out else Path(args.run) if Path(args.run).is_dir() else Path(".")
    if folder.exists() and not folder.is_dir():
        raise ZooError(f"--out {folder} is a file; give a folder for the mistakes")
    folder.mkdir(parents=True, exist_ok=True)
    return [str(p) for p in task.write_errors(model, loader, args.errors, folder)]


def predict_option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cast(kind: str):
    return {"int": int, "float": float, "str": str, "path": str}[kind]


def add_task_predict_options(parser: argparse.ArgumentParser) -> None:
    """The ``zoo predict`` flags the installed tasks declare (plain data from the catalog, no import).
    A flag several tasks declare is one flag whose help names each task's own meaning and default;
    its value is parsed and defaulted per model (:func:`_task_options`)."""
    from ..catalog.lookup import catalog

    per_name: dict[str, dict[str, Any]] = {}  # option -> task -> its PredictOption
    for spec in catalog().filter(kind="task"):
        for opt in spec.task_meta.predict_options:
            per_name.setdefault(opt.name, {})[spec.name] = opt
    if not per_name:
        return
    group = parser.add_argument_group("task options (each applies to the models of the tasks named)")
    for name, by_task in sorted(per_name.items()):
        kinds = {opt.type for opt in by_task.values()}
        help_text = _option_help(by_task)
        core = next((a for a in parser._actions if predict_option_flag(name) in a.option_strings), None)
        if name in CORE_PREDICT_FLAGS and core is not None:
            # zoo predict's own flag serves it (a file list's --out goes to the task): its help says each task's meaning
            core.help = f"{core.help}. Per task: {help_text}"
            continue
        if len(kinds) > 1:  # tasks disagree on its type: parsed per model (_task_options)
            group.add_argument(
                predict_option_flag(name), dest=f"task_{name}", default=None, metavar="VALUE", help=help_text
            )
        elif kinds == {"bool"}:
            group.add_argument(
                predict_option_flag(name), dest=f"task_{name}", action="store_true", default=None, help=help_text
            )
        else:
            (kind,) = kinds
            group.add_argument(
                predict_option_flag(name),
                dest=f"task_{name}",
                type=_cast(kind),
                default=None,
                metavar=kind.upper(),
                help=help_text,
            )


def _option_help(by_task: dict[str, Any]) -> str:
    """One flag's help: each task's own text, type and default (tasks that say the same share a line)."""
    said: dict[str, list[str]] = {}
    for task, opt in by_task.items():
        text = (opt.help or "").strip() or "(no description)"
        if len(by_task) > 1 and len({o.type for o in by_task.values()}) > 1:
            text += f" ({opt.type})"
        if opt.default is not None:
            text += f" (default {opt.default})"
        said.setdefault(text, []).append(task)
    return "; ".join(f"{', '.join(tasks)}: {text}" for text, tasks in said.items()).replace("%", "%%")


def _task_options(args: argparse.Namespace, task_spec) -> dict[str, Any]:
    """The model's task options: those given on the command line (checked to be the task's), else the
    defaults its spec declares (the spec is the one source of a default)."""
    given = {k[len("task_") :]: v for k, v in vars(args).items() if k.startswith("task_") and v is not None}
    given.update({k: getattr(args, k) for k in CORE_PREDICT_FLAGS if getattr(args, k, None) is not None})
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


#: ``zoo predict`` flags of the core that a task may also declare as an option: ``--out`` is the rows file
#: (.csv/.jsonl) for a folder, and the task's own ``out`` (pictures drawn...) for a list of files
CORE_PREDICT_FLAGS = ("out",)


def predict_folder_command(args: argparse.Namespace, model: Any, spec: Any) -> int:
    """``zoo predict RUN DIR/ [--out preds.csv|preds.jsonl]``: rows streamed to the file (or to stdout as
    CSV, JSON Lines with --json), a progress line with images/s, skipped files counted."""
    import signal

    from ..engine.folder_predict import PredictInterrupted, RowWriter, predict_folder
    from ..engine.training import auto_workers
    from ..model.task import create_task

    def stop(signum, frame):  # SIGTERM stops as Ctrl-C does: the rows so far are whole, and it says so
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    rows_file = Path(args.out) if args.out else None
    args.out = None  # the rows file, not the task's own --out
    options = _task_options(args, spec)
    if args.batch_size < 1 or (args.workers is not None and args.workers < 0):
        raise ZooError("--batch-size must be >= 1 and --workers >= 0")
    task = create_task(model.task, device=next(model.parameters()).device)
    writer = RowWriter.open(rows_file) if rows_file else RowWriter(1, not args.json, "stdout")
    files = rows_file.with_name(rows_file.stem + "_files") if rows_file else Path("predictions_files")
    workers = auto_workers("auto", False, task.device) if args.workers is None else args.workers
    try:
        result = predict_folder(
            model, task, Path(args.inputs[0]), writer.write, options, args.batch_size, workers, files=files
        )
    except PredictInterrupted as exc:
        raise PredictInterrupted(f"{exc} ({writer.out})") from None
    except BaseException:
        if rows_file and writer.size == 0:  # nothing written: no empty file left behind
            rows_file.unlink(missing_ok=True)
        raise
    finally:
        writer.close()
    rate = (result.rows + result.skipped) / max(result.seconds, 1e-9)
    line = (
        f"predicted {result.files:,} files in {result.seconds:.1f}s ({rate:,.1f} {result.unit}/s): {result.rows:,} rows"
    )
    if rows_file:
        line += f" in {rows_file}"
    if result.skipped:
        first, why = result.skipped_first[0]
        line += f"; {result.skipped:,} unreadable file(s) skipped (first: {first}: {why})"
    note(line)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..catalog.lookup import catalog
    from ..loading import load
    from ..model.task import call_task, create_task

    model = load(args.model)
    spec = catalog().task(model.task)
    if len(args.inputs) == 1 and Path(args.inputs[0]).is_dir():  # a folder: every input file under it
        return predict_folder_command(args, model, spec)
    options = _task_options(args, spec)
    inputs = list(args.inputs)
    if inputs == ["-"]:  # one input per line on stdin (file names, or texts for a text model)
        inputs = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    task = create_task(model.task, device=next(model.parameters()).device)
    from ..engine.speed import inference_layout

    # channels_last where measured faster (a measurement only pays off for many inputs; else the cached one)
    inference_layout(model, task.device, measure_now=len(inputs) >= 256)
    results = task.predict(model, inputs, **options)
    written = task.save_predictions(model, inputs, results, **options)
    if args.json:
        out(json.dumps(call_task(task.to_json, inputs, results, model=model)))
    else:
        out(task.show(model, inputs, results, **options))
    for path in written:
        note(f"wrote {path}")
    return 0


def add_commands(sub: argparse._SubParsersAction, command: str | None = None) -> None:
    with_task_options = command == "predict"
    p = sub.add_parser(
        "finetune",
        help="fine-tune a recipe (TOML file or registered recipe name)",
        description="Fine-tune a recipe. Every recipe field (type, default, meaning) is listed in docs/recipes.md"
        " and by `zoo recipe fields`; `zoo recipe new --data DIR` writes a starter recipe for your own data.",
    )
    p.add_argument("recipe", nargs="?", help="zoo/*.toml, a recipe file, or a recipe name from zoo list --kind recipe")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a field, e.g. stages.1.epochs=5 (repeatable)"
    )
    p.add_argument("--out", help="run folder (default runs/<recipe>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resume: continue even though recipe.toml changed since the last checkpoint (says what changed)",
    )
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
        "--nnodes",
        type=int,
        metavar="M",
        help="several machines: run the same command on each of the M nodes, with --rdzv-endpoint and an --out"
        " every node shares (torchrun's c10d rendezvous; --nproc: the processes per node)",
    )
    p.add_argument(
        "--rdzv-endpoint",
        metavar="HOST:PORT",
        help="with --nnodes: the rendezvous, hosted by the node on HOST (e.g. the job's first node) at a free PORT",
    )
    p.add_argument(
        "--rdzv-id",
        metavar="ID",
        help="with --nnodes: the job's id, the same on every node (default: from the run folder's name)",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        metavar="K",
        help="after a worker dies, restart the workers up to K times, each time resuming from the last"
        " checkpoint (torchrun's elastic restarts; with or without --nproc)",
    )
    p.add_argument(
        "--find-lr",
        nargs="?",
        const="last",
        metavar="STAGE",
        help="instead of training, run the lr range test (fastai-style) for a stage (default: the last) and"
        " write lr_finder.png with a suggested lr",
    )
    p.add_argument(
        "--track",
        metavar="NAMES",
        help="log the run to experiment trackers, e.g. tensorboard,mlflow (opt-in; same as the recipe's"
        " [tracking] backends; a tracker that fails is a warning, never a lost run)",
    )
    p.set_defaults(func=cmd_finetune)

    _add_use_commands(sub, with_task_options)


def _add_use_commands(sub: argparse._SubParsersAction, with_task_options: bool) -> None:
    """``zoo eval`` and ``zoo predict``."""
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
    p.add_argument(
        "--out", metavar="DIR", help="write the task's pictures of this evaluation (per-class plots...) here"
    )
    p.add_argument(
        "--errors",
        type=int,
        metavar="N",
        help="write the N most confidently wrong validation examples as errors.csv + errors.png (to --out DIR,"
        " else the run folder)",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="run a model (run folder or Hub model) on inputs, as its task does")
    p.add_argument("model", help="run folder or hf-hub:org/name[@rev]")
    p.add_argument(
        "inputs", nargs="+", help="inputs as the model's task takes them (files, texts); '-': one per line on stdin"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="for a folder: write one row per file to FILE (.csv or .jsonl) as they are made (default: CSV on"
        " stdout, JSON Lines with --json); for files: the task's own --out, where it declares one",
    )
    p.add_argument("--batch-size", type=int, default=32, help="for a folder: files per batch (default 32)")
    p.add_argument("--workers", type=int, help="for a folder: DataLoader worker processes (default: auto)")
    if with_task_options:
        add_task_predict_options(p)
    p.set_defaults(func=cmd_predict)
