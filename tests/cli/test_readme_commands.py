"""Every command of README.md, run as a new user would run it, so the front door cannot drift.

The README's commands are the lines of its ```bash / ```sh / ```console blocks and the ``$ `` lines of
its ```text blocks (each followed by its pasted output). Every one of them has a plan in :data:`PLANS`,
keyed by its text as written: :class:`Run` (in a subprocess, through bash, as written or with tiny
overrides) or :class:`Skip` (with the reason, and, for a ``zoo`` command, still parsed by the real
``zoo`` argument parser, so a renamed flag or command is caught). A command the README gains without a
plan, or a plan whose command left the README, fails :func:`test_every_readme_command_has_a_plan`.

Commands run in README order in one folder (a block uses the run folders earlier ones made), with an
isolated modelzoo cache and HF home, and a local Hub as ``HF_ENDPOINT``. Where the README pastes output,
the output is checked against it: ``exact`` (deterministic commands: listings, errors), ``shape`` (the
same lines with every number and hex id free: what a shrunk run prints in the same form) or
``contains`` (the pasted lines, shaped, appear in that order); a pasted ``...`` stands for any lines.
A shrunk form is the README's command with ``--set`` overrides added (fewer images, epochs or draws).
Each command is a new interpreter (seconds of imports, far more on a busy machine), so every run of the
suite runs the light plans (the main job's shrunk fine-tune and evaluation, the registry, the scaffolds;
under 90 s on 2 busy cores); the heavy ones (predictions, trackers, the Hub round trip, the other tasks'
demos, ``zoo select``, export) run in README order with the light ones when ``MODELZOO_README_ALL=1``
is set, and are otherwise parsed like the skipped ones.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from modelzoo.testing import hub_env
from modelzoo.testing.hub import HubServer

README = Path(__file__).resolve().parents[2] / "README.md"
SHELL_BLOCKS = ("bash", "sh", "console", "shell")
HEAVY = os.environ.get("MODELZOO_README_ALL") == "1"


# -- the README's commands ------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    line: int  # where it starts in README.md
    text: str  # as written: continuation lines joined, a trailing comment removed
    output: tuple[str, ...] | None  # the pasted output (``$`` lines of text blocks), None for shell blocks

    @property
    def key(self) -> str:
        return " ".join(self.text.split())


def strip_comment(text: str) -> str:
    """``text`` without a shell comment (a ``#`` after whitespace, outside quotes)."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text.rstrip()


def _joined(lines: list[str], i: int, first: str) -> tuple[str, int]:
    """The command starting at ``lines[i]`` (given as ``first``), with ``\\`` continuations; the next index."""
    parts = [first]
    while parts[-1].rstrip().endswith("\\") and i + 1 < len(lines):
        parts[-1] = parts[-1].rstrip()[:-1].rstrip()
        i += 1
        parts.append(lines[i].strip())
    return " ".join(parts), i + 1


def readme_commands(text: str) -> list[Command]:
    lines, commands, lang, i = text.splitlines(), [], None, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang = (line[3:].strip() or "text") if lang is None else None
            i += 1
        elif lang in SHELL_BLOCKS:
            start = i
            command, i = _joined(lines, i, line)
            if strip_comment(command).strip():
                commands.append(Command(start + 1, strip_comment(command).strip(), None))
        elif lang == "text" and line.startswith("$ "):
            start = i
            command, i = _joined(lines, i, line[2:])
            output = []
            while i < len(lines) and not lines[i].startswith(("$ ", "```")):
                output.append(lines[i].rstrip())
                i += 1
            while output and not output[-1]:
                output.pop()
            commands.append(Command(start + 1, strip_comment(command).strip(), tuple(output)))
        else:
            i += 1
    return commands


# -- plans ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """Run the command (or ``command``, its shrunk form) with bash in the shared folder."""

    command: str | None = None  # what runs instead; ``{name}`` is a value an earlier command captured
    rc: int = 0
    check: str = "none"  # exact | shape | contains | none: how the pasted output is compared
    stream: str = "stdout"  # stdout | stderr | both (stdout, then stderr) | stderr first (then stdout)
    expect: tuple[str, ...] = ()  # regexes that must match somewhere in stdout + stderr (multiline)
    loose: tuple[str, ...] = ()  # pasted lines starting with one of these need only a line with that start
    optional: tuple[str, ...] = ()  # pasted lines starting with one of these may be missing (a tiny run's)
    given: str | None = None  # a :data:`GIVENS` step to run first (files the README assumes exist)
    capture: dict[str, str] = field(default_factory=dict)  # name -> regex: stdout's last match, kept
    heavy: bool = False  # only with MODELZOO_README_ALL=1 (else parsed like a Skip)


@dataclass(frozen=True)
class Skip:
    """Not run here, for ``reason``; ``parse`` (default: the command itself) is checked by zoo's parser."""

    reason: str
    parse: str | None = ""  # "": the command as written; None: not a zoo command; else the zoo command to parse


SETUP = "set-up and the whole suite: what CI runs; the main job's fine-tune runs shrunk below"
# a fine-tune of the main recipe in seconds: 64 training / 32 validation images (one batch), the stages as written
TINY = "--set data.train_limit=64 --set data.val_limit=32"
MAIN_RUN = f"zoo finetune effnet-lite0-fashion-mnist {TINY} --out runs/default 2>&1 | grep -v '%)'"
TRACKED = (
    "zoo finetune effnet-lite0-fashion-mnist --out runs/fm --track tensorboard,mlflow --set data.train_limit=600"
    " --set data.val_limit=200 --set stages.0.epochs=2 --set stages.1.epochs=1"
)
SCALE = "a multi-process or multi-node template (RECIPE, HOST, SLURM); tests/engine/test_distributed.py and test_multinode.py run it"
CHECKPOINTS = "needs repos written by timm and transformers on a Hub: tests/hub/test_hub_checkpoints.py runs these"
BENCH = "a benchmark of full-size runs (minutes); its result is the pasted table"
ML_TINY = (
    "--set data.options.num_train=48 --set data.options.num_val=16 --set data.image_size=64"
    " --set stages.0.epochs=1 --set stages.1.epochs=1"
)

PLANS: dict[str, Run | Skip] = {
    # -- Set up and run
    "bash .ci/setup && .ci/env zoo finetune effnet-lite0-fashion-mnist": Skip(
        SETUP, "zoo finetune effnet-lite0-fashion-mnist"
    ),
    "bash .ci/setup && .ci/env python -m pytest -q": Skip(SETUP, None),
    # -- The main job
    "zoo finetune effnet-lite0-fashion-mnist --out runs/default 2>&1 | grep -v '%)'": Run(
        MAIN_RUN,
        check="contains",  # a tiny run may add a line (keep_better) and is too quick to report its feature pass
        loose=("speed: ",),
        # the form of each epoch line, not their count; passes too quick to report
        optional=("feature pass (train): done", "frozen-layer pass (train): done", "  epoch "),
    ),
    "zoo eval runs/default | head -3": Run(check="shape"),
    "zoo predict runs/default boot.png pullover.png --top-k 3": Run(
        given="fashion items",
        expect=(r"^boot\.png: [^,]+ [01]\.\d{3}, [^,]+ [01]\.\d{3}, [^,]+ [01]\.\d{3}$", r"^pullover\.png: "),
        heavy=True,
    ),
    "zoo finetune effnet-lite0-fashion-mnist --set data.image_size=3 ...": Run(
        f"zoo finetune effnet-lite0-fashion-mnist --set data.image_size=3 {TINY} --set stages.1.epochs=1 --out runs/px3",
        check="contains",
        stream="stderr",
        heavy=True,
    ),
    "zoo finetune effnet-lite0-fashion-mnist --set model.head=fasterrcnn": Run(rc=2, check="exact", stream="stderr"),
    "zoo finetune effnet-lite0-fashion-mnist --find-lr 0 --out runs/lr0": Run(
        f"zoo finetune effnet-lite0-fashion-mnist {TINY} --find-lr 0 --out runs/lr0",
        expect=(
            r"^lr finder, stage 0 'head': \d+ steps",
            r"Use it: --set stages\.0\.lr=\S+\. Plot: runs/lr0/lr_finder\.png$",
        ),
        heavy=True,
    ),
    # -- The registry
    "zoo list --kind head": Run(check="exact", stream="both"),  # the count is on stderr
    "zoo list 'resnet1*' --kind backbone --pretrained | head -5": Run(check="exact"),
    "zoo info tf_efficientnet_lite0 | sed -n '1,9p;19,25p'": Run(check="exact"),
    "zoo info resnt18": Run(rc=2, check="exact", stream="stderr"),
    "HF_HUB_OFFLINE=1 zoo list --available": Run(check="exact", stream="both"),
    # -- Plugins
    "zoo list --kind task": Run(check="exact", stream="both"),
    "zoo plugins new zoo-myplugin": Run(expect=(r"zoo-myplugin",)),
    "zoo plugins new zoo-mytask --task image-regression": Run(expect=(r"zoo-mytask",)),
    "zoo plugins install -e ./zoo-myplugin": Skip(
        "pip-installs into this environment; tests/cli/test_plugin_install.py and tests/model/test_task_plugin.py"
        " install scaffolds into a throw-away layer"
    ),
    "zoo plugins uninstall zoo-myplugin": Skip("pip-uninstalls from this environment (see the install line)"),
    "zoo registry build [--check]": Skip(
        "enumerates every plugin live (minutes of imports); tests/catalog/test_registry_file.py runs it",
        "zoo registry build --check",
    ),
    # -- Watch a run: TensorBoard and MLflow
    TRACKED: Run(f"{TRACKED} {TINY}", check="shape", heavy=True),  # a later --set wins
    "cat runs/fm/tracking.json": Run(check="shape", heavy=True),
    "tensorboard --logdir runs": Skip(
        "a server that runs until stopped; tests/tracking/test_trackers.py reads its event files", None
    ),
    "MLFLOW_TRACKING_URI=sqlite:///mlruns/mlflow.db mlflow runs list --experiment-id 1": Run(check="shape", heavy=True),
    # -- Predict on a folder
    "zoo predict runs/fm shots/ --out preds.csv --top-k 2": Run(
        given="shots",  # a handful of files: too few for the progress line
        expect=(
            r"^predicted \d+ files in \S+ \(\S+ images/s\): \d+ rows in preds\.csv; 1 unreadable file\(s\) skipped"
            r" \(first: day3/shot0250\.png: BadImage: unreadable image shots/day3/shot0250\.png \(",
        ),
        heavy=True,
    ),
    "head -3 preds.csv": Run(check="shape", loose=("day1/shot0000.png,", "day1/shot0001.png,"), heavy=True),
    # -- Which pretrained model?
    "zoo compare tf_efficientnet_lite0 tf_efficientnet_lite1 tf_efficientnet_lite2 mobilenetv2_100 --image-size 64": Run(
        "zoo compare tf_efficientnet_lite0 tf_efficientnet_lite1 tf_efficientnet_lite2 mobilenetv2_100 --image-size 64"
        " --seconds 0",
        expect=tuple(
            rf"^{re.escape(name)}\s+\d+\.\d+M\s+0\.0\d\d\s"
            for name in ("tf_efficientnet_lite0.in1k_pkg", "tf_efficientnet_lite2.in1k_pkg", "mobilenetv2_100.tv_in1k")
        ),
        heavy=True,
    ),
    "zoo select --recipe effnet-lite0-fashion-mnist --candidates 'tf_efficientnet_lite[012].in1k_pkg'"
    " mobilenetv2_100.tv_in1k --budget 5m --out runs/select": Run(
        "zoo select --recipe effnet-lite0-fashion-mnist --candidates 'tf_efficientnet_lite[012].in1k_pkg'"
        " mobilenetv2_100.tv_in1k --budget 5m --out runs/select --set data.train_limit=120 --set data.val_limit=40"
        " --set data.image_size=32 --samples 40 --draws 2",
        expect=(r"^pick: \S+", r"^next: zoo finetune runs/select/fashion-mnist-\S+\.toml$"),
        heavy=True,
    ),
    # -- Scale out
    "zoo finetune RECIPE --nproc 2 --out runs/x": Skip(SCALE),
    "zoo finetune --resume runs/x --nproc 4": Skip(SCALE),
    "CUDA_VISIBLE_DEVICES=0 zoo finetune RECIPE --out runs/x": Skip("needs a GPU"),
    "zoo finetune RECIPE --nproc 2 --max-restarts 3 --out runs/x": Skip(SCALE),
    "zoo finetune RECIPE --nnodes 2 --nproc 8 --rdzv-endpoint HOST:29500 --out runs/x": Skip(SCALE),
    "srun --nodes 2 --ntasks-per-node 1 --gpus-per-node 8 bash -c 'zoo finetune RECIPE --nnodes $SLURM_NNODES --nproc 8"
    " --rdzv-endpoint $(scontrol show hostnames $SLURM_NODELIST | head -n1):29500 --rdzv-id $SLURM_JOB_ID --out"
    " runs/x'": Skip(
        SCALE, "zoo finetune RECIPE --nnodes 2 --nproc 8 --rdzv-endpoint h:29500 --rdzv-id 7 --out runs/x"
    ),
    "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 --rdzv-id x -m modelzoo"
    " finetune RECIPE --out runs/x": Skip(SCALE, "zoo finetune RECIPE --out runs/x"),
    # -- Object detection
    "python bench/detection_pretrained_vs_scratch.py": Skip(BENCH, None),
    "zoo eval runs/det1 | head -4": Run(
        given="detection run",  # a few scenes: which classes head the table varies
        expect=(r"^loss \S+  map \S+  map_50 \S+  map_75 \S+  \(\d+ examples\)$", r"^class\s+AP\s+AP@\.5\s+objects$"),
        heavy=True,
    ),
    "zoo predict runs/det1 scene.png --out annotated.png": Run(
        given="detection scene",
        expect=(r"^scene\.png: \d+ detection", r"^wrote annotated\.png$"),
        heavy=True,
    ),
    # -- Multi-label classification
    "zoo finetune zoo/effnet-lite0-fashion-multilabel.toml --out runs/ml": Run(
        f"zoo finetune zoo/effnet-lite0-fashion-multilabel.toml --out runs/ml {ML_TINY}", check="shape", heavy=True
    ),
    "zoo eval runs/ml | head -5": Run(
        expect=(
            r"^loss \S+  map \S+  micro_f1 \S+  macro_f1 \S+  \(\d+ examples\)$",
            r"^label\s+AP\s+F1\s+threshold\s+support\s+\(thresholds: the model's, tuned on validation\)$",
        ),
        heavy=True,
    ),
    "zoo predict runs/ml scene0.png scene1.png": Run(
        given="multilabel scenes", expect=(r"^scene0\.png: ", r"^scene1\.png: "), heavy=True
    ),
    # -- Semantic segmentation
    "python bench/segmentation_pretrained_vs_scratch.py --out runs/seg": Skip(BENCH, None),
    "zoo eval runs/seg/pretrained --out runs/seg/eval": Run(
        given="segmentation run",
        expect=(
            r"^loss \S+  miou \S+  pixel_accuracy \S+  \(\d+ examples\)$",
            r"^wrote runs/seg/eval/val_segmentation\.png$",
        ),
        heavy=True,
    ),
    "zoo predict runs/seg/pretrained scene.png --out preds": Run(
        given="segmentation scene",
        expect=(
            r"^scene\.png: 96x96 px; [^,]+ \d+\.\d%(, [^,]+ \d+\.\d%)*$",  # each class's share, largest first
            r"^wrote preds/scene_mask\.png$",
            r"^wrote preds/scene_overlay\.png$",
        ),
        heavy=True,
    ),
    # -- The Hugging Face Hub
    "zoo push runs/exp1 my-org/fashion-effnet [--private] [--branch main] [--tag v1]": Run(
        "zoo push runs/exp1 my-org/fashion-effnet --branch main --tag v1",
        given="exp1",
        expect=(r"/my-org/fashion-effnet$",),
        capture={"sha": r"^[0-9a-f]{40}$"},
        heavy=True,
    ),
    "zoo pull my-org/fashion-effnet@v1 [--to DIR]": Run("zoo pull my-org/fashion-effnet@v1 --to pulled", heavy=True),
    "zoo predict hf-hub:my-org/fashion-effnet@<sha> shirt.png": Run(
        "zoo predict hf-hub:my-org/fashion-effnet@{sha} shirt.png",
        given="shirt",
        expect=(r"^shirt\.png: \S",),
        heavy=True,
    ),
    "zoo list --hub my-org": Run(expect=(r"my-org/fashion-effnet",), heavy=True),
    "zoo list --available": Run(expect=(r"^tf_efficientnet_lite0 .* in1k_pkg \(local\)",), heavy=True),
    "zoo lock my-org/fashion-effnet@v1": Run(expect=(r"^wrote \S*zoo\.lock \(1 model\)$",), heavy=True),
    "zoo pull --locked": Run(expect=(r"my-org/fashion-effnet",), heavy=True),
    # -- Any Hub checkpoint
    "cat convnext.toml": Skip(CHECKPOINTS, None),
    "zoo finetune convnext.toml --out run3": Skip(CHECKPOINTS),
    "jq .backbone.name run3/config.json": Skip(CHECKPOINTS, None),
    "zoo list --hub tester": Skip(CHECKPOINTS),
    "zoo info hf-hub:tester/pickle-only": Skip(CHECKPOINTS),
    "MODELZOO_PLUGINS=core,classification zoo info hf-hub:tester/convnext-hub": Skip(CHECKPOINTS),
    # -- Export
    "zoo export runs/colours --format onnx": Run(given="colours run", check="shape", stream="stderr first", heavy=True),
    "zoo export runs/colours --format exported-program": Run(check="shape", stream="stderr first", heavy=True),
    "jq -c '.inputs, .outputs, .parity' runs/colours/export/model.onnx.json": Run(check="shape", heavy=True),
    "zoo export runs/colours --format onxx": Run(rc=2, check="exact", stream="stderr", heavy=True),
    "zoo push runs/colours my-org/colours --export onnx": Run(
        check="shape", stream="stderr first", loose=("http://127.0.0.1:",), heavy=True
    ),
    # -- Text classification
    "python bench/text_pretrained_vs_baseline.py": Skip(BENCH, None),
}


# -- the files the README assumes -------------------------------------------------------------------
def _fashion_png(path: Path, index: int, size: int | None = None) -> None:
    """Fashion-MNIST test item ``index`` as a PNG (``size``: resized, for scene-sized inputs)."""
    from PIL import Image
    from zoo_classification.data import fashion_mnist_arrays

    images, _ = fashion_mnist_arrays("test")
    image = Image.fromarray(images[index])
    path.parent.mkdir(parents=True, exist_ok=True)
    (image.resize((size, size)) if size else image).save(path)


def _demo_scene(path: Path) -> None:
    """A 160 px scene composed as the detection demo's val scenes are (Fashion-MNIST test items), seed 2026."""
    from PIL import Image
    from zoo_classification.data import fashion_mnist_arrays
    from zoo_detection.demo import compose

    items, labels = fashion_mnist_arrays("test")
    Image.fromarray(compose(items, labels, 1, 2026)[0][0]).save(path)


def _shots(work: Path) -> None:
    """A camera's folder by day; one file cut short (the README's run skipped one unreadable file)."""
    for number, index in enumerate(range(9980, 9986)):
        _fashion_png(work / "shots" / f"day{1 + number // 2}" / f"shot{number:04d}.png", index)
    broken = work / "shots" / "day3" / "shot0250.png"
    _fashion_png(broken, 9990, size=64)
    broken.write_bytes(broken.read_bytes()[: len(broken.read_bytes()) // 2])


def _bash(command: str, work: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"setting up with {command}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


COLOURS = """name = "colours"
task = "image-classification"
device = "cpu"
[model]
backbone = "timm:test_convnext"
pretrained = false
head = "linear"
[data]
path = "colours"
image_size = 32
batch_size = 8
[[stages]]
name = "head"
train = "head"
epochs = 1
lr = 0.01
"""


def _colours_run(work: Path, env: dict[str, str]) -> None:
    from modelzoo.testing import write_color_images

    write_color_images(work / "colours" / "train", 6, seed=0, size=32)
    write_color_images(work / "colours" / "val", 3, seed=1, size=32)
    (work / "colours.toml").write_text(COLOURS)
    _bash("zoo finetune colours.toml --out runs/colours --quiet", work, env)


DEMO = "--set stages.0.epochs=1 --set stages.1.epochs=1 --quiet"
GIVENS: dict[str, Callable[[Path, dict[str, str]], None]] = {
    "fashion items": lambda work, env: (
        _fashion_png(work / "boot.png", 9995),
        _fashion_png(work / "pullover.png", 9985),
    ),
    "shots": lambda work, env: _shots(work),
    "exp1": lambda work, env: _bash("cp -r runs/default runs/exp1", work, env),
    "shirt": lambda work, env: _fashion_png(work / "shirt.png", 9990),
    "detection run": lambda work, env: _bash(
        "zoo finetune zoo/mobilenetv2-fasterrcnn-fashion-scenes.toml --out runs/det1 --set data.options.num_train=8"
        f" --set data.options.num_val=4 {DEMO}",
        work,
        env,
    ),
    "detection scene": lambda work, env: _demo_scene(work / "scene.png"),
    "multilabel scenes": lambda work, env: (
        _fashion_png(work / "scene0.png", 1, 96),
        _fashion_png(work / "scene1.png", 2, 96),
    ),
    "segmentation run": lambda work, env: _bash(
        "zoo finetune zoo/effnet-lite0-fpn-fashion-segments.toml --out runs/seg/pretrained"
        f" --set data.options.num_train=16 --set data.options.num_val=8 {DEMO}",
        work,
        env,
    ),
    "segmentation scene": lambda work, env: _fashion_png(work / "scene.png", 9995, size=96),
    "colours run": _colours_run,
}


# -- running and checking -------------------------------------------------------------------------
_TOKEN = re.compile(r"(\s+|\b[0-9a-f]{12,64}\b|(?<![\w.])-?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?)")
_NUMBER = r"-?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?"


def line_shape(line: str, loose: tuple[str, ...] = ()) -> str:
    """A regex for ``line`` with every number and hex id free (and any spacing between words)."""
    for prefix in loose:
        if line.startswith(prefix):
            return re.escape(prefix) + ".*"
    parts = []
    for token in _TOKEN.split(line):
        if not token:
            continue
        if token.isspace():
            parts.append(r"[ \t]+")
        elif re.fullmatch(r"[0-9a-f]{12,64}", token):
            parts.append("[0-9a-f]{12,64}")
        elif re.fullmatch(_NUMBER, token):
            parts.append(_NUMBER)
        else:
            parts.append(re.escape(token))
    return "".join(parts)


def output_pattern(pasted: tuple[str, ...], plan: Run) -> re.Pattern:
    """The pasted lines as one regex over the output's lines: in order, ``...`` standing for any lines;
    ``shape``: nothing else, ``contains``: anything before, between and after."""
    any_lines, whole = r"(?:[^\n]*\n)*?", plan.check == "shape"
    parts = [] if whole else [any_lines]
    for line in pasted:
        shape = line_shape(line, plan.loose) + r"\n"
        if line.startswith(plan.optional):
            shape = f"(?:{shape})?"
        parts.append(any_lines if line.strip() == "..." else shape)
        if not whole:
            parts.append(any_lines)
    return re.compile("".join(parts) + ("" if whole else r"(?:[^\n]*\n)*"))


def output_lines(proc: subprocess.CompletedProcess, stream: str) -> list[str]:
    both = {"both": proc.stdout + "\n" + proc.stderr, "stderr first": proc.stderr + "\n" + proc.stdout}
    text = {"stdout": proc.stdout, "stderr": proc.stderr, **both}[stream]
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return [line for line in lines if line] if stream in both else lines


def check_output(command: Command, plan: Run, proc: subprocess.CompletedProcess, where: str) -> None:
    if plan.check != "none":
        assert command.output, f"{where}\nthe plan compares output, but the README pastes none"
        lines = output_lines(proc, plan.stream)
        if plan.check == "exact":
            assert lines == list(command.output), f"{where}\nthe README pastes:\n" + "\n".join(command.output)
        else:
            pattern = output_pattern(command.output, plan)
            assert pattern.fullmatch("".join(f"{line}\n" for line in lines)), (
                f"{where}\nthe output is not in the form the README pastes ({plan.check}):\n"
                + "\n".join(command.output)
            )
    for regex in plan.expect:
        assert re.search(regex, proc.stdout + "\n" + proc.stderr, re.M), f"{where}\nexpected a line matching {regex!r}"


def run_plans(work: Path, env: dict[str, str], heavy: bool) -> int:
    """Run the README's :class:`Run` commands in README order in ``work``: all of them, or (``heavy``
    False) only the light ones."""
    values: dict[str, str] = {}
    ran = 0
    for command in readme_commands(README.read_text(encoding="utf-8")):
        plan = PLANS[command.key]
        if not isinstance(plan, Run) or (plan.heavy and not heavy):
            continue
        if plan.given:
            GIVENS[plan.given](work, env)
        text = plan.command or command.text
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        start = time.monotonic()
        proc = subprocess.run(["bash", "-c", text], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        print(f"{time.monotonic() - start:5.1f}s  README.md:{command.line}: {text}")  # shown on failure or with -rP
        where = (
            f"README.md:{command.line}: {text}\nexit status {proc.returncode} (expected {plan.rc})\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
        assert proc.returncode == plan.rc, where
        assert "Traceback" not in proc.stderr, where
        if plan.rc == 0:
            assert not re.search(r"^error: ", proc.stderr, re.M), where
        check_output(command, plan, proc, where)
        for name, regex in plan.capture.items():
            found = re.findall(regex, proc.stdout, re.M)
            assert found, f"{where}\nnothing to capture as {name} ({regex!r})"
            values[name] = found[-1]
        ran += 1
    return ran


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        yield server


def readme_env(work: Path, server: HubServer, warm_cache: str) -> dict[str, str]:
    """A new user's shell: the project's ``zoo`` and ``python`` first on PATH, a modelzoo cache of its own
    (its catalog the session's warm one: named by content, never stale) and HF home, the local Hub, no
    tracker settings from outside."""
    cache = work / ".zoo-cache"
    cache.mkdir()
    (cache / "catalog").symlink_to(Path(warm_cache) / "catalog", target_is_directory=True)
    env = hub_env(server, work / ".hf-home", MODELZOO_CACHE=str(cache), OMP_NUM_THREADS="1")
    for name in [*env]:
        if name == "PYTHONPATH" or (name.startswith(("MODELZOO_", "MLFLOW_")) and name != "MODELZOO_CACHE"):
            del env[name]
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MODELZOO_CHANNELS_LAST"] = "1"  # no speed measurement in each fresh cache (the speed: line says so)
    return env


# -- the tests ----------------------------------------------------------------------------------------
def test_every_readme_command_has_a_plan():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) > 40, "the README's command blocks were not found: has their markup changed?"
    keys = [command.key for command in commands]
    missing = [f"README.md:{c.line}: {c.key}" for c in commands if c.key not in PLANS]
    assert not missing, (
        "README commands that are neither run nor skipped: add each to PLANS in tests/cli/test_readme_commands.py"
        " (a Run, shrunk if it must be, or a Skip with the reason):\n" + "\n".join(missing)
    )
    stale = [key for key in PLANS if key not in keys]
    assert not stale, "PLANS for commands no longer in README.md (remove or update them):\n" + "\n".join(stale)
    for command in commands:
        plan = PLANS[command.key]
        if isinstance(plan, Run) and plan.check != "none":
            assert command.output, f"README.md:{command.line}: {plan.check} output check, but no pasted output"
        if isinstance(plan, Run) and plan.given:
            assert plan.given in GIVENS, plan.given


def test_commands_not_run_here_still_parse(real_catalog):
    """The skipped commands (and, without MODELZOO_README_ALL=1, the heavy ones) through zoo's real parser:
    a renamed command or flag in the README fails here even when the command cannot run."""
    from modelzoo.cli.main import _command, build_parser

    parsed = 0
    for command in readme_commands(README.read_text(encoding="utf-8")):
        plan = PLANS[command.key]
        if isinstance(plan, Run) and not (plan.heavy and not HEAVY):
            continue
        if isinstance(plan, Skip):
            if plan.parse is None:
                continue
            text = plan.parse or command.text
        else:
            text = plan.command or command.text
        words = shlex.split(re.sub(r"<\w+>|\{\w+\}", "0" * 40, text.split(" | ")[0].split(" 2>&1")[0]))
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words.pop(0)
        if isinstance(plan, Run) and words[:1] != ["zoo"]:
            continue  # another program's command (jq, cat): it runs with the heavy plans
        assert words[:1] == ["zoo"], f"README.md:{command.line}: not a zoo command; give it Skip(..., parse=None)"
        argv = words[1:]
        try:
            build_parser(_command(argv)).parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"README.md:{command.line}: zoo's parser refuses {text!r} (exit {exc.code})")
        parsed += 1
    assert parsed >= 8


def test_the_light_readme_commands_run_as_documented(hub, warm_cli_env, tmp_path):
    """The light part, in every run of the suite: the main job's fine-tune (shrunk) and its evaluation,
    the one-line error, the registry's listings and errors, the plugin scaffolds."""
    env = readme_env(tmp_path, hub, warm_cli_env["MODELZOO_CACHE"])
    (tmp_path / "zoo").symlink_to(README.parent / "zoo", target_is_directory=True)
    assert run_plans(tmp_path, env, heavy=False) >= 10


@pytest.mark.skipif(not HEAVY, reason="every README command (about 10 minutes on 2 busy cores): MODELZOO_README_ALL=1")
def test_every_runnable_readme_command_runs_as_documented(hub, warm_cli_env, tmp_path):
    """All of them, in README order in one folder: one shrunk fine-tune of the main recipe that the later
    blocks evaluate, predict with, push and pull; the trackers; the other tasks' demos (shrunk); export."""
    env = readme_env(tmp_path, hub, warm_cli_env["MODELZOO_CACHE"])
    (tmp_path / "zoo").symlink_to(README.parent / "zoo", target_is_directory=True)
    assert run_plans(tmp_path, env, heavy=True) >= 40
