"""``CSVLogger``: ``<save_dir>/<name>/<version>/metrics.csv``, as Lightning's ``CSVLogger``.

The file is Lightning's: one row per ``log_metrics`` call, the columns every key logged so far
plus ``step``, sorted by name; a key first logged later rewrites the file with the wider
header. Rows are buffered and written by :meth:`CSVLogger.save` (the trainer calls it after
each epoch's metrics) and every ``flush_logs_every_n_steps`` steps. An existing
``metrics.csv`` is deleted when the logger starts writing (:attr:`CSVLogger.experiment`);
:func:`rnnkit.utils.metrics_history.keep_csv_history` puts the rows of a resumed run back.
``log_hyperparams`` writes ``hparams.yaml`` beside it.

``version``: ``None`` takes the next free ``version_<n>`` folder, an int ``n`` names
``version_<n>``, a string names the folder itself (``""``: ``<save_dir>/<name>/``).

Any object with Lightning's logger methods (``log_metrics(metrics, step)``,
``log_hyperparams(params)``, ``save()``, ``finalize(status)``) works with the trainer, so
Lightning's own loggers (TensorBoard, ...) keep working when they are installed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rnnkit.utils.atomic import atomic_write_bytes
from rnnkit.utils.logging import get_logger
from rnnkit.utils.plain import to_plain

__all__ = ["CSVLogger", "MetricsWriter"]

log = get_logger(__name__)


class MetricsWriter:
    """The rows of one ``metrics.csv`` (Lightning's ``_ExperimentWriter``).

    Attributes:
        metrics: rows not yet written.
        metrics_keys: the header, sorted (``keep_csv_history`` sets it after a resume).
    """

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.metrics: list[dict[str, Any]] = []
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        if os.path.isfile(self.metrics_file_path):
            log.debug(f"{self.metrics_file_path} exists and is replaced by this run's rows")
            os.remove(self.metrics_file_path)
        os.makedirs(log_dir, exist_ok=True)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        row = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in metrics.items()}
        row["step"] = step
        self.metrics.append(row)

    def log_hparams(self, params: Mapping[str, Any]) -> None:
        import yaml

        # JSON first: tuples become lists, anything else (a tensor) its text, as YAML needs
        self.hparams.update(json.loads(json.dumps(to_plain(dict(params)), default=str)))
        with open(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), "w") as handle:
            yaml.safe_dump(self.hparams, handle, sort_keys=False)

    def save(self) -> None:
        """Append the buffered rows; a new key rewrites the file with the wider header."""
        if not self.metrics:
            return
        new_keys = set().union(*self.metrics) - set(self.metrics_keys)
        self.metrics_keys = sorted([*self.metrics_keys, *new_keys])
        exists = os.path.isfile(self.metrics_file_path)
        if new_keys and exists:  # atomically: a kill meanwhile keeps the old rows
            with open(self.metrics_file_path, newline="") as handle:
                old = list(csv.DictReader(handle))
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(old)
            atomic_write_bytes(self.metrics_file_path, text.getvalue().encode())
        with open(self.metrics_file_path, "a" if exists else "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
            if not exists:
                writer.writeheader()
            writer.writerows(self.metrics)
        self.metrics = []


class CSVLogger:
    """Log metrics to ``<save_dir>/<name>/<version>/metrics.csv`` (see the module docstring).

    Args:
        save_dir: the root folder.
        name: a sub-folder (``None`` or ``""``: none).
        version: ``None`` (next ``version_<n>``), an int or a folder name.
        prefix: put before every metric name, joined with ``-``.
        flush_logs_every_n_steps: also write the file every this many steps.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        save_dir: str | os.PathLike,
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self.prefix = prefix
        self.flush_logs_every_n_steps = flush_logs_every_n_steps
        self._experiment: MetricsWriter | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def root_dir(self) -> str:
        return os.path.join(self._save_dir, self._name)

    @property
    def version(self) -> int | str:
        if self._version is None:
            self._version = self._next_version()
        return self._version

    @property
    def log_dir(self) -> str:
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        return os.path.join(self.root_dir, version)

    @property
    def experiment(self) -> MetricsWriter:
        """The writer; creating it (at the first metrics) deletes an old ``metrics.csv``."""
        if self._experiment is None:
            self._experiment = MetricsWriter(self.log_dir)
        return self._experiment

    def _next_version(self) -> int:
        root = Path(self.root_dir)
        found = [
            int(m.group(1))
            for p in (root.iterdir() if root.is_dir() else ())
            if p.is_dir() and (m := re.fullmatch(r"version_(\d+)", p.name))
        ]
        return max(found) + 1 if found else 0

    def log_hyperparams(self, params: Mapping[str, Any] | None = None) -> None:
        self.experiment.log_hparams(params or {})

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self.prefix:
            metrics = {f"{self.prefix}{self.LOGGER_JOIN_CHAR}{k}": v for k, v in metrics.items()}
        if step is None:
            step = len(self.experiment.metrics)
        self.experiment.log_metrics(metrics, step)
        if (step + 1) % self.flush_logs_every_n_steps == 0:
            self.save()

    def save(self) -> None:
        if self._experiment is not None:
            self._experiment.save()

    def finalize(self, status: str) -> None:
        self.save()
