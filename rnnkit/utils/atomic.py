"""Files that are never seen half-written, with the permissions the user's umask asks for.

:func:`atomic_write_bytes` is the one way rnnkit writes a file a reader may look at while a run
is going (checkpoints, ``run_info.json``, ``summary.json``): the bytes go to a hidden temporary
file in the same folder, are ``fsync``ed and renamed over the target, so a kill at any moment
leaves the old file or the new one. :func:`write_json_atomic` does the same for JSON.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from rnnkit.errors import output_error
from rnnkit.utils.plain import to_plain

__all__ = ["atomic_write_bytes", "write_json_atomic", "TMP_SUFFIX"]

TMP_SUFFIX = ".tmp"  # never ".ckpt": Lightning's `last` lookup must not see a half-written file


def _umask() -> int:
    # os.umask can only be read by setting it; put it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a hidden temporary file in the same folder (same filesystem, so the rename
    is atomic), which is flushed and ``fsync``ed before ``os.replace``; the folder is synced
    after the rename so the new name survives a power cut as well as a kill.
    The file gets the permissions a plain ``open(path, "w")`` would give (``0o666`` less the
    umask), not ``mkstemp``'s owner-only ``0o600``.

    Raises:
        OutputError: the folder cannot be created or written, or the disk is full; the
            previous file, if any, is left as it was.
    """
    path = Path(path)
    try:
        _write_and_rename(path, data)
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(dir_fd)


def _write_and_rename(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"):
        stale.unlink(missing_ok=True)  # left by a process killed while writing this file
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    value = to_plain(value)
    if hasattr(value, "item") and hasattr(value, "numel") and value.numel() == 1:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (tensors and configs become plain values)."""
    text = json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, text.encode())
