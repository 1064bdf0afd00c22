"""What does scale cost? Peak RSS and seconds of ``zoo list`` over 10,000 specs, and of scanning an
ImageFolder of 100,000 tiny files, each in a fresh process (``os.wait4``'s ``ru_maxrss``).

* ``zoo list``, cold: one fake plugin (a throw-away ``site-packages`` with a dist-info and entry point)
  whose hook returns 10,000 backbone specs, each with a pretrained tag; an empty catalog cache, so
  the plugin is imported and its specs validated live, then cached;
* ``zoo list``, warm: the same, from the cache the cold run wrote;
* ImageFolder: ``zoo_classification``'s loader scanning ``root/<class>/<image>`` (10 classes x 10,000
  8x8 PNGs, generated in a temp dir): every file listed, checked to be one class's only, and decoded
  once (``image_folder_split``), as ``zoo finetune`` does before training.

A process that only imports modelzoo, and one that imports the classification plugin's data module
(torch: ~500-650 MiB on its own, by build), show the floor each side pays. ``--check`` exits 1 when a
peak exceeds its bound (``BOUNDS``): absolute for ``zoo list`` (which must never import torch), over
the torch floor for the scan (what 100,000 files cost, whatever torch build is installed).

    python bench/resources.py [--specs 10000] [--images 100000] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

#: peak RSS bounds in MiB: (bound, the figure it is counted from, or None for absolute). ``zoo list`` is
#: bounded whole (it must never import torch); the scan by what its files add (its process's peak while
#: scanning over its RSS before, read from /proc: torch's own import peak, 500-650 MiB by build, would
#: hide it). Measured and chosen in README (Resources): about 2x headroom for other allocators, Python
#: and library versions; more means something holds what it should stream.
BOUNDS = {"list-cold": (150, None), "list-warm": (120, None), "imagefolder-files": (150, None)}

PLUGIN = """
    from modelzoo.sdk import PretrainedTag, Spec, hookimpl

    N = {n}


    @hookimpl
    def modelzoo_specs():
        return [
            Spec(
                name=f"zt_scale_{{i:05d}}",
                kind="backbone",
                tasks=["image-classification"],
                outputs=["pooled"],
                num_features=64 + i % 512,
                builder="zt_scale_build:build",
                description=f"synthetic backbone {{i}} of {{N}}",
                pretrained=[
                    PretrainedTag(
                        "in1k",
                        [f"hf-hub:zt/scale-{{i:05d}}"],
                        sha256=f"{{i:064x}}",
                        license="apache-2.0",
                        input_size=[3, 224, 224],
                        mean=[0.485, 0.456, 0.406],
                        std=[0.229, 0.224, 0.225],
                    )
                ],
            )
            for i in range(N)
        ]
"""

SCAN = """
import json, sys
from pathlib import Path
from zoo_classification.data import image_folder_split

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

after_import = status("VmRSS")
try:  # reset the peak (VmHWM) to now, so the scan's own peak is seen apart from torch's import
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    reset = True
except OSError:
    reset = False
classes, split, info = image_folder_split(Path(sys.argv[1]), "error")
assert len(classes) == int(sys.argv[2]) and len(split) == int(sys.argv[3]), (len(classes), len(split))
print(json.dumps({"after_import": after_import, "scan_peak": status("VmHWM") if reset else None}))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None, out: list[str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one child process; its stdout goes to ``out`` when given."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=stdout if out is not None else subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}: {stderr.read().decode()[-2000:]}")
        if out is not None:
            stdout.seek(0)
            out.append(stdout.read().decode())
    return seconds, usage.ru_maxrss / 1024


def fake_plugin(site: Path, n: int) -> None:
    """A distribution ``zt-scale`` with entry point ``scale = zt_scale``, as pip would install it."""
    (site / "zt_scale.py").write_text(textwrap.dedent(PLUGIN.format(n=n)), encoding="utf-8")
    info = site / "zt_scale-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zt-scale\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[modelzoo]\nscale = zt_scale\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")


def image_folder(root: Path, classes: int, per_class: int) -> None:
    """``root/<class>/<i>.png``: 8x8 PNGs (one encoded image per class, written per_class times)."""
    import io

    from PIL import Image

    for c in range(classes):
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), ((37 * c) % 256, (91 * c) % 256, (151 * c) % 256)).save(buffer, "PNG")
        data = buffer.getvalue()
        folder = root / f"class{c:02d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            (folder / f"{i:05d}.png").write_bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=10_000, help="specs the fake plugin returns")
    parser.add_argument("--images", type=int, default=100_000, help="files in the ImageFolder (10 classes)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a peak exceeds its bound")
    args = parser.parse_args()

    base = {k: v for k, v in os.environ.items() if k not in ("MODELZOO_PLUGINS", "MODELZOO_NO_CACHE", "PYTHONPATH")}
    results: dict[str, tuple[float | None, float]] = {}
    with tempfile.TemporaryDirectory(prefix="zoo-resources-") as tmp:
        root = Path(tmp)
        site = root / "site-packages"
        site.mkdir()
        fake_plugin(site, args.specs)
        env = {**base, "PYTHONPATH": str(site), "MODELZOO_PLUGINS": "scale", "MODELZOO_CACHE": str(root / "cache")}
        results["floor"] = measure([sys.executable, "-c", "import modelzoo.cli, modelzoo.catalog.load"], env)
        results["list-cold"] = measure([sys.executable, "-m", "modelzoo", "list"], env)
        results["list-warm"] = measure([sys.executable, "-m", "modelzoo", "list"], env)
        listed = subprocess.run(
            [sys.executable, "-m", "modelzoo", "list", "--names"], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        if len(listed) != args.specs:
            raise SystemExit(f"zoo list showed {len(listed)} entries, not {args.specs}")

        classes, per_class = 10, args.images // 10
        started = time.perf_counter()
        image_folder(root / "images", classes, per_class)
        made = time.perf_counter() - started
        results["floor-data"] = measure([sys.executable, "-c", "import zoo_classification.data"], base)
        scan = [sys.executable, "-c", SCAN, str(root / "images"), str(classes), str(classes * per_class)]
        printed: list[str] = []
        results["imagefolder"] = measure(scan, base, printed)
        inside = json.loads(printed[0])
        if inside["scan_peak"] is not None:  # what the files cost: the scan's own peak over the RSS it started at
            results["imagefolder-files"] = (None, inside["scan_peak"] - inside["after_import"])

    labels = {
        "floor": "import modelzoo (the CLI's floor)",
        "list-cold": f"zoo list, {args.specs:,} specs, cold (live)",
        "list-warm": f"zoo list, {args.specs:,} specs, warm (cache)",
        "floor-data": "import zoo_classification.data (torch)",
        "imagefolder": f"ImageFolder scan, {classes * per_class:,} files",
        "imagefolder-files": "  of which the files (scan peak - RSS before)",
    }
    print(f"fresh processes; load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} CPUs")
    print(f"(generating the {classes * per_class:,} files took {made:.1f} s)")
    print(f"{'what':<46} {'seconds':>8} {'peak RSS':>10}   bound")
    failed = []
    for key, label in labels.items():
        if key not in results:
            continue
        seconds, peak = results[key]
        bound, floor = BOUNDS.get(key, (None, None))
        counted = peak - results[floor][1] if floor else peak
        shown = "" if bound is None else f"{'+' if floor else ''}{counted:.0f} <= {bound} MiB"
        timed = "-" if seconds is None else f"{seconds:.2f}"
        print(f"{label:<46} {timed:>8} {peak:6.0f} MiB   {shown}")
        if bound is not None and counted > bound:
            failed.append(f"{label}: {'+' if floor else ''}{counted:.0f} MiB > {bound} MiB")
    for line in failed:
        print(f"over its bound: {line}")
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
