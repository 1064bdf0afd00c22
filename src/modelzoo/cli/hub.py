"""CLI commands for the Hugging Face Hub (push, pull, lock, list --hub); registered into ``zoo``.

Machine-readable results go to stdout (push: URL then commit sha; pull: sha then local path), notes
go to stderr, so ``sha=$(zoo push run org/name | tail -1)`` works. Nothing here imports
huggingface_hub until a command runs, keeping ``zoo list`` instant.
"""

from __future__ import annotations

import argparse

from .output import note, out, out_json, out_table


def cmd_push(args: argparse.Namespace) -> int:
    from ..hub.upload import push

    result = push(
        args.run_dir,
        args.repo_id,
        private=args.private,
        branch=args.branch,
        tag=args.tag,
        message=args.message,
        license=args.license,
        export=args.export,
    )
    for line in result.notes:
        note(line)
    if result.changed:
        note(f"pushed {args.run_dir} to {result.repo_id}@{result.branch} ({len(result.files)} files)")
    else:
        note(f"no changes: {result.repo_id}@{result.branch} already holds this run; no new commit")
    if result.tag:
        note(f"tag {result.tag} -> {result.sha[:12]}")
    out(result.url)
    out(result.sha)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from ..errors import ZooError
    from ..hub.download import pull, pull_locked

    if args.ref is None:
        if not args.locked:
            raise ZooError("name a model (zoo pull ORG/NAME[@REVISION]) or pull everything locked with --locked")
        if args.to:
            raise ZooError("--to needs a single model: zoo pull ORG/NAME --locked --to DIR")
        for result in pull_locked(args.lockfile):
            out(f"{result.sha}  {result.path}  {result.repo_id}")
        return 0
    result = pull(args.ref, to=args.to, locked=True if args.locked else None, lockfile=args.lockfile)
    source = "cache" if result.from_cache else "Hub"
    note(f"{result.repo_id}@{result.revision}: {len(result.files)} files verified (from the {source})")
    out(result.sha)
    out(str(result.path))
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from ..hub.download import lock
    from ..hub.lockfile import lock_path

    entries = lock(args.refs, update=args.update, lockfile=args.lockfile)
    for e in entries:
        out(f"{e.repo}  {e.revision}  {e.sha}")
    note(f"wrote {lock_path(args.lockfile)} ({len(entries)} model{'s' if len(entries) != 1 else ''})")
    return 0


def add_commands(sub: argparse._SubParsersAction, command: str | None = None) -> None:
    """Add ``push``, ``pull`` and ``lock`` to the ``zoo`` parser."""
    p = sub.add_parser("push", help="publish a run folder as a Hugging Face Hub model repo")
    p.add_argument("run_dir", help="a finished run folder (zoo finetune output)")
    p.add_argument("repo_id", metavar="ORG/NAME", help="the Hub repo to create or update")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--branch", default="main", help="branch to commit to (created from main if new)")
    p.add_argument("--tag", help="tag the pushed commit (e.g. v1); an existing tag is never moved")
    p.add_argument("--message", help="commit message")
    p.add_argument("--license", help="license to declare when the pretrained weights have none")
    p.add_argument(
        "--export",
        metavar="FORMAT",
        help="also publish the model exported as FORMAT (onnx, torchscript, exported-program; parity-checked)",
    )
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("pull", help="download a Hub model pinned to a commit (HF cache or --to DIR)")
    p.add_argument("ref", nargs="?", metavar="ORG/NAME[@REV]", help="repo and branch, tag or commit sha")
    p.add_argument("--to", help="copy the verified files into this directory (atomically)")
    p.add_argument("--locked", action="store_true", help="fetch exactly the sha in zoo.lock; fail on any mismatch")
    p.add_argument("--lockfile", help="lock file (default: ./zoo.lock or $ZOO_LOCK)")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("lock", help="pin Hub models to commits + file sha256s in zoo.lock")
    p.add_argument("refs", nargs="*", metavar="ORG/NAME[@REV]", help="models to add or move (default: re-verify)")
    p.add_argument("--update", action="store_true", help="move every entry to its revision's current commit")
    p.add_argument("--lockfile", help="lock file (default: ./zoo.lock or $ZOO_LOCK)")
    p.set_defaults(func=cmd_lock)


def list_hub(args: argparse.Namespace) -> int:
    """``zoo list --hub ORG``: the org's modelzoo models on the Hub, then its repos usable as backbones."""
    from ..hub.listing import list_hub_models

    found = list_hub_models(args.hub)
    if getattr(args, "json", False):
        out_json(found)
        return 0
    models = [m for m in found if m.get("kind") == "model"]
    backbones = [m for m in found if m.get("kind") == "backbone"]
    if not found:
        note(f"no modelzoo models or backbones published by {args.hub}")
        return 0
    if models:
        _models_table(models)
    if backbones:
        if models:
            out("")
        rows = [
            [f"hf-hub:{b['id']}" + (" (private)" if b["private"] else ""), b["library"], b["license"] or "-",
             (b["sha"] or "-")[:12], (b["updated"] or "-")[:10]]
            for b in backbones
        ]  # fmt: skip
        out_table(["BACKBONE", "LIBRARY", "LICENSE", "SHA", "UPDATED"], rows)
        note(f'{len(backbones)} backbone{"s" if len(backbones) != 1 else ""} (model.backbone = "hf-hub:ORG/NAME")')
    return 0


def _models_table(models: list[dict]) -> None:
    rows = []
    for m in models:
        acc = m["metrics"].get("accuracy")
        rows.append(
            [
                m["id"] + (" (private)" if m["private"] else ""),
                m["task"] or "-",
                f"{acc:.4f}" if isinstance(acc, (int, float)) else "-",
                m["license"] or "-",
                (m["sha"] or "-")[:12],
                (m["updated"] or "-")[:10],
            ]
        )
    headers = ["NAME", "TASK", "ACCURACY", "LICENSE", "SHA", "UPDATED"]
    out_table(headers, rows)
    note(f"{len(models)} model{'s' if len(models) != 1 else ''}")
