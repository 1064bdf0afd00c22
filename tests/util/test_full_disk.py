"""Full disks, for real: a 1 MiB tmpfs mounted for the test. Every writer (torch.save, safetensors, text)
fails with one line naming the file system, and leaves nothing half-written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelzoo.errors import ZooError

pytestmark = pytest.mark.attack("training faults")


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _writers():
    import torch
    from safetensors.torch import save_file

    big = {"w": torch.zeros(1 << 20)}  # 4 MiB
    return {
        "torch.save": lambda p: torch.save(big, p),
        "safetensors": lambda p: save_file(big, str(p)),
        "text": lambda p: Path(p).write_text("x" * (4 << 20)),
    }


@pytest.mark.parametrize("writer", ["torch.save", "safetensors", "text"])
def test_each_writer_on_a_full_disk_is_one_line(tiny_disk, writer):
    from modelzoo.util.files import atomic_write

    (tiny_disk / "keep.txt").write_text("the user's file")
    with pytest.raises(ZooError) as err:
        atomic_write(tiny_disk / "model.bin", _writers()[writer])
    message = str(err.value)
    assert message.startswith(f"cannot write {tiny_disk / 'model.bin'} (disk full: the file system at {tiny_disk}")
    assert "\n" not in message and "nothing was half-written" in message
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["keep.txt"]  # no temp file, the user's file intact
