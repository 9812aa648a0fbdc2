"""Checkpoints are written atomically: a kill during the write leaves the previous one loadable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from rnnkit.utils.checkpointing import atomic_save, load_checkpoint, resolve_ckpt_path

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import torch
    from rnnkit.utils import checkpointing

    path, marker = Path(sys.argv[1]), Path(sys.argv[2])
    checkpointing.atomic_save({"state_dict": {"w": torch.zeros(1000)}, "epoch": 0}, path)

    real_fsync = os.fsync
    def slow_fsync(fd):  # the new bytes are in the temporary file, not yet renamed
        marker.write_text("writing")
        time.sleep(120)
        real_fsync(fd)
    os.fsync = slow_fsync
    checkpointing.atomic_save({"state_dict": {"w": torch.ones(1000)}, "epoch": 1}, path)
    """
)


def test_sigkill_during_write_keeps_the_previous_checkpoint(tmp_path):
    path, marker = tmp_path / "last.ckpt", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(marker)])
    deadline = time.monotonic() + 300  # a hang guard; a loaded machine needs minutes
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    checkpoint = load_checkpoint(path)  # weights_only=True
    assert checkpoint["epoch"] == 0 and checkpoint["state_dict"]["w"].sum() == 0
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "last.ckpt" and p != marker]
    assert len(leftovers) == 1 and leftovers[0].startswith(".last.ckpt.")
    # the half-written file is invisible to `ckpt_path=last` and to Lightning's own lookup
    assert resolve_ckpt_path("last", tmp_path) == str(path)
    assert not ModelCheckpoint(dirpath=tmp_path)._find_last_checkpoints(trainer=None) - {str(path)}
    atomic_save({"state_dict": {}, "epoch": 2}, path)  # the next write sweeps the leftover
    assert sorted(p.name for p in tmp_path.iterdir() if p != marker) == ["last.ckpt"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_save({"state_dict": {"w": torch.zeros(3)}}, path)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"state_dict": {"w": torch.ones(3)}}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert load_checkpoint(path)["state_dict"]["w"].sum() == 0
