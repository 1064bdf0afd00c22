"""CLI commands of the fine-tune engine: finetune, eval, predict."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_finetune(args: argparse.Namespace) -> int:
    from .engine import finetune

    run = finetune(
        args.recipe, out=args.out, resume=args.resume, overrides=args.set or [], quiet=args.quiet or args.json
    )
    if args.json:
        print(
            json.dumps(
                {"run": str(run.path), "recipe": run.recipe.name, "metrics": run.metrics, "epochs": len(run.history)}
            )
        )
    else:
        from .adapters import adapter_class

        m = run.metrics
        metric = adapter_class(run.model.task).metric
        print(
            f"run {run.path}: {metric} {m[metric]:.4f}, loss {m['loss']:.4f}"
            f" on {run.model.config['dataset']['num_val']} validation examples"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a run on its recipe's validation split, or on ``--data DIR`` (an ImageFolder)."""
    from pathlib import Path

    from .adapters import adapter_class
    from .engine import pick_device
    from .errors import ZooError
    from .model import load
    from .recipe import load_recipe

    model = load(args.run)
    device = pick_device(args.device)
    model.to(device)
    recipe_path = Path(str(args.run)) / "recipe.toml"
    if recipe_path.is_file():
        recipe = load_recipe(recipe_path)
    elif args.data:
        from .recipe import validate

        recipe = validate(
            {
                "task": model.task,
                "model": {"backbone": "-"},
                "data": {"path": str(args.data)},
                "stages": [{"train": "head"}],
            }
        )
    else:
        raise ZooError(f"{args.run} has no recipe.toml; pass --data PATH to evaluate on")
    recipe.data.batch_size = args.batch_size
    adapter = adapter_class(model.task)(recipe, device, None)
    if args.data:
        adapter.load_eval_data(args.data)
    else:
        adapter.load_data()
    if adapter.labels != model.labels:
        raise ZooError(f"the data's classes {adapter.labels} do not match the model's labels {model.labels}")
    adapter.prepare(model)
    from torch.utils.data import DataLoader

    loader = DataLoader(adapter.dataset("val"), batch_size=args.batch_size, collate_fn=adapter.collate)
    result = adapter.evaluate(model, loader, final=True)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        "  ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float))
        + f"  ({len(loader.dataset)} examples)"
    )
    if "per_class" in result:
        width = max(len(lbl) for lbl in model.labels)
        print(f"{'class'.ljust(width)}  precision  recall  support")
        for label, row in zip(model.labels, result["per_class"]):
            print(f"{label.ljust(width)}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['support']:7d}")
    if "confusion_matrix" in result:
        print("confusion matrix (rows: true, columns: predicted):")
        for label, row in zip(model.labels, result["confusion_matrix"]):
            print(f"{label.ljust(width)}  " + " ".join(f"{v:4d}" for v in row))
    if result.get("per_class_ap"):
        width = max(len(row["label"]) for row in result["per_class_ap"])
        print(f"{'class'.ljust(width)}       AP  AP@.5  objects")
        for row in result["per_class_ap"]:
            ap, ap50 = (f"{v:.4f}" if v is not None else "   -  " for v in (row["ap"], row["ap_50"]))
            print(f"{row['label'].ljust(width)}  {ap:>7}  {ap50:>5}  {row['num_objects']:7d}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .model import load

    model = load(args.model)
    if model.task == "object-detection":
        return _predict_detection(model, args)
    if model.task == "text-classification" and args.inputs == ["-"]:  # one text per line from stdin
        args.inputs = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    results = model.predict(args.inputs, top_k=args.top_k)
    if args.json:
        print(
            json.dumps(
                [
                    {"input": str(i), "predictions": [{"label": lbl, "score": s} for lbl, s in r]}
                    for i, r in zip(args.inputs, results)
                ]
            )
        )
        return 0
    for item, preds in zip(args.inputs, results):
        print(f"{item}: " + ", ".join(f"{lbl} {score:.3f}" for lbl, score in preds))
    return 0


def _predict_detection(model, args: argparse.Namespace) -> int:
    """Boxes per image, printed (or ``--json``); ``--out`` draws them onto the images."""
    from .predict_detection import save_annotated

    results = model.predict(args.inputs, score_threshold=args.score_threshold)
    written = save_annotated(args.inputs, results, args.out, model.labels) if args.out else []
    if args.json:
        print(json.dumps([{"input": str(i), "detections": r} for i, r in zip(args.inputs, results)]))
    else:
        for item, dets in zip(args.inputs, results):
            print(f"{item}: {len(dets)} detection{'s' * (len(dets) != 1)} (score >= {args.score_threshold})")
            for det in dets:
                box = ", ".join(f"{v:.0f}" for v in det["box"])
                print(f"  {det['label']} {det['score']:.3f} [{box}]")
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a recipe (TOML file or registered recipe name)")
    p.add_argument("recipe", nargs="?", help="zoo/*.toml, a recipe file, or a recipe name from zoo list --kind recipe")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a field, e.g. stages.1.epochs=5 (repeatable)"
    )
    p.add_argument("--out", help="run folder (default runs/<recipe>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("eval", help="accuracy, per-class precision/recall and confusion matrix of a run")
    p.add_argument("run", help="run folder or hf-hub:org/name[@rev]")
    p.add_argument(
        "--data",
        help="an ImageFolder directory (text: a CSV/JSONL file or <class>/*.txt folder) to evaluate on"
        " (default: the run's validation split)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="classify images or texts, or detect objects, with a run folder or a Hub model")
    p.add_argument("model", help="run folder or hf-hub:org/name[@rev]")
    p.add_argument(
        "inputs", nargs="+", help="image files; for a text classifier the texts themselves ('-': one per line on stdin)"
    )
    p.add_argument("--top-k", type=int, default=5, help="classes per input (classifiers)")
    p.add_argument("--score-threshold", type=float, default=0.5, help="lowest score of a reported box (detectors)")
    p.add_argument("--out", help="detectors: draw the boxes into this image file (one input) or folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
