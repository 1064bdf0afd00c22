"""The catalog's commands: ``zoo list``, ``zoo info``, ``zoo plugins`` and ``zoo registry``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from ..catalog.specs import TaskMeta
from ..errors import ZooError
from .output import out, out_json, out_table

KIND_CHOICES = ["backbone", "head", "dataset", "recipe", "task"]


# -- zoo list ---------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from ..catalog.lookup import catalog

    if args.hub:
        from .hub import list_hub

        return list_hub(args)

    cat = catalog(refresh=args.refresh)
    specs = cat.filter(
        include=args.patterns or None,
        exclude=args.exclude or None,
        kind=args.kind,
        task=args.task,
        plugin=args.plugin,
        license=args.license,
        pretrained=args.pretrained,
    )
    available: dict[str, dict[str, str]] | None = None
    if args.available:  # which pretrained weights can be had right now: here, or from a Hub that answers
        available, specs = _available(specs)
    if args.json:
        out_json([s.to_dict() | ({"available": available[s.qualified_name]} if available else {}) for s in specs])
        return 0
    if args.names:
        if specs:
            out("\n".join(s.name for s in specs))
        return 0
    rows = []
    for s in specs:
        io = ",".join(s.outputs) if s.kind == "backbone" else ",".join(s.consumes)
        if s.kind == "task":
            io = f"metric {s.meta.get('metric', '-')}"
        tags = s.pretrained
        if available is not None:
            usable = available[s.qualified_name]
            tags = [t for t in tags if t.tag in usable]
            shown = ", ".join(f"{t.tag} ({usable[t.tag]})" for t in tags[:2])
            pre = shown + (f" +{len(tags) - 2}" if len(tags) > 2 else "")
        elif not tags:
            pre = "-"
        elif len(tags) == 1:
            pre = tags[0].tag
        else:
            pre = f"{(s.default_tag or tags[0].tag)} +{len(tags) - 1}"
        licenses = sorted({t.license for t in tags if t.license} | ({s.license} if s.license else set()))
        served = cat.tasks_for(s) if s.kind == "backbone" else s.tasks  # backbones: whatever heads fit them
        tasks = ",".join(cat.task_label(t) for t in served) if s.kind != "task" else cat.task_label(s.name)
        rows.append([s.name, s.kind, tasks, io or "-", pre, s.plugin, ",".join(licenses) or "-"])
    if rows:
        out_table(["NAME", "KIND", "TASKS", "IO", "PRETRAINED", "PLUGIN", "LICENSE"], rows)
    counts: dict[str, int] = {}
    for s in specs:
        counts[s.kind] = counts.get(s.kind, 0) + 1
    summary = ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items()) or "nothing matched"
    print(summary, file=sys.stderr)
    failed = [p for p in cat.plugins.values() if p.status in ("failed", "degraded")]
    if failed:
        names = ", ".join(p.name for p in failed)
        print(f"warning: plugin(s) {names} failed to load; see `zoo plugins`", file=sys.stderr)
    for p in cat.plugins.values():
        if p.status == "missing":
            print(f"warning: MODELZOO_PLUGINS names {p.name!r}, but no installed plugin has that name", file=sys.stderr)
    return 0


# -- zoo info ---------------------------------------------------------------------------------
def _available(specs: list) -> tuple[dict[str, dict[str, str]], list]:
    """``({qualified name: {tag: "local" | "reachable"}}, the specs with any)``; the Hub is probed once."""
    from ..model.weights import available_tags, converted_weights, hub_reachable

    wants_hub = any(src.startswith("hf-hub:") for s in specs for t in s.pretrained for src in t.sources)
    online = wants_hub and hub_reachable()
    converted = converted_weights()
    found = {s.qualified_name: available_tags(s, online, converted) for s in specs if s.pretrained}
    return found, [s for s in specs if found.get(s.qualified_name)]


def _describe(spec, cat) -> str:
    lines = [f"{spec.qualified_name}  ({spec.kind}; plugin {spec.plugin})"]
    if spec.description:
        lines.append(f"  {spec.description}")
    if spec.kind != "task":  # a backbone serves every task one of whose heads consumes what it emits
        served = cat.tasks_for(spec) if spec.kind == "backbone" else spec.tasks
        lines.append(f"  tasks:       {', '.join(served) or '-'}")
    if spec.modality:
        lines.append(f"  modality:    {spec.modality}")
    if spec.kind == "backbone":
        lines.append(f"  outputs:     {', '.join(spec.outputs)}")
        lines.append(f"  features:    {spec.num_features or 'known once built'} (pooled)")
        if spec.pyramid:
            levels = ", ".join(f"{lv.channels}@/{lv.stride}" for lv in spec.pyramid)
            lines.append(f"  pyramid:     {levels} (channels@/stride)")
    if spec.consumes:
        lines.append(f"  consumes:    {', '.join(spec.consumes)}")
    if spec.kind == "task":
        from .engine import predict_option_flag

        meta = spec.task_meta
        better = "higher" if meta.higher_is_better else "lower"
        lines.append(f"  metric:      {meta.metric} ({better} is better)")
        if meta.aliases:
            lines.append(f"  aliases:     {', '.join(meta.aliases)}")
        if meta.pipeline_tag:
            lines.append(f"  hub tag:     {meta.pipeline_tag}")
        if meta.inputs:
            lines.append(f"  inputs:      {meta.inputs}")
        for opt in meta.predict_options:
            flag = predict_option_flag(opt.name)
            default = f" (default {opt.default})" if opt.default is not None else ""
            lines.append(f"  predict:     {flag} {opt.type.upper()}  {opt.help}{default}")
    if spec.num_params:
        lines.append(f"  params:      {spec.num_params / 1e6:.2f}M")
    if spec.builder:
        lines.append(f"  builder:     {spec.builder}")
    if spec.options:
        lines.append(f"  options:     {json.dumps(spec.options)}")
    if spec.license:
        lines.append(f"  license:     {spec.license}")
    shown = {f.name for f in dataclasses.fields(TaskMeta)}
    for key, value in spec.meta.items():
        if (spec.kind == "task" and key in shown) or (key == "license" and value == spec.license):
            continue  # said above
        lines.append(f"  {key + ':':<12} {value if not isinstance(value, (dict, list)) else json.dumps(value)}")
    if spec.pretrained:
        lines.append(
            f"  pretrained:  {len(spec.pretrained)} tag(s); default {spec.default_tag or spec.pretrained[0].tag}"
        )
        for t in spec.pretrained:
            lines.append(f"    {spec.name}.{t.tag}")
            for src in t.sources:
                lines.append(f"      source:     {src}")
            lines.append(f"      sha256:     {t.sha256 or 'unknown (recorded on first download)'}")
            lic = t.license or "unknown"
            lines.append(f"      license:    {lic}{f' ({t.license_note})' if t.license_note else ''}")
            if t.input_size:
                lines.append(
                    f"      input:      {'x'.join(map(str, t.input_size))}, {t.interpolation or '-'}, crop {t.crop_pct or '-'}"
                )
            if t.mean:
                lines.append(f"      mean/std:   {tuple(t.mean)} / {tuple(t.std or ())}")
            if t.num_classes:
                lines.append(f"      classes:    {t.num_classes}{f' ({t.labels})' if t.labels else ''}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from ..catalog.lookup import catalog

    cat = catalog()
    try:
        specs = [cat.get(args.name)]
    except ZooError as exc:
        plugin, _, bare = args.name.rpartition(":")
        specs = cat.lookup(plugin, bare, None)
        if len(specs) < 2:
            try:  # a task alias (a short name the task declares)
                specs = [cat.task(args.name)]
            except ZooError:
                raise exc from None
    if args.json:
        out_json([s.to_dict() for s in specs] if len(specs) > 1 else specs[0].to_dict())
    else:
        out("\n\n".join(_describe(s, cat) for s in specs))
    return 0


# -- zoo plugins ------------------------------------------------------------------------------
def cmd_plugins(args: argparse.Namespace) -> int:
    from ..catalog.lookup import catalog

    cat = catalog()
    rows = []
    for p in sorted(cat.plugins.values(), key=lambda p: p.name):
        provides = ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in sorted(p.counts.items())) or "-"
        rows.append([p.name, p.dist or "-", p.version or "-", p.status, provides])
    if args.json:
        from dataclasses import asdict

        out_json([asdict(p) for p in cat.plugins.values()])
        return 0
    if rows:
        out_table(["PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES"], rows)
    else:
        out("no plugins installed")
    for p in cat.plugins.values():
        if p.error:
            out(f"  {p.name}: {p.error}")
            for extra in p.problems[1:5]:
                out(f"    also: {extra}")
        for note in p.notes:
            out(f"  {p.name}: note: {note}")
    if cat.collisions:
        shown = sorted(cat.collisions.items())
        limit = len(shown) if getattr(args, "all", False) else 20
        out("name collisions (use plugin:name):")
        for name, where in shown[:limit]:
            out(f"  {name}: {', '.join(where)}")
        if len(shown) > limit:
            out(f"  ... {len(shown) - limit} more (zoo plugins --all)")
    return 0


def _pip(*pip_args: str) -> int:
    import subprocess

    cmd = [sys.executable, "-m", "pip", *pip_args]
    print("$ " + " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd)


def _fresh(*zoo_args: str):
    """``zoo ARGS --json`` in a new interpreter: after pip has run, only a fresh process sees the
    environment as every later ``zoo`` will (new editable installs, removed modules); it also leaves
    the plugins' entries in the cache for them."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "modelzoo", *zoo_args, "--json"], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ZooError(f"listing the catalog after pip failed ({detail}); run zoo plugins to see why")
    return json.loads(proc.stdout)


def cmd_plugins_install(args: argparse.Namespace) -> int:
    from ..catalog.lookup import catalog

    before = {(s.kind, s.qualified_name) for s in catalog().specs}
    extra = ["--no-deps"] if args.no_deps else []
    if args.no_build_isolation:
        extra.append("--no-build-isolation")
    if args.editable:
        extra.append("-e")
    if _pip("install", *extra, *args.specs) != 0:
        raise ZooError("pip install failed (see its output above); the installed plugins are unchanged")
    specs = _fresh("list")
    new = [s for s in specs if (s["kind"], f"{s['plugin']}:{s['name']}") not in before]
    out(f"installed; {len(new)} new catalog entr{'y' if len(new) == 1 else 'ies'}")
    for s in new[:20]:
        out(f"  + {s['kind']} {s['plugin']}:{s['name']}")
    if len(new) > 20:
        out(f"  ... {len(new) - 20} more (zoo list)")
    for p in _fresh("plugins"):
        if p["status"] in ("failed", "degraded"):
            out(f"warning: plugin {p['name']}: {p['error']}")
    return 0


def cmd_plugins_uninstall(args: argparse.Namespace) -> int:
    from ..catalog.load import catalog_cache_dir
    from ..catalog.lookup import catalog

    wanted = {d.lower().replace("_", "-") for d in args.dists}
    gone = [p.name for p in catalog().plugins.values() if (p.dist or "").lower().replace("_", "-") in wanted]
    if _pip("uninstall", "-y", *args.dists) != 0:
        raise ZooError("pip uninstall failed (see its output above)")
    still = {p["name"] for p in _fresh("plugins")}
    for name in gone:
        if name not in still:  # tidy: its cached entries can never match an installed plugin again
            for path in catalog_cache_dir().glob(f"{name}-*.json"):
                path.unlink(missing_ok=True)
    out(f"uninstalled {', '.join(args.dists)}" + (f" (plugins: {', '.join(gone)})" if gone else ""))
    return 0


def cmd_plugins_new(args: argparse.Namespace) -> int:
    from .scaffold import new_plugin

    path = new_plugin(args.name, args.dir, task=args.task)
    what = f"task plugin skeleton ({args.task})" if args.task else "plugin skeleton"
    out(f"wrote {what} {path}\n  install it:  zoo plugins install -e {path}\n  test it:     pytest {path}")
    return 0


# -- zoo registry -----------------------------------------------------------------------------
def cmd_registry(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..catalog.registry_file import build_registry, check_registry, registry_plugins, write_registry

    if args.check:
        stale = check_registry(args.output)
        if stale:
            raise ZooError(f"{args.output} is stale ({stale}); run: zoo registry build")
        out(f"{args.output} is up to date")
        return 0
    data = build_registry(registry_plugins(Path(args.output).absolute().parent))
    write_registry(data, args.output)
    out(f"wrote {args.output}: {len(data['entries'])} entries from plugins {', '.join(data['plugins'])}")
    return 0


# -- parser -----------------------------------------------------------------------------------
def add_commands(sub: argparse._SubParsersAction, command: str | None = None) -> None:
    """Add ``list``, ``info``, ``plugins`` and ``registry`` to the ``zoo`` parser."""
    p = sub.add_parser("list", help="list backbones, heads, datasets, recipes and tasks")
    p.add_argument("patterns", nargs="*", help="wildcards on names or arch.tag, e.g. 'efficientnet*' '*.in1k'")
    p.add_argument("--exclude", action="append", help="wildcard to leave out (repeatable)")
    p.add_argument("--kind", choices=KIND_CHOICES)
    p.add_argument("--task", help="only entries for this task (a name or alias from zoo list --kind task)")
    p.add_argument("--plugin", help="only entries from this plugin")
    p.add_argument("--license", help="only entries with this license (wildcards allowed)")
    p.add_argument("--pretrained", action="store_true", help="only entries with pretrained weights")
    p.add_argument(
        "--available",
        action="store_true",
        help="only pretrained weights usable now: installed, in the HF cache or downloaded (local), or on a Hub"
        " that answers (reachable)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--names", action="store_true", help="names only, one per line")
    p.add_argument("--refresh", action="store_true", help="rebuild the catalog cache")
    p.add_argument("--hub", metavar="ORG", help="list ORG's modelzoo models on the Hugging Face Hub instead")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="everything known about one entry")
    p.add_argument("name", help="arch, arch.tag or plugin:name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("plugins", help="installed plugins; install | uninstall | new")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="show every name collision, not the first 20")
    p.set_defaults(func=cmd_plugins)
    psub = p.add_subparsers(dest="plugins_command", metavar="ACTION")
    q = psub.add_parser("list", help="installed plugins and failures (the default)")
    q.add_argument("--json", action="store_true")
    q.add_argument("--all", action="store_true", help="show every name collision, not the first 20")
    q.set_defaults(func=cmd_plugins)
    q = psub.add_parser("install", help="pip install plugins into this environment")
    q.add_argument("specs", nargs="+", help="pip requirement specs or local paths")
    q.add_argument("-e", "--editable", action="store_true", help="editable install of a local path")
    q.add_argument("--no-deps", action="store_true", help="pass --no-deps to pip")
    q.add_argument("--no-build-isolation", action="store_true", help="build with the installed setuptools (offline)")
    q.set_defaults(func=cmd_plugins_install)
    q = psub.add_parser("uninstall", help="pip uninstall plugin distributions")
    q.add_argument("dists", nargs="+")
    q.set_defaults(func=cmd_plugins_uninstall)
    q = psub.add_parser("new", help="write a working plugin skeleton (a backbone, or with --task a whole task)")
    q.add_argument("name", help="distribution name, e.g. zoo-myplugin")
    q.add_argument("--task", metavar="TASK", help="write a task plugin for the new task TASK (e.g. image-regression)")
    q.add_argument("--dir", default=".", help="parent directory (default: .)")
    q.set_defaults(func=cmd_plugins_new)

    p = sub.add_parser("registry", help="build or check registry.json")
    rsub = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    q = rsub.add_parser("build", help="regenerate registry.json from first-party plugins and zoo/ recipes")
    q.add_argument("--check", action="store_true", help="fail if registry.json is stale instead of writing")
    q.add_argument("--output", default="registry.json")
    q.set_defaults(func=cmd_registry)
