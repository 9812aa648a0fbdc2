"""What a run records about itself, and how a finished run is told from a failed one.

Every run folder gets ``run_info.json``: the seed, the versions (python, torch, lightning,
rnnkit, ...), the command line, the host, start and end times and a ``status``
(``running`` -> ``completed`` | ``failed``; a run killed outright stays ``running``). The
composed config is beside it in ``.hydra/config.yaml`` (Hydra) and, resolved, in
``config.yaml``. ``summary.json`` (the final metrics) is written, atomically, only when the run
succeeds, so a folder with ``summary.json`` is a finished run and nothing else is. A failed run
also gets a ``FAILED`` file holding the one-line error.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from rnnkit.utils.checkpointing import atomic_write_bytes, to_plain

__all__ = [
    "versions",
    "RunRecord",
    "finished_run",
    "read_summary",
    "write_json_atomic",
    "SUMMARY",
    "RUN_INFO",
]

SUMMARY = "summary.json"
RUN_INFO = "run_info.json"
FAILED = "FAILED"


def versions() -> dict[str, str]:
    """Versions of python and of every library whose version changes results."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in ("torch", "lightning", "rnnkit", "numpy", "hydra-core", "omegaconf", "optuna"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import torch

        found["cuda"] = str(torch.version.cuda)
    except ImportError:  # pragma: no cover
        pass
    return found


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


def read_summary(output_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The metrics of a finished run in ``output_dir``, or ``None`` if it did not finish."""
    path = Path(output_dir) / SUMMARY
    if not path.is_file():
        return None
    return json.loads(path.read_text())


class RunRecord:
    """Status bookkeeping for one run folder; use as a context manager around the run.

    Example::

        with RunRecord(cfg.paths.output_dir, config=cfg, seed=cfg.seed) as record:
            metrics = ...train...
            record.finish(metrics)      # summary.json, status "completed"

    Leaving the block with an exception marks the run ``failed`` (``run_info.json`` and a
    ``FAILED`` file with the error) and re-raises; leaving it without :meth:`finish` is a bug
    and is also marked failed. A ``summary.json`` left by an earlier attempt in the same folder
    is renamed ``summary.previous.json`` on start, so it cannot pass for this attempt's result.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        config: Any = None,
        seed: int | None = None,
        enabled: bool = True,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.config = config
        self.seed = seed
        self.enabled = enabled  # False on every rank but zero: one process keeps the record
        self.info: dict[str, Any] = {}
        self.finished = False

    def start(self) -> RunRecord:
        if not self.enabled:
            return self
        self.output_dir.mkdir(parents=True, exist_ok=True)
        summary = self.output_dir / SUMMARY
        if summary.exists():
            os.replace(summary, self.output_dir / "summary.previous.json")
        (self.output_dir / FAILED).unlink(missing_ok=True)
        previous = self._read_info()
        self.info = {
            "status": "running",
            "seed": self.seed,
            "versions": versions(),
            "command": [sys.executable, *sys.argv],
            "cwd": os.getcwd(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "attempt": int(previous.get("attempt", 0)) + 1,
        }
        self._write_info()
        if self.config is not None:
            self._write_config()
        return self

    def finish(self, summary: dict[str, Any] | None = None) -> None:
        """Record success: ``summary.json`` (atomically, unless the caller wrote it), then status
        ``completed``."""
        self.finished = True
        if not self.enabled:
            return
        if summary is not None:
            write_json_atomic(self.output_dir / SUMMARY, summary)
        self.info.update(status="completed", ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self._write_info()

    def fail(self, error: BaseException | str) -> None:
        """Record failure: status ``failed`` with the error, and a ``FAILED`` file."""
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        message = " ".join(str(message).split())
        if not self.enabled:
            return
        summary = self.output_dir / SUMMARY
        if summary.exists():  # written before the failure: it must not pass for a result
            os.replace(summary, self.output_dir / "summary.failed.json")
        self.info.update(
            status="failed", error=message, ended=time.strftime("%Y-%m-%dT%H:%M:%S%z")
        )
        if isinstance(error, BaseException):
            self.info["traceback"] = "".join(traceback.format_exception(error)).splitlines()[-12:]
        self._write_info()
        atomic_write_bytes(self.output_dir / FAILED, (message + "\n").encode())

    def __enter__(self) -> RunRecord:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None:
            self.fail(exc)
        elif not self.finished:
            self.fail("the run ended without recording its metrics")
        return False

    def _read_info(self) -> dict[str, Any]:
        try:
            return json.loads((self.output_dir / RUN_INFO).read_text())
        except (OSError, ValueError):
            return {}

    def _write_info(self) -> None:
        write_json_atomic(self.output_dir / RUN_INFO, self.info)

    def _write_config(self) -> None:
        try:
            from omegaconf import DictConfig, OmegaConf

            config = self.config
            if not isinstance(config, DictConfig):
                config = OmegaConf.create(to_plain(config))
            text = OmegaConf.to_yaml(config, resolve=True)
        except Exception:  # an unresolvable value must not stop the run; Hydra keeps its copy
            return
        atomic_write_bytes(self.output_dir / "config.yaml", text.encode())


def finished_run(
    output_dir: str | os.PathLike,
    config: Any,
    sections: tuple[str, ...] = ("data", "model", "task", "seed"),
) -> dict[str, Any] | None:
    """The summary of a finished run in ``output_dir`` made with the same config, else ``None``.

    Used by ``resume=true``: a re-launched sweep skips the jobs that finished. A finished run
    whose stored ``config.yaml`` differs from ``config`` in ``sections`` is an error, not a hit.

    Raises:
        ConfigError: ``output_dir`` holds a finished run of a different config.
    """
    summary = read_summary(output_dir)
    stored_path = Path(output_dir) / "config.yaml"
    if summary is None or not stored_path.is_file():
        return None
    from omegaconf import OmegaConf

    from rnnkit.errors import ConfigError
    from rnnkit.utils.checkpointing import first_difference

    stored = OmegaConf.to_container(OmegaConf.load(stored_path), resolve=False)
    current = to_plain(config)
    for section in sections:
        found = first_difference(stored.get(section), current.get(section), section)
        if found:
            key, before, now = found
            raise ConfigError(
                f"{output_dir} holds a finished run with {key}={before!r}, but this run has "
                f"{key}={now!r}; resume=true only continues the same config (choose another "
                "hydra.run.dir / hydra.sweep.dir to start a new run)"
            )
    return summary
