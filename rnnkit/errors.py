"""rnnkit's error types: one clear line for every mistake a user can make.

Every error rnnkit raises on purpose is a :class:`RnnkitError`, and each subclass also derives
from the builtin a caller would expect (``ValueError``, ``FileNotFoundError``, ``RuntimeError``,
``FloatingPointError``), so ``except ValueError`` keeps working. The message says *where* (file
and line, or config key) and *what was expected*::

    data/train.csv:7: column 'x2' is 'abc', expected a number
    config key 'model.hiden_size' does not exist; did you mean 'model.hidden_size'?

Data errors are built with :func:`data_error`-style keyword arguments so the location is always
formatted the same way (``path:line: message``).

The scripts wrap their ``@hydra.main`` entry point with :func:`cli`, which prints one line,
``error: <message>``, instead of a stack trace for these errors (and for the config errors Hydra
itself raises, translated by :func:`translate_exception`), and exits with status 2. Set
``HYDRA_FULL_ERROR=1`` to see the full stack trace.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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
    "closest",
    "unknown_key_error",
    "translate_exception",
    "cli",
    "EXIT_CODE",
]

EXIT_CODE = 2  # what the scripts return for a user error (1 stays "crashed")


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
    """Training produced a NaN or infinite loss (or gradient)."""


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


def _target_arguments(target: str) -> list[str] | None:
    """Keyword arguments accepted by a ``_target_`` (None when it takes ``**kwargs``)."""
    try:
        from hydra.utils import get_object

        obj = get_object(target)
        signature = inspect.signature(obj)
    except Exception:
        return None
    names = []
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
            names.append(p.name)
    return names


def _config_keys(node: Any) -> list[str]:
    try:
        return [str(k) for k in node.keys()]
    except Exception:
        return []


def translate_exception(exc: BaseException) -> RnnkitError | None:
    """Turn a known third-party error into a one-line :class:`RnnkitError`, else ``None``.

    Handles Hydra's composition errors (an override of a key that does not exist, an unknown
    config group option), instantiation errors whose cause is an unexpected keyword argument
    (``+model.hiden_size=64``) or an :class:`RnnkitError`, and OmegaConf key errors.
    """
    if isinstance(exc, RnnkitError):
        return exc
    try:
        from hydra.errors import (
            ConfigCompositionException,
            InstantiationException,
            MissingConfigException,
            OverrideParseException,
        )
        from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue
    except ImportError:  # pragma: no cover - hydra is a dependency
        return None

    cause = exc.__cause__ or exc.__context__
    accelerator = _accelerator_error(exc)
    if accelerator is not None:
        return accelerator
    if isinstance(exc, InstantiationException):
        # the real error raised inside the target's __init__
        if isinstance(cause, RnnkitError):
            return cause
        text = str(exc)
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", text)
        target = re.search(r"Error in call to target '([\w.]+)'", text)
        full_key = re.search(r"full_key: ([\w.\[\]]+)", text)
        if unexpected:
            parent = full_key.group(1) if full_key else ""
            key = f"{parent}.{unexpected.group(1)}" if parent else unexpected.group(1)
            valid = _target_arguments(target.group(1)) if target else None
            where = f"the arguments of {target.group(1)}" if target else ""
            return UnknownConfigKeyError(key, valid or [], where=where)
        if isinstance(cause, (ValueError, LookupError, OSError)) and raised_on_purpose(cause):
            location = f" ({full_key.group(1)})" if full_key else ""
            return ConfigError(f"invalid config{location}: {_first_line(cause)}")
        return None
    if isinstance(exc, MissingConfigException):
        text = str(exc)
        missing = re.search(r"Could not find '([^']+)'", text)
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        if missing:
            group, _, name = missing.group(1).rpartition("/")
            suggestion = closest(name, options)
            message = (
                f"config option '{group}={name}' does not exist"
                if group
                else (f"config '{name}' does not exist")
            )
            if suggestion:
                message += f"; did you mean '{group}={suggestion}'?"
            elif options:
                message += f"; available: {', '.join(options)}"
            return ConfigError(message)
        return ConfigError(text.strip().splitlines()[0])
    if isinstance(exc, ConfigCompositionException) and isinstance(
        cause, (ConfigKeyError, ConfigAttributeError)
    ):
        key = getattr(cause, "full_key", None) or ""
        valid = _config_keys(getattr(cause, "parent_node", None))
        if not key:
            found = re.search(r"Could not override '([^']+)'", str(exc))
            key = found.group(1) if found else "?"
        return UnknownConfigKeyError(key, valid)
    if isinstance(exc, ConfigCompositionException):
        return ConfigError(str(exc).strip().splitlines()[0])
    if isinstance(exc, OverrideParseException):
        return ConfigError(" ".join(str(exc).split()))
    if isinstance(exc, MissingMandatoryValue):
        key = getattr(exc, "full_key", None) or "?"
        return ConfigError(f"config key '{key}' has no value (???); set it on the command line")
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)):
        key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or "?"
        return UnknownConfigKeyError(str(key), _config_keys(getattr(exc, "parent_node", None)))
    if isinstance(exc, (ValueError, LookupError, OSError)) and raised_on_purpose(exc):
        # a check written in rnnkit with a good message, raised as a builtin type
        error = DataError if isinstance(exc, (OSError, ValueError)) else ConfigError
        return error(_first_line(exc))
    return None


def _first_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = str(text).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def raised_on_purpose(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by a ``raise`` statement in rnnkit's own code.

    Such errors are checks with a written message (``path:line: expected ...``), not bugs, so
    the scripts show them as one line even when they are plain ``ValueError``s.
    """
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    package = os.path.dirname(os.path.abspath(__file__))
    if not os.path.abspath(filename).startswith(package + os.sep):
        return False
    import linecache

    for lineno in range(tb.tb_lineno, max(tb.tb_lineno - 4, 0), -1):
        line = linecache.getline(filename, lineno).strip()
        if line.startswith("raise "):
            return True
        if line and lineno != tb.tb_lineno and not line.endswith(("(", ",")):
            break
    return False


def _accelerator_error(exc: BaseException) -> AcceleratorUnavailableError | None:
    """``trainer=gpu`` (or ``accelerator=gpu``/``cuda``) on a machine without a usable GPU."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain)
    patterns = (
        "No supported gpu backend found",
        "CUDAAccelerator` can not run on your system",
        "can not run on your system since the accelerator is not available",
        "Found no NVIDIA driver",
        "Torch not compiled with CUDA enabled",
    )
    if not any(p in text for p in patterns):
        return None
    try:
        import torch

        built = f"torch {torch.__version__}" + (
            " built without CUDA"
            if torch.version.cuda is None
            else f" with CUDA {torch.version.cuda}"
        )
        count = torch.cuda.device_count() if torch.version.cuda else 0
    except Exception:  # pragma: no cover
        built, count = "torch", 0
    return AcceleratorUnavailableError(
        f"trainer asks for a GPU (trainer=gpu / trainer.accelerator=gpu), but this machine has "
        f"{count} usable CUDA GPU(s) ({built}); use trainer=cpu, or trainer.accelerator=auto"
    )


def cli(main: Callable[[], Any]) -> Callable[[], Any]:
    """Decorate a script's ``@hydra.main`` function: user errors become one line, exit code 2.

    Use it *outside* ``@hydra.main``::

        @cli
        @hydra.main(version_base="1.3", config_path="../configs", config_name="train")
        def main(cfg): ...

    It sets ``HYDRA_FULL_ERROR=1`` for the call so that Hydra re-raises instead of printing its
    own multi-line report; errors that are not user errors (bugs) keep their full stack trace.
    If the user set ``HYDRA_FULL_ERROR=1`` themselves, every error keeps its stack trace.
    """

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user_wants_trace = os.environ.get("HYDRA_FULL_ERROR") == "1"
        os.environ["HYDRA_FULL_ERROR"] = "1"
        stderr = sys.stderr
        if not user_wants_trace:
            sys.stderr = _DropHydraJobError(stderr)  # type: ignore[assignment]
        try:
            return main(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - translated or re-raised
            error = translate_exception(exc)
            if error is None or user_wants_trace:
                raise
            message = " ".join(str(error).split())  # one line, whatever the source did
            print(f"error: {message}", file=stderr, flush=True)
            raise SystemExit(EXIT_CODE) from None
        finally:
            sys.stderr = stderr
            if not user_wants_trace:
                os.environ.pop("HYDRA_FULL_ERROR", None)

    return wrapper


class _DropHydraJobError:
    """stderr without Hydra's "Error executing job with overrides: [...]" line (we print one)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if text.startswith("Error executing job with overrides:"):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
