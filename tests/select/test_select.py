"""zoo select end to end on tiny models and tiny images: ranking, outputs, the written recipe that
zoo finetune runs on the cached features, cache hits, the budget, one-line errors, and the ranking
arithmetic (rank combination, P(rank 1), Pareto front, weighted tau against scipy).

The candidates are timm's tiny ``test_efficientnet`` / ``test_convnext`` architectures with "pretrained"
weights from local files, registered by a throw-away plugin exactly as a third-party plugin would
register offline weights (with a published-metric prior), so nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path

import pytest
import torch

from modelzoo.cli.main import main
from modelzoo.cli.select import parse_duration
from modelzoo.engine.recipe import load_recipe, validate
from modelzoo.errors import ZooError
from modelzoo.select import ranking
from modelzoo.select.candidates import base_recipe, check_task_supports_select
from modelzoo.select.pipeline import select

pytestmark = pytest.mark.usefixtures("one_thread")

PLUGIN = """
    from modelzoo import PretrainedTag, Spec, hookimpl

    def tag(path, sha, top1):
        return PretrainedTag(tag="toy", sources=["file:" + path], sha256=sha, license="mit",
                             input_size=[3, 32, 32], mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5],
                             metrics={{"imagenet_top1": top1}})

    @hookimpl
    def modelzoo_specs():
        return [
            Spec(name=arch, kind="backbone", tasks=["image-classification"], outputs=["pooled"],
                 builder="zoo_timm.build:build", pretrained=[tag(path, sha, top1)])
            for arch, path, sha, top1 in {weights!r}
        ]
"""
COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory) -> dict:
    """Weights of two tiny timm architectures (fixed seeds) and a 3-class image folder."""
    import timm
    from PIL import Image
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("select-toy")
    weights = []
    for seed, (arch, top1) in enumerate((("test_efficientnet", 70.0), ("test_convnext", 60.0))):
        torch.manual_seed(seed)
        path = root / f"{arch}.safetensors"
        save_file({k: v.contiguous() for k, v in timm.create_model(arch).state_dict().items()}, str(path))
        weights.append((arch, str(path), hashlib.sha256(path.read_bytes()).hexdigest(), top1))
    gen = torch.Generator().manual_seed(0)
    for split, per_class in (("train", 12), ("val", 4)):
        for name, rgb in COLORS.items():
            (root / "data" / split / name).mkdir(parents=True)
            for i in range(per_class):
                noise = torch.randint(-60, 60, (24, 24, 3), generator=gen)
                arr = (torch.tensor(rgb) + noise).clamp(0, 255).to(torch.uint8).numpy()
                Image.fromarray(arr).save(root / "data" / split / name / f"{i}.png")
    return {"weights": weights, "data": root / "data"}


@pytest.fixture
def toy(fake_site, toy_files, tmp_path, monkeypatch) -> dict:
    fake_site.plugin("selt", PLUGIN.format(weights=toy_files["weights"]))
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,classification,selt")
    recipe = tmp_path / "toy.toml"
    recipe.write_text(
        f"""name = "toy"
task = "image-classification"
seed = 0
device = "cpu"

[model]
backbone = "test_efficientnet"
head = "linear"

[data]
path = "{toy_files["data"]}"
image_size = 32
batch_size = 8

[optimizer]
lr = 0.01

[[stages]]
name = "head"
train = "head"
epochs = 2

[[stages]]
name = "tune"
train = "last:1"
epochs = 1
lr = 0.005
""",
        encoding="utf-8",
    )
    return {"recipe": recipe, "out": tmp_path / "sel"}


def count_calls(monkeypatch, owner, name: str) -> list:
    calls: list = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def run_select(toy, *extra: str) -> int:
    args = ["--recipe", str(toy["recipe"]), "--candidates", "test_*", "--samples", "18", "--draws", "3"]
    return main(["select", *args, "--out", str(toy["out"]), "--quiet", *extra])


def test_select_ranks_writes_outputs_and_its_recipe_finetunes_on_the_cached_features(toy, capsys, monkeypatch):
    assert run_select(toy) == 0
    printed = capsys.readouterr().out
    record = json.loads((toy["out"] / "selection.json").read_text())
    names = [c["name"] for c in record["candidates"]]
    assert sorted(names) == ["test_convnext.toy", "test_efficientnet.toy"]
    assert record["scores"] == ["probe", "knn", "logme"] and record["ranked_by"] == record["scores"]
    assert record["examples"] == {"train": 36, "per_draw": 18, "draws": 3}
    for c in record["candidates"]:
        assert set(c["scores"]) >= {"probe", "knn", "logme"} and c["gmacs"] > 0 and c["params"] > 0
    # test_convnext's last group is a module of its own, so it also has entry_* scores; they do not vote
    # because test_efficientnet has none (only the scores every candidate has are ranked), and a note says so
    by_arch = {c["name"].split(".")[0]: c for c in record["candidates"]}
    assert "entry_probe" in by_arch["test_convnext"]["scores"]
    assert "entry_probe" not in by_arch["test_efficientnet"]["scores"]
    assert any("test_efficientnet.toy has no entry features" in n for n in record["notes"])
    for c in record["candidates"]:
        assert c["prior"] in (70.0, 60.0) and c["prior_rank"] == (1 if c["prior"] == 70.0 else 2)
    assert sum(c["p_rank1"] for c in record["candidates"]) == pytest.approx(1.0)
    assert [c["rank"] for c in record["candidates"]] == [1, 2] and record["winner"] == names[0]
    assert any(c["pareto"] for c in record["candidates"])
    ref = record["reference"]
    assert ref["name"] == f"{names[0].split('.')[0]} (random init)" and ref["pretrained"] is False
    assert set(ref["pretraining_gain"]) == {"probe", "knn", "logme"}
    assert (toy["out"] / "selection.png").stat().st_size > 1000
    assert "does pretraining help?" in printed and f"pick: {names[0]}" in printed

    # the recipe it wrote is valid, names the winner, and its head stage reads the selection's features
    recipe = load_recipe(record["recipe_file"])
    assert recipe.model.backbone.endswith(names[0].split(".")[0]) and recipe.model.pretrained == "toy"
    computed = count_calls(monkeypatch, __import__("modelzoo.engine.trainer").engine.trainer, "compute_features")
    assert main(["finetune", record["recipe_file"], "--out", str(toy["out"] / "run"), "--quiet"]) == 0
    assert computed == [], "the fine-tune of the pick recomputed the features select had cached"
    assert (toy["out"] / "run" / "model.safetensors").is_file()


def test_a_second_selection_computes_no_features_and_no_scores(toy, monkeypatch):
    from zoo_classification.classify import ClassificationTask

    assert run_select(toy) == 0
    first = json.loads((toy["out"] / "selection.json").read_text())
    features = count_calls(monkeypatch, __import__("modelzoo.engine.trainer").engine.trainer, "compute_features")
    scores = count_calls(monkeypatch, ClassificationTask, "transfer_scores")
    assert run_select(toy) == 0
    second = json.loads((toy["out"] / "selection.json").read_text())
    assert features == [] and scores == []
    assert all(c["features_from_cache"] for c in second["candidates"]) and second["reference"]["features_from_cache"]
    strip = ("features_from_cache", "feature_seconds", "estimate_seconds")
    assert [{k: v for k, v in c.items() if k not in strip} for c in second["candidates"]] == [
        {k: v for k, v in c.items() if k not in strip} for c in first["candidates"]
    ]


def test_entry_features_are_scored_cached_and_recomputed_without_a_full_pass(toy, monkeypatch):
    """A recipe that trains the last two groups: every candidate also gets the scores of the features
    entering them (``entry_*``); a second run reads them back; with only their file gone, a pass that
    stops at the entry recomputes them (no full feature pass) and the scores come out the same."""
    from zoo_classification.classify import ClassificationTask

    from modelzoo.engine.featurecache import shared_path

    assert run_select(toy, "--set", "stages.1.train=last:2") == 0
    first = json.loads((toy["out"] / "selection.json").read_text())
    assert first["scores"] == ["probe", "knn", "logme", "entry_probe", "entry_knn", "entry_logme"]
    assert first["ranked_by"] == ["entry_probe", "entry_knn", "entry_logme"]  # every candidate has them
    assert [c["mean_rank"] for c in first["candidates"]] == sorted(
        sum(ranking.ranks([o["scores"][n] for o in first["candidates"]])[i] for n in first["ranked_by"]) / 3
        for i in range(2)
    )
    for c in first["candidates"]:
        assert 0 < c["scores"]["entry_probe"] <= 1 and c["scores"]["entry_logme"] != c["scores"]["logme"]
    from modelzoo.select import features as select_features

    def entry_files() -> dict[Path, int]:  # by inode: a rewrite (atomic) is a new file; a hit only touches it
        found = {}
        for c in first["candidates"]:
            (entry,) = shared_path(c["feature_key"]).parent.glob(f"features-{c['feature_key']}-entry-*.pt")
            found[entry] = entry.stat().st_ino
        return found

    before = entry_files()
    features = count_calls(monkeypatch, __import__("modelzoo.engine.trainer").engine.trainer, "compute_features")
    scores = count_calls(monkeypatch, ClassificationTask, "transfer_scores")
    passes = count_calls(monkeypatch, select_features, "_entry_pass")
    assert run_select(toy, "--set", "stages.1.train=last:2") == 0
    assert features == [] and scores == [] and passes == [], "everything is read back"
    assert entry_files() == before, "the entry files were rewritten instead of read"
    saved = {}
    for entry in before:
        saved[entry] = torch.load(entry, weights_only=True)["train"]
        entry.unlink()
    assert run_select(toy, "--set", "stages.1.train=last:2") == 0
    third = json.loads((toy["out"] / "selection.json").read_text())
    # the two candidates (whose files went) each ran a pass that stops at the entry; none a full feature
    # pass; the reference still had its file
    assert len(passes) == 2 and features == []
    for entry, feats in saved.items():  # the stopping pass gave the very features the full pass captured
        assert torch.equal(torch.load(entry, weights_only=True)["train"], feats)
    assert [c["scores"] for c in third["candidates"]] == [c["scores"] for c in first["candidates"]]


def test_the_budget_skips_and_names_what_does_not_fit(toy, capsys):
    with pytest.raises(ZooError, match=r"budget 0\.01s too small: the cheapest candidate \(test_.*\) needs ~"):
        select(base_recipe(toy["recipe"]), ["test_*"], budget_seconds=0.01, samples=18, draws=2)
    # cached candidates cost nothing: with one cached, a tiny budget ranks it and names the others
    select(base_recipe(toy["recipe"]), ["test_efficientnet"], samples=18, draws=2, reference=False)
    sel = select(base_recipe(toy["recipe"]), ["test_*"], budget_seconds=0.01, samples=18, draws=2)
    assert [s.candidate.label for s in sel.ranked] == ["test_efficientnet.toy"]
    skipped = dict(sel.skipped)
    assert "budget" in skipped["test_convnext.toy"] and "raise --budget" in skipped["test_convnext.toy"]
    assert "budget" in skipped["test_efficientnet (random init)"]


def test_one_line_errors_name_the_fix(toy, monkeypatch):
    base = base_recipe(toy["recipe"])
    with pytest.raises(ZooError, match="did you mean: test_efficientnet"):
        select(base, ["test_eficientnet"])
    with pytest.raises(ZooError, match=r"no backbone matches 'resnet\*' \(see: zoo list"):
        select(base, ["resnet*"])
    with pytest.raises(ZooError, match="positive duration"):
        parse_duration("soon")
    assert main(["select", "--recipe", str(toy["recipe"]), "--candidates", "nope"]) == 2


def test_a_task_without_the_hook_does_not_support_select(monkeypatch):
    monkeypatch.setenv("MODELZOO_PLUGINS", "core,detection")
    with pytest.raises(ZooError, match="task 'object-detection' does not support zoo select"):
        check_task_supports_select("object-detection")


def test_a_recipe_from_data_alone_uses_the_default_schedule(toy, toy_files):
    base = base_recipe(task="classification", overrides=[f"data.path={toy_files['data']}"], backbone="test_convnext")
    assert base.task == "image-classification" and base.model.head == "classification:linear"
    assert [s.train for s in base.stages] == ["head", "last:2"] and base.data.train_limit == 3000
    with pytest.raises(ZooError, match="either --recipe or --data"):
        base_recipe(toy["recipe"], data="x")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1.5h", 5400), ("2 min", 120)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


# -- ranking arithmetic -------------------------------------------------------------------------
def test_ranks_combine_and_order():
    assert ranking.ranks([0.9, 0.5, 0.9, float("nan")]) == [1.5, 3.0, 1.5, 4.0]
    scores = [{"a": 0.9, "b": 2.0}, {"a": 0.8, "b": 3.0}, {"a": 0.7, "b": 1.0}]
    assert ranking.combine(scores) == [1.5, 1.5, 3.0]
    assert ranking.order(scores) == [0, 1, 2]  # the tie in mean rank goes to the first score
    assert ranking.rank_one_share([scores, list(reversed(scores))], 3) == [0.5, 0.0, 0.5]


def test_pareto_front_and_regret():
    assert ranking.pareto_front([1, 2, 3, 2], [0.5, 0.7, 0.6, 0.7]) == [True, True, False, True]
    assert ranking.regret(1, [0.8, 0.7, 0.85]) == pytest.approx(0.15)


def test_weighted_tau_is_scipys():
    from scipy.stats import weightedtau

    gen = torch.Generator().manual_seed(0)
    for n in (2, 3, 5, 8):
        x, y = torch.rand(n, generator=gen).tolist(), torch.rand(n, generator=gen).tolist()
        assert ranking.weighted_tau(x, y) == pytest.approx(weightedtau(x, y).statistic)
    ties = ([1, 2, 2, 3, 4], [1, 3, 2, 2, 5])
    assert ranking.weighted_tau(*ties) == pytest.approx(weightedtau(*ties).statistic)
    assert ranking.weighted_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


def test_validation_reports_tau_regret_and_noise(toy, monkeypatch):
    """--validate on stubbed fine-tunes: the statistics, not the training, are under test here."""
    from modelzoo.select import validate as select_validate

    sel = select(base_recipe(toy["recipe"]), ["test_*"], samples=18, draws=2)
    truth = {"test_efficientnet": (0.9, 0.8), "test_convnext": (0.5, 0.6)}

    def fake(recipe, out, metric, ledger):
        arch = recipe.model.backbone.split(":")[-1]
        good, bad = truth[arch]
        value = (good if recipe.seed == 0 else bad) - (0.3 if recipe.model.pretrained is False else 0.0)
        return value, 10.0

    monkeypatch.setattr(select_validate, "_finetune", fake)
    result = select_validate.validate_selection(sel, 2, toy["out"])
    assert [c["name"] for c in result["candidates"]][-1].endswith("(random init)")
    assert result["finetune_seconds"] == 60.0
    assert result["prior"]["pick"] == "test_efficientnet.toy" and result["prior"]["regret"] == 0.0
    assert result["prior"]["tau"] == pytest.approx(1.0)
    assert result["seed_noise"]["mean_spread"] == pytest.approx(0.1)
    assert result["combined"]["tau"] == pytest.approx(1.0 if sel.winner.candidate.arch == "test_efficientnet" else -1.0)
    # each score judged alone, against the same truth
    assert list(result["per_score"]) == sel.score_names
    for name, q in result["per_score"].items():
        better = [item.scores[name] for item in sel.ranked]
        expected = 1.0 if better[0] > better[1] else -1.0 if better[0] < better[1] else None
        if sel.ranked[0].candidate.arch != "test_efficientnet" and expected is not None:
            expected = -expected
        if expected is not None:
            assert q["tau"] == pytest.approx(expected), name
    validate(load_recipe(toy["recipe"]).to_dict())  # untouched
    assert Path(toy["recipe"]).is_file()


def test_validation_with_more_seeds_averages_noise_over_every_pair(toy, monkeypatch):
    """--seeds 3: seed 2 reverses the order, so one pair of seeds agrees and two disagree: mean tau -1/3."""
    from modelzoo.select import validate as select_validate

    sel = select(base_recipe(toy["recipe"]), ["test_*"], samples=18, draws=2, reference=False)
    truth = {"test_efficientnet": (0.9, 0.8, 0.5), "test_convnext": (0.5, 0.6, 0.6)}

    def fake(recipe, out, metric, ledger):
        assert recipe.data_seed == sel.base.seed_for_data  # only the training seed varies
        assert out.name.endswith(f"-d{sel.base.seed_for_data}-s{recipe.seed}")
        return truth[recipe.model.backbone.split(":")[-1]][recipe.seed - sel.base.seed], 1.0

    monkeypatch.setattr(select_validate, "_finetune", fake)
    result = select_validate.validate_selection(sel, 2, toy["out"], seeds=3)
    assert result["seeds"] == [sel.base.seed + s for s in range(3)]
    assert result["seed_noise"]["tau_between_seeds"] == pytest.approx(-1 / 3)
    assert result["prior"]["pick"] == "test_efficientnet.toy" and result["prior"]["regret_se"] == 0.0
    # picking the worse one: the regret paired by seed is 0.4, 0.2, -0.1, so its standard error is
    paired = [0.9 - 0.5, 0.8 - 0.6, 0.5 - 0.6]
    quality = select_validate._ranking_quality([0.0, 1.0], [0.7333, 0.5667], [[0.9, 0.5], [0.8, 0.6], [0.5, 0.6]])
    assert quality["regret_se"] == pytest.approx(statistics.stdev(paired) / 3**0.5)
    assert result["seed_noise"]["mean_std"] == pytest.approx(
        (statistics.stdev(truth["test_efficientnet"]) + statistics.stdev(truth["test_convnext"])) / 2
    )
    with pytest.raises(ZooError, match="--seeds N needs N >= 2"):
        select_validate.validate_selection(sel, 2, toy["out"], seeds=1)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--validate", "2", "--seeds", "1"], "--seeds N needs N >= 2"),
        (["--seeds", "3"], "--seeds N sets the fine-tunes per candidate of --validate K; add --validate K"),
    ],
)
def test_a_bad_seeds_option_stops_before_the_selection(capsys, monkeypatch, extra, message):
    from modelzoo.select import pipeline as select_mod

    monkeypatch.setattr(select_mod, "select", lambda *a, **k: pytest.fail("the selection ran"))
    assert main(["select", "--data", "fashion-mnist", "--candidates", "test_convnext", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_task_scores_the_views_it_declares_with_the_model_and_empty_means_not_applicable(toy, monkeypatch, capsys):
    """``Task.select_views`` picks the views; ``transfer_scores`` gets ``model=`` and ``view=`` when its
    signature takes them; ``{}`` for a view means "not applicable" (no error); ``{}`` for every view is
    one line."""
    from zoo_classification.classify import ClassificationTask

    original = ClassificationTask.transfer_scores
    calls: list = []

    def scores(self, feats, targets, seed=0, *, model=None, view="final"):
        calls.append((view, model.labels if model is not None else None))
        return {} if view == "entry" else original(self, feats, targets, seed)

    monkeypatch.setattr(ClassificationTask, "transfer_scores", scores)
    assert run_select(toy, "--no-reference") == 0
    record = json.loads((toy["out"] / "selection.json").read_text())
    assert all(not any(k.startswith("entry_") for k in c["scores"]) for c in record["candidates"])
    assert {view for view, _ in calls} == {"final", "entry"} and {tuple(labels) for _, labels in calls} == {
        ("blue", "green", "red")
    }
    calls.clear()
    monkeypatch.setattr(ClassificationTask, "select_views", ("final",), raising=False)
    toy["out"] = toy["out"].with_name("sel2")
    assert run_select(toy, "--no-reference") == 0
    assert "entry" not in {view for view, _ in calls}  # (the final scores come from the score cache)
    monkeypatch.setattr(ClassificationTask, "transfer_scores", lambda self, feats, targets, seed=0: {})
    monkeypatch.setattr("modelzoo.select.scores._scorer_id", lambda task: "an edited plugin")
    toy["out"] = toy["out"].with_name("sel3")
    assert run_select(toy, "--no-reference") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: task 'image-classification' scored no view of any candidate")
