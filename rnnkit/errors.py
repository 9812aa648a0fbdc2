"""rnnkit's error types: one clear line for every mistake a user can make.

Every error rnnkit raises on purpose is a :class:`RnnkitError`, and each subclass also derives
from the builtin a caller would expect (``ValueError``, ``FileNotFoundError``, ``RuntimeError``,
``FloatingPointError``), so ``except ValueError`` keeps working. The message says *where* (file
and line, or config key) and *what was expected*::

    data/train.csv:7: column 'x2' is 'abc', expected a number
    config key 'model.hiden_size' does not exist; did you mean 'model.hidden_size'?

Data errors are built with :func:`data_error`-style keyword arguments so the location is always
formatted the same way (``path:line: message``).

This module only defines the errors; :mod:`rnnkit.cli` turns them (and the config errors Hydra
raises) into one ``error: <message>`` line and an exit status for the scripts.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "RnnkitError",
    "ConfigError",
    "UnknownConfigKeyError",
    "DataError",
    "DataFileNotFoundError",
    "EmptyDataError",
    "DataFormatError",
    "NonFiniteValueError",
    "UnknownLabelError",
    "SequenceLengthError",
    "CheckpointError",
    "CheckpointMismatchError",
    "NonFiniteLossError",
    "AcceleratorUnavailableError",
    "UnsafeConfigError",
    "OutputError",
    "RunDirectoryError",
    "RunInterruptedError",
    "closest",
    "unknown_key_error",
    "output_error",
]


class RnnkitError(Exception):
    """Base of every error rnnkit raises on purpose: a mistake in the input, not a bug."""


# --- configuration ------------------------------------------------------------------------------
class ConfigError(RnnkitError, ValueError):
    """A config value is invalid (wrong range, wrong type, missing)."""


class UnknownConfigKeyError(ConfigError):
    """A config key does not exist; the message suggests the closest valid key.

    Attributes:
        key: the full dotted key that does not exist (``model.hiden_size``).
        suggestion: the closest valid full key, or ``None``.
    """

    def __init__(self, key: str, valid: Iterable[str] = (), *, where: str = "") -> None:
        self.key = key
        parent, _, leaf = key.rpartition(".")
        match = closest(leaf, valid)
        self.suggestion = f"{parent}.{match}" if (match and parent) else match
        message = f"config key '{key}' does not exist"
        if where:
            message += f" in {where}"
        if self.suggestion:
            message += f"; did you mean '{self.suggestion}'?"
        else:
            valid = sorted(valid)
            if valid:
                message += f"; valid keys: {', '.join(valid)}"
        super().__init__(message)


class UnsafeConfigError(ConfigError):
    """A config loaded from disk names a ``_target_`` outside the allow-list (could run code)."""


class AcceleratorUnavailableError(RnnkitError, RuntimeError):
    """The requested accelerator (``trainer=gpu``) is not available on this machine."""


# --- data ---------------------------------------------------------------------------------------
def _where(path: str | os.PathLike | None, line: int | None) -> str:
    if path is None:
        return ""
    return f"{path}:{line}: " if line is not None else f"{path}: "


class DataError(RnnkitError, ValueError):
    """A data file is malformed. The message starts with ``path:line:``.

    Args:
        message: what is wrong and what was expected.
        path: the file (optional).
        line: 1-based line number in the file (optional).

    Attributes:
        path, line: as given, for programmatic use.
    """

    def __init__(
        self, message: str, *, path: str | os.PathLike | None = None, line: int | None = None
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(_where(path, line) + message)


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file does not exist."""

    def __init__(self, path: str | os.PathLike, what: str = "data file") -> None:
        absolute = Path(path).expanduser().resolve()
        super().__init__(f"{what} not found (looked for {absolute})", path=path)


class EmptyDataError(DataError):
    """A data file (or split) holds no examples."""


class DataFormatError(DataError):
    """A row or line does not have the expected shape (columns, fields, separators)."""


class NonFiniteValueError(DataError):
    """A numeric cell is NaN or infinite."""


class UnknownLabelError(DataError):
    """A label appears in a later split that the training split never had."""


class SequenceLengthError(DataError):
    """A sequence is empty or longer than the configured maximum."""


# --- checkpoints and training -------------------------------------------------------------------
class CheckpointError(RnnkitError, ValueError):
    """A checkpoint file is missing, truncated or not a checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint was written by a different model configuration."""


class NonFiniteLossError(RnnkitError, FloatingPointError):
    """Training produced a NaN or infinite loss (or gradient), or a loss above the threshold."""


# --- run folders and outputs --------------------------------------------------------------------
class OutputError(RnnkitError, OSError):
    """An output file or folder cannot be written (permissions, read-only, disk full)."""


class RunDirectoryError(RnnkitError, RuntimeError):
    """The run folder is in use by another run, or already holds a run this one would clobber."""


class RunInterruptedError(RnnkitError):
    """The run was stopped by a signal (SIGTERM); a checkpoint was saved.

    Attributes:
        signal_number: the signal; the scripts exit with ``128 + signal_number`` (143 for
            SIGTERM), as a shell reports a process killed by it, so a scheduler never mistakes
            an interrupted run for a finished one.
    """

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.signal_number = signal_number


# --- helpers ------------------------------------------------------------------------------------
def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (difflib ratio >= 0.6), or ``None``."""
    candidates = [str(c) for c in candidates]
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if match:
        return match[0]
    lowered = {c.lower(): c for c in candidates}
    return lowered.get(word.lower())


def unknown_key_error(key: str, valid: Iterable[str], where: str = "") -> UnknownConfigKeyError:
    """Build the error for a key that does not exist (``raise unknown_key_error(...)``)."""
    return UnknownConfigKeyError(key, valid, where=where)


def output_error(path: str | os.PathLike, exc: OSError) -> OutputError:
    """The one-line error for an output that cannot be written: the path, the reason, a fix."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    fix = {
        errno.ENOSPC: "free some disk space or write elsewhere",
        errno.EDQUOT: "free some disk space or write elsewhere",
        errno.EACCES: "choose a folder you can write (hydra.run.dir=... / output=...)",
        errno.EPERM: "choose a folder you can write (hydra.run.dir=... / output=...)",
        errno.EROFS: "the file system is read-only; choose another folder (hydra.run.dir=...)",
    }.get(exc.errno, "choose another folder (hydra.run.dir=...)")
    where = exc.filename if exc.filename else path
    return OutputError(f"{where}: cannot write ({reason}); {fix}")
