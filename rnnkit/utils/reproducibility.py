"""What a run records about itself, and how a finished run is told from a failed one.

Every run folder gets ``run_info.json``: the seed, the versions (python, torch, lightning,
rnnkit, ...), the command line, the host, start and end times and a ``status``
(``running`` -> ``completed`` | ``failed`` | ``interrupted``; a run killed outright stays
``running``). The
composed config is beside it in ``.hydra/config.yaml`` (Hydra) and, resolved, in
``config.yaml``. ``summary.json`` (the final metrics) is written, atomically, only when the run
succeeds, so a folder with ``summary.json`` is a finished run and nothing else is. A failed run
also gets a ``FAILED`` file holding the one-line error.

A run owns its folder: ``run.lock`` is locked (``flock``) for as long as the run lasts, and a
second run started in the same folder is refused at once. A new run is also refused in a folder
that already holds a run (``summary.json`` or checkpoints), unless it continues that run
(``ckpt_path=last``, ``resume=true``): pointers (``summary.json``, ``last.ckpt``, the config)
then always describe one run. Hydra writes ``.hydra/*.yaml`` before any of this runs, so a
refused run puts back the ``.hydra`` files of the run that owns the folder (kept in
``.hydra/owner/`` when a run is accepted).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import platform
import shutil
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from rnnkit.errors import ConfigError, RunDirectoryError, RunInterruptedError
from rnnkit.utils.atomic import atomic_write_bytes, write_json_atomic
from rnnkit.utils.plain import first_difference, to_plain

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
LOCK = "run.lock"
HYDRA_DIR, OWNER_DIR = ".hydra", "owner"


def versions() -> dict[str, str]:
    """Versions of python and of every library whose version changes results (a copy of the
    process's: every checkpoint stores them, and reading package metadata costs ~3 ms)."""
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:
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
        continues: bool = False,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.config = config
        self.seed = seed
        self.enabled = enabled  # False on every rank but zero: one process keeps the record
        self.continues = continues  # ckpt_path / resume: this run continues the folder's run
        self.info: dict[str, Any] = {}
        self.finished = False
        self._lock: int | None = None

    def start(self) -> RunRecord:
        """Lock the folder, refuse it if it holds another run, record ``running``.

        Raises:
            RunDirectoryError: another run holds the lock, or (without ``continues``) the
                folder already holds a run's summary or checkpoints.
        """
        if not self.enabled:
            return self
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            self._refuse_earlier_run()
        except RunDirectoryError:
            self._restore_owner_hydra()
            self._release()
            raise
        self._keep_owner_hydra()
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
        """Record failure: status ``failed`` with the error, and a ``FAILED`` file; or status
        ``interrupted`` (no ``FAILED`` file) for a :class:`RunInterruptedError`."""
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        message = " ".join(str(message).split())
        if not self.enabled:
            return
        if isinstance(error, (RunInterruptedError, SystemExit)):  # SIGTERM outside fit, too
            self.info.update(
                status="interrupted", error=str(error), ended=time.strftime("%Y-%m-%dT%H:%M:%S%z")
            )
            self._write_info()
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
        try:
            if exc is not None:
                self.fail(exc)
            elif not self.finished:
                self.fail("the run ended without recording its metrics")
        finally:
            self._release()
        return False

    # --- owning the folder ----------------------------------------------------------------------
    def _acquire(self) -> None:
        fd = os.open(self.output_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = self._read_info()
            os.close(fd)
            self._restore_owner_hydra()
            raise RunDirectoryError(
                f"{self.output_dir} is in use by another run (pid {owner.get('pid', '?')}, "
                f"started {owner.get('started', '?')}); wait for it to end, or choose another "
                "folder (hydra.run.dir=...)"
            ) from None
        self._lock = fd

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    def _refuse_earlier_run(self) -> None:
        if self.continues:
            return
        found = []
        if (self.output_dir / SUMMARY).exists():
            found.append(SUMMARY)
        found += sorted(p.name for p in (self.output_dir / "checkpoints").glob("*.ckpt"))
        if found:
            raise RunDirectoryError(
                f"{self.output_dir} already holds a run ({', '.join(found[:3])}); continue it "
                "with ckpt_path=last (or resume=true), or start a new run in another folder "
                "(hydra.run.dir=...)"
            )

    def _keep_owner_hydra(self) -> None:
        hydra = self.output_dir / HYDRA_DIR
        if not hydra.is_dir():
            return
        owner = hydra / OWNER_DIR
        owner.mkdir(exist_ok=True)
        for path in hydra.glob("*.yaml"):
            shutil.copy2(path, owner / path.name)

    def _restore_owner_hydra(self) -> None:
        owner = self.output_dir / HYDRA_DIR / OWNER_DIR
        for path in owner.glob("*.yaml") if owner.is_dir() else ():
            atomic_write_bytes(self.output_dir / HYDRA_DIR / path.name, path.read_bytes())

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
