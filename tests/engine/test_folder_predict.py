"""``zoo predict RUN DIR/`` on a real tiny model and real image files: recursive and sorted, batched
through DataLoader workers, unreadable files skipped and counted, rows streamed whole (an interrupted
run and a write that fails half-way leave only whole rows), one line for every bad ``--out`` or an
empty folder; and ``zoo eval --errors N``."""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import signal
from pathlib import Path

import pytest

from modelzoo.cli.main import main
from modelzoo.engine.folder_predict import RowWriter, find_inputs
from modelzoo.engine.recipe import validate
from modelzoo.engine.trainer import finetune
from modelzoo.errors import ZooError
from modelzoo.testing import write_color_images

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny classifier, barely trained (so it makes confident mistakes for --errors)."""
    root = tmp_path_factory.mktemp("predict")
    write_color_images(root / "data" / "train", 4, seed=0)
    write_color_images(root / "data" / "val", 4, seed=1)
    recipe = {
        "name": "folder",
        "task": "image-classification",
        "device": "cpu",
        "model": {"backbone": "timm:test_convnext", "pretrained": False},
        "data": {"path": str(root / "data"), "image_size": 32, "batch_size": 8, "num_workers": 0},
        "stages": [{"name": "head", "train": "head", "epochs": 1, "lr": 1e-6}],
    }
    return finetune(validate(recipe), out=root / "run", quiet=True).path


@pytest.fixture
def pictures(run, tmp_path) -> Path:
    """Twelve images in nested folders, one broken file, a hidden file and a text file."""
    folder = tmp_path / "pictures"
    for i, image in enumerate(sorted((run.parent / "data" / "val").rglob("*.png"))):
        target = folder / ("a/b" if i % 3 == 0 else "c" if i % 3 == 1 else ".") / f"{image.parent.name}{i}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, target)
    (folder / "c" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / ".hidden.png").write_bytes(b"x")
    (folder / "notes.txt").write_text("not an image")
    return folder


def zoo(*args: str) -> int:
    return main(list(args))


def test_a_folder_gives_one_row_per_readable_file_and_counts_the_rest(run, pictures, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    assert zoo("predict", str(run), str(pictures), "--out", str(out), "--top-k", "2", "--workers", "2") == 0
    err = capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    expected = find_inputs(pictures, (".png",))
    assert len(expected) == 13 and "c/broken.png" in expected and ".hidden.png" not in expected
    assert [r["file"] for r in rows] == [f for f in expected if f != "c/broken.png"]  # sorted, relative
    assert list(rows[0]) == ["file", "label_1", "score_1", "label_2", "score_2"]
    assert all(r["label_1"] in ("red", "green", "blue") and 0 <= float(r["score_1"]) <= 1 for r in rows)
    assert "predicted 13 files" in err and "images/s" in err and "12 rows" in err
    assert "1 unreadable file(s) skipped (first: c/broken.png: BadImage" in err
    # the same rows as predicting the files one by one
    one = json.loads(_stdout(capsys, "predict", str(run), str(pictures / rows[0]["file"]), "--json", "--top-k", "2"))
    assert one[0]["predictions"][0]["label"] == rows[0]["label_1"]
    assert one[0]["predictions"][0]["score"] == pytest.approx(float(rows[0]["score_1"]), abs=1e-5)


def _stdout(capsys, *args: str) -> str:
    assert zoo(*args) == 0
    return capsys.readouterr().out


def test_json_lines_and_stdout(run, pictures, tmp_path, capfd):
    out = tmp_path / "preds.jsonl"
    assert zoo("predict", str(run), str(pictures), "--out", str(out), "--workers", "0", "--batch-size", "5") == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and rows[0]["file"] == find_inputs(pictures, (".png",))[0] and len(rows[0]) == 1 + 2 * 3
    printed = _stdout(capfd, "predict", str(run), str(pictures), "--workers", "0")  # CSV on stdout (fd 1)
    assert printed.splitlines()[0] == "file,label_1,score_1,label_2,score_2,label_3,score_3"
    assert len(printed.splitlines()) == 13


def test_bad_outputs_and_empty_folders_are_one_line(run, pictures, tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "taken.csv").write_text("someone's file\n")
    cases = {
        (str(pictures), str(tmp_path / "no" / "such" / "p.csv")): "cannot write --out",
        (str(pictures), str(tmp_path / "p.txt")): "give a .csv or .jsonl file name",
        (str(pictures), str(tmp_path / "taken.csv")): "already exists",
        (str(tmp_path / "empty"), str(tmp_path / "e.csv")): "holds no input files for image-classification models",
    }
    for (folder, out), message in cases.items():
        assert zoo("predict", str(run), folder, "--out", out) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert (tmp_path / "taken.csv").read_text() == "someone's file\n"
    assert not (tmp_path / "e.csv").exists()  # no empty file left behind
    os.chmod(tmp_path, 0o500)
    try:
        if not os.access(tmp_path, os.W_OK):  # (root may write anywhere)
            assert zoo("predict", str(run), str(pictures), "--out", str(tmp_path / "ro.csv")) == 2
            assert "Permission denied" in capsys.readouterr().err
    finally:
        os.chmod(tmp_path, 0o700)


def test_an_interrupted_run_keeps_the_whole_rows_written_so_far(run, pictures, tmp_path, capsys, monkeypatch):
    from zoo_classification.task import ImageClassification

    real = ImageClassification.predict_batch
    calls = []

    def stop_at_the_third_batch(self, model, batch, **options):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the model runs
        return real(self, model, batch, **options)

    monkeypatch.setattr(ImageClassification, "predict_batch", stop_at_the_third_batch)
    out = tmp_path / "preds.csv"
    assert zoo("predict", str(run), str(pictures), "--out", str(out), "--batch-size", "3", "--workers", "0") == 130
    err = capsys.readouterr().err
    assert "interrupted after 6 of 13 files; the 6 rows written so far are whole" in err and str(out) in err
    text = out.read_text()
    assert text.endswith("\n") and len(list(csv.DictReader(text.splitlines()))) == 6


def test_a_write_that_fails_half_way_is_cut_back_to_the_last_whole_row(tmp_path):
    out = tmp_path / "rows.jsonl"
    writer = RowWriter.open(out)
    writer.write([{"file": "a.png", "label_1": "x" * 20}])
    whole = out.read_bytes()
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(whole) + 30, old[1]))  # a disk that fills mid-row
    try:
        with pytest.raises(ZooError, match=r"holds the 1 rows written before"):
            writer.write([{"file": f"{i}.png", "label_1": "y" * 20} for i in range(5)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)
        writer.close()
    assert out.read_bytes() == whole


def test_eval_errors_writes_the_most_confident_mistakes(run, tmp_path, capsys):
    assert zoo("eval", str(run), "--errors", "3", "--out", str(tmp_path / "e")) == 0
    assert "errors.png" in capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "e" / "errors.csv").open()))
    assert 1 <= len(rows) <= 3
    assert all(r["true"] != r["predicted"] for r in rows)
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert all(Path(r["example"]).is_file() for r in rows)
    assert (tmp_path / "e" / "errors.png").read_bytes().startswith(b"\x89PNG")
    assert zoo("eval", str(run), "--errors", "0") == 2
    assert "--errors must be a whole number >= 1" in capsys.readouterr().err


def test_ctrl_c_on_a_real_zoo_predict_leaves_whole_rows(run, pictures, tmp_path, warm_cli_env):
    """A real process, a real SIGINT while its DataLoader workers run: exit 130, one line, whole rows."""
    import subprocess
    import sys
    import time

    many = tmp_path / "many"
    for i in range(250):  # 3,000 images, hard links to the same few files: seconds of work, not one
        for image in sorted(pictures.rglob("*.png")):
            if image.name != "broken.png" and not image.name.startswith("."):
                target = many / f"d{i:03d}" / image.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(image, target)
    out = tmp_path / "preds.csv"
    cmd = [sys.executable, "-m", "modelzoo", "predict", str(run), str(many), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--batch-size", "1", "--workers", "1"],
        env={**warm_cli_env, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # the child gets the SIGINT disposition of a terminal's process: in the full -n auto suite it ran to
        # the end twice, as if SIGINT were ignored (inherited from its worker; a child that inherits an
        # ignored SIGINT gets no KeyboardInterrupt), while alone it passes
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while (not out.exists() or out.read_text().count("\n") < 3) and proc.poll() is None:
        assert time.monotonic() < deadline, "zoo predict wrote no rows"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted after") and str(out) in err
    text = out.read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert text.endswith("\n") and 2 <= len(rows) < 3000 and all(r["score_3"] for r in rows)
