"""How much do `zoo push` + `zoo pull` cost over raw huggingface_hub upload_folder + snapshot_download?

Both sides move the same ~50 MB run folder (timm resnet18, random init) through the same local
Hub-compatible server (modelzoo.testing.hubserver) in the same run. zoo adds a generated model card, a
sha256 manifest, the remote-hash comparison that makes re-pushes idempotent, and the sha256
verification of every pulled file; the target is a total ratio <= 1.1.

The server runs in this process; the timings run in one child interpreter (huggingface_hub reads
HF_ENDPOINT/HF_HOME at import), alternating raw and zoo rounds on fresh repos, so nothing is cached.

    python bench/hub_speed.py [--rounds 5] [--arch timm:resnet18]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CHILD = r"""
import json, sys, time
from pathlib import Path
from huggingface_hub import HfApi, snapshot_download
from modelzoo.hub import pull, push

run, rounds = Path(sys.argv[1]), int(sys.argv[2])
api = HfApi()
times = {"raw_push": [], "raw_pull": [], "zoo_push": [], "zoo_pull": []}
for i in range(rounds):
    repo = f"bench/raw-{i}"
    t = time.perf_counter()
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(repo_id=repo, folder_path=run, ignore_patterns=["checkpoint/*"])
    times["raw_push"].append(time.perf_counter() - t)
    t = time.perf_counter()
    snapshot_download(repo)
    times["raw_pull"].append(time.perf_counter() - t)

    repo = f"bench/zoo-{i}"
    t = time.perf_counter()
    result = push(run, repo)
    times["zoo_push"].append(time.perf_counter() - t)
    t = time.perf_counter()
    pulled = pull(repo, locked=False)
    times["zoo_pull"].append(time.perf_counter() - t)
    assert pulled.sha == result.sha
print(json.dumps(times))
"""


def make_run(folder: Path, arch: str) -> int:
    """A finished-run folder with a random-init model; returns the weights' size in bytes."""
    import torch
    from safetensors.torch import save_file

    import modelzoo

    torch.manual_seed(0)
    model = modelzoo.assemble(arch, "core:linear", num_classes=10, pretrained=False)
    folder.mkdir(parents=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt", "library": "modelzoo"})
    (folder / "config.json").write_text(json.dumps({**model.config, "dataset": {"name": "bench"}}, indent=2) + "\n")
    (folder / "recipe.toml").write_text(f'name = "bench"\n\n[model]\nbackbone = "{arch}"\nhead = "linear"\n')
    rows = [{"stage": 0, "epoch": e, "train_loss": 1 / (e + 1), "val_accuracy": 0.5 + e / 20} for e in range(5)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "summary.json").write_text(json.dumps({"metrics": {"accuracy": 0.7, "loss": 0.9}}))
    (folder / "training_curves.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(40_000))
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "last.pt").write_bytes(b"never pushed")
    return (folder / "model.safetensors").stat().st_size


def main() -> None:
    from modelzoo.testing.hubserver import TEST_TOKEN, HubServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--arch", default="timm:resnet18")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-speed-") as tmp, HubServer(Path(tmp) / "server") as server:
        size = make_run(Path(tmp) / "run", args.arch)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(
            HF_ENDPOINT=server.url,
            HF_HOME=str(Path(tmp) / "home"),
            HF_TOKEN=TEST_TOKEN,
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
        )
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(Path(tmp) / "run"), str(args.rounds)],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        times = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"model: {args.arch}, model.safetensors {size / 1e6:.1f} MB; {args.rounds} alternating rounds, local server")
    for label, pick in (("best", min), ("median", statistics.median)):
        t = {k: pick(v) for k, v in times.items()}
        raw, zoo = t["raw_push"] + t["raw_pull"], t["zoo_push"] + t["zoo_pull"]
        print(
            f"{label:>6}: raw upload_folder {t['raw_push']:.3f} s + snapshot_download {t['raw_pull']:.3f} s = {raw:.3f} s"
        )
        print(
            f"{'':>6}  zoo push          {t['zoo_push']:.3f} s + pull              {t['zoo_pull']:.3f} s = {zoo:.3f} s"
        )
        print(
            f"{'':>6}  ratio zoo/raw: push {t['zoo_push'] / t['raw_push']:.2f}, pull {t['zoo_pull'] / t['raw_pull']:.2f},"
            f" total {zoo / raw:.2f} (target <= 1.1)"
        )


if __name__ == "__main__":
    main()
