"""The command line's side of errors: one ``error:`` line and an exit status for each mistake.

The commands (:mod:`rnnkit.commands`: ``rnnkit train|eval|predict`` and ``scripts/*.py``)
wrap their ``@hydra.main`` function with :func:`handle_errors`. A user error (any
:class:`~rnnkit.errors.RnnkitError`, a config error Hydra or OmegaConf raises, an output that
cannot be written) then prints one line, ``error: <message>``, and the script exits with

- ``0`` success;
- ``2`` a user error (bad config, bad data, bad checkpoint, unwritable output);
- ``1`` a bug (the full stack trace is printed: please report it);
- ``128 + N`` interrupted by signal N (143 for SIGTERM, after a checkpoint was saved).

``HYDRA_FULL_ERROR=1`` keeps every stack trace. Errors are recognised by their type: Hydra's
``MissingConfigException`` (``options``), ``ConfigCompositionException`` caused by an OmegaConf
key error (``full_key``, ``parent_node``), ``OverrideParseException``, ``InstantiationException``
(its ``__cause__``), OmegaConf's ``MissingMandatoryValue``, an ``OSError`` naming a path (the
system refused it: permissions, read-only, disk full, a folder that cannot be made). The one
heuristic left is for checks
written in rnnkit as plain ``ValueError``/``KeyError``/``TypeError`` (the library's layers keep
builtin types for callers that are not scripts): such an error counts as a user error when the
innermost frame that raised it is rnnkit's own code.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnkit.errors import (
    ConfigError,
    DataError,
    RnnkitError,
    RunInterruptedError,
    UnknownConfigKeyError,
    closest,
    output_error,
)

__all__ = ["handle_errors", "translate", "EXIT_USER_ERROR", "exit_status"]

EXIT_USER_ERROR = 2  # a mistake in the input; 1 stays "crashed" (a bug), 128+N "killed by N"

_OUTPUT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}
_PACKAGE = str(Path(__file__).resolve().parent)


def _first_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = str(text).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def raised_by_rnnkit(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is in rnnkit's own code."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE + os.sep)


def _keys(node: Any) -> list[str]:
    try:
        return [str(k) for k in node.keys()]
    except AttributeError:
        return []


def _missing_config(exc: Any) -> ConfigError:
    group, _, name = str(exc.missing_cfg_file or "").rpartition("/")
    options = [str(o) for o in (exc.options or [])]
    if not name:
        return ConfigError(_first_line(exc))
    message = (
        f"config option '{group}={name}' does not exist"
        if group
        else f"config '{name}' does not exist"
    )
    suggestion = closest(name, options)
    if suggestion:
        message += f"; did you mean '{group}={suggestion}'?"
    elif options:
        message += f"; available: {', '.join(options)}"
    return ConfigError(message)


def translate(exc: BaseException) -> RnnkitError | None:
    """The one-line :class:`RnnkitError` for a user error, or ``None`` for a bug."""
    from hydra.errors import (
        ConfigCompositionException,
        InstantiationException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import (
        ConfigAttributeError,
        ConfigKeyError,
        InterpolationResolutionError,
        MissingMandatoryValue,
    )

    from rnnkit.engine.interrupt import is_terminated

    if isinstance(exc, RnnkitError):
        return exc
    if is_terminated(exc):  # outside train(), which saves a checkpoint first
        return RunInterruptedError("interrupted by SIGTERM", signal.SIGTERM)
    cause = exc.__cause__
    if isinstance(exc, InterpolationResolutionError) and exc.__context__ is not None:
        return translate(exc.__context__)  # a resolver's own error (a missing file) says it best
    if isinstance(exc, InstantiationException):
        inner = translate(cause) if cause is not None else None
        if inner is None or isinstance(inner, (ConfigError, RunInterruptedError)):
            return inner
        key = getattr(exc, "config_key", None)  # set by rnnkit.utils.targets.instantiate
        return ConfigError(f"invalid config{f' ({key})' if key else ''}: {inner}")
    if isinstance(exc, MissingConfigException):
        return _missing_config(exc)
    if isinstance(exc, ConfigCompositionException):
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
            key = cause.full_key or str(getattr(cause, "key", "?"))
            return UnknownConfigKeyError(key, _keys(cause.parent_node))
        return ConfigError(_first_line(exc))
    if isinstance(exc, OverrideParseException):
        return ConfigError(f"cannot parse the override {exc.override!r}: {exc.message}")
    if isinstance(exc, MissingMandatoryValue):
        return ConfigError(
            f"config key '{exc.full_key}' has no value (???); set it on the command line"
        )
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)):
        return UnknownConfigKeyError(str(exc.full_key or exc.key), _keys(exc.parent_node))
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
        return output_error(exc.filename or "output", exc)
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        # the system refused a path (Hydra creating hydra.run.dir under /proc, ...)
        return DataError(f"{exc.filename}: {exc.strerror} (check the path in the config)")
    if isinstance(exc, (ValueError, LookupError, TypeError, OSError)) and raised_by_rnnkit(exc):
        return (DataError if isinstance(exc, (ValueError, OSError)) else ConfigError)(
            _first_line(exc)
        )
    return None


def exit_status(error: RnnkitError) -> int:
    """``128 + signal`` for an interrupted run, else :data:`EXIT_USER_ERROR`."""
    if isinstance(error, RunInterruptedError):
        return 128 + int(error.signal_number)
    return EXIT_USER_ERROR


def handle_errors(main: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a script's ``@hydra.main`` function (outside it): user errors become one line.

    Example::

        @handle_errors
        @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train.yaml")
        def main(cfg): ...

    ``HYDRA_FULL_ERROR=1`` is set for the call so that Hydra re-raises instead of printing its
    own report, and Hydra's "Error executing job" line is dropped (this prints its own).
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
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - translated or re-raised
            error = translate(exc)  # None for a bug, and for a plain sys.exit(n)
            if error is None or user_wants_trace:
                raise
            message = " ".join(str(error).split())  # one line, whatever the source did
            print(f"error: {message}", file=stderr, flush=True)
            raise SystemExit(exit_status(error)) from None
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
