"""Checkpoints that survive a crash and load safely, whichever driver writes them.

- :func:`save_checkpoint_file` writes each checkpoint to a temporary file in the same folder,
  ``fsync``s it and renames it over the target, so a kill during the write leaves the previous
  checkpoint loadable. It stores the run's composed config and library versions under
  ``checkpoint["rnnkit"]`` and turns hyper-parameters into plain data (no pickled partials or
  OmegaConf objects), so every checkpoint loads with ``torch.load(weights_only=True)``. rnnkit's
  trainer calls it, and so does Lightning's through
  :class:`rnnkit.engine.lightning.AtomicCheckpointIO`, which on load also refuses a checkpoint
  written by a different model configuration (:func:`check_config_matches`).
- :func:`load_checkpoint` loads a file with ``weights_only=True`` and turns every way a file can be
  broken (missing, empty, truncated, not a checkpoint, bytes that fail the zip's CRC-32) into one
  :class:`CheckpointError`.
- :func:`resolve_ckpt_path` gives ``ckpt_path=last`` its meaning: ``<checkpoint dir>/last.ckpt``
  of the run's output folder when it exists (resume), else ``None`` (start fresh).
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rnnkit.errors import CheckpointError, CheckpointMismatchError
from rnnkit.utils.atomic import atomic_write_bytes
from rnnkit.utils.plain import MISSING, first_difference, to_plain
from rnnkit.utils.reproducibility import versions

__all__ = [
    "atomic_save",
    "save_checkpoint_file",
    "load_checkpoint",
    "resolve_ckpt_path",
    "check_config_matches",
    "check_state_dict_matches",
    "CHECKPOINT_KEY",
]

CHECKPOINT_KEY = "rnnkit"  # checkpoint["rnnkit"] = {"config": ..., "versions": ...}


# --- atomic writes ------------------------------------------------------------------------------
def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_checkpoint_file(checkpoint: dict[str, Any], path: Any, config: Any = None) -> None:
    """Write ``checkpoint`` to ``path`` the rnnkit way, whichever driver built it.

    Hyper-parameters become plain data, ``checkpoint["rnnkit"]`` gets the library versions and
    the run's composed ``config`` (when given), and the file is replaced atomically.
    """
    checkpoint = _sanitize_checkpoint(checkpoint)
    meta: dict[str, Any] = {"versions": versions()}
    if config is not None:
        meta["config"] = to_plain(config)
    checkpoint[CHECKPOINT_KEY] = meta
    atomic_save(checkpoint, path)


# --- plain data ---------------------------------------------------------------------------------
def _sanitize_checkpoint(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as plain data; drop the pickled class Lightning stores beside them."""
    checkpoint = dict(checkpoint)
    for key in list(checkpoint):
        if key.endswith("hyper_parameters") or key.endswith("hparams_name"):
            checkpoint[key] = to_plain(checkpoint[key])
        elif key.endswith("hparams_type"):
            # a class object: needs pickle. Hyper-parameters are restored as a plain dict.
            del checkpoint[key]
    return checkpoint


# --- loading ------------------------------------------------------------------------------------
def load_checkpoint(
    path: str | os.PathLike,
    map_location: Any = "cpu",
    *,
    weights_only: bool = True,
) -> dict[str, Any]:
    """Load a Lightning checkpoint with ``weights_only=True``, or raise one clear error.

    Raises:
        CheckpointError: the file is missing, empty, truncated, not a torch checkpoint, not a
            Lightning checkpoint (no ``state_dict``), or needs pickle to load.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, expected a checkpoint file (.ckpt)")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty (0 bytes); expected a .ckpt")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: not a checkpoint or truncated ({size} bytes, no complete torch.save "
            "archive); expected a .ckpt written by rnnkit/Lightning"
        )
    _check_crc(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f"a pickled {found.group(1)}" if found else "pickled objects"
        raise CheckpointError(
            f"{path}: cannot be loaded with weights_only=True: it holds {what}; expected plain "
            "tensors and data (a checkpoint written by rnnkit)"
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({first})") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint)
        raise CheckpointError(
            f"{path}: not a Lightning checkpoint: expected a dict with a 'state_dict' key, "
            f"found {found}"
        )
    return checkpoint


def _check_crc(path: Path) -> None:
    """Refuse a checkpoint whose bytes no longer match the CRC-32 the zip format stores for each
    member (``torch.save`` writes them; ``torch.load`` does not check them)."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({exc})") from None
    if damaged is not None:
        raise CheckpointError(
            f"{path}: corrupt checkpoint: the bytes of {damaged!r} do not match their stored "
            "CRC-32 (the file was damaged after it was written); use another checkpoint"
        )


def resolve_ckpt_path(ckpt_path: str | os.PathLike | None, checkpoint_dir: str | os.PathLike):
    """What ``ckpt_path`` means: ``None``, ``"last"`` or a file.

    ``"last"`` is ``<checkpoint_dir>/last.ckpt`` if that file exists, else ``None`` (nothing to
    resume yet: the run starts from scratch). A path must exist.

    Raises:
        CheckpointError: a path that does not exist.
    """
    if ckpt_path is None or str(ckpt_path) in ("", "null", "None"):
        return None
    if str(ckpt_path) == "last":
        last = Path(checkpoint_dir) / "last.ckpt"
        return str(last) if last.is_file() else None
    path = Path(ckpt_path)
    if path.is_dir() and (path / "last.ckpt").is_file():
        return str(path / "last.ckpt")
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt_path}: checkpoint file not found (expected a .ckpt file, or "
            "'last' to resume this run's last.ckpt)"
        )
    return str(path)


# --- compatibility ------------------------------------------------------------------------------
def _shown(value: Any) -> str:
    return "(absent)" if value is MISSING else repr(value)


def check_config_matches(
    checkpoint: Mapping[str, Any],
    config: Any,
    sections: tuple[str, ...] = ("model",),
    path: str | os.PathLike | None = None,
) -> None:
    """Refuse a checkpoint whose stored config differs from ``config`` in ``sections``.

    Args:
        checkpoint: a loaded checkpoint; without ``checkpoint["rnnkit"]["config"]`` (not written
            by rnnkit) nothing is compared here; :func:`check_state_dict_matches` still applies.
        config: the current run's config (DictConfig or dict).
        sections: top-level config keys that must be equal (the model's architecture).

    Raises:
        CheckpointMismatchError: naming the first key that differs, with both values.
    """
    stored = (checkpoint.get(CHECKPOINT_KEY) or {}).get("config")
    if not isinstance(stored, Mapping):
        return
    current = to_plain(config)
    where = f"{path}: " if path else ""
    for section in sections:
        if section not in stored or section not in current:
            continue
        found = first_difference(stored[section], current[section], section)
        if found:
            key, saved, now = found
            raise CheckpointMismatchError(
                f"{where}checkpoint was written by a different model configuration: {key} is "
                f"{_shown(saved)} in the checkpoint but {_shown(now)} in this run"
            )


def check_state_dict_matches(
    state_dict: Mapping[str, torch.Tensor],
    module: torch.nn.Module,
    path: str | os.PathLike | None = None,
) -> None:
    """Refuse weights that do not fit ``module``, naming the first parameter that differs."""
    where = f"{path}: " if path else ""
    expected = module.state_dict()
    for key, value in expected.items():
        if key not in state_dict:
            raise CheckpointMismatchError(
                f"{where}checkpoint was written by a different model configuration: it has no "
                f"'{key}' (expected shape {tuple(value.shape)})"
            )
        got = state_dict[key]
        if hasattr(got, "shape") and tuple(got.shape) != tuple(value.shape):
            raise CheckpointMismatchError(
                f"{where}checkpoint was written by a different model configuration: '{key}' "
                f"has shape {tuple(got.shape)} in the checkpoint, {tuple(value.shape)} here"
            )
    for key in state_dict:
        if key not in expected:
            raise CheckpointMismatchError(
                f"{where}checkpoint was written by a different model configuration: it has "
                f"'{key}', which this model does not have"
            )
