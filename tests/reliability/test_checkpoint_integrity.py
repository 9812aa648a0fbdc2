# ruff: noqa: E501 (one case per line)
"""Items 5 and 10: a corrupted checkpoint is refused naming the file; outputs respect the umask;
a full disk or a read-only folder is one line and leaves the earlier file."""

from __future__ import annotations

import errno
import os
import struct
import zipfile

import pytest
import torch

from rnnkit.errors import CheckpointError, OutputError
from rnnkit.utils.atomic import atomic_write_bytes
from rnnkit.utils.checkpointing import atomic_save, load_checkpoint


def _flip_in_member(path, member_suffix: str) -> None:
    """Flip bits inside a tensor's bytes, as a bad disk or copy would (sizes unchanged)."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_length + extra_length  # the member's first byte
    data[start + 2] ^= 0x7F  # the float's exponent byte: a weight becomes huge
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("member", ["data/0", "data.pkl"])
def test_flipped_bits_are_refused_naming_the_file(member, tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_save({"state_dict": {"w": torch.ones(64)}, "epoch": 3}, path)
    _flip_in_member(path, member)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: corrupt checkpoint") or "truncated or corrupt" in message
    assert "\n" not in message


def test_intact_checkpoint_loads(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_save({"state_dict": {"w": torch.ones(4)}}, path)
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(4))


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_respect_the_umask(umask, tmp_path):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "summary.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(
    "code, fix",
    [(errno.ENOSPC, "free some disk space"), (errno.EROFS, "read-only"), (errno.EACCES, "choose a folder you can write")],
)  # fmt: skip
def test_write_failures_are_one_line_and_keep_the_old_file(code, fix, tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_write_bytes(path, b"old")

    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OutputError) as info:
        atomic_write_bytes(path, b"new")
    assert str(info.value).startswith(f"{path}: cannot write ({os.strerror(code)}); ")
    assert fix in str(info.value)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left
