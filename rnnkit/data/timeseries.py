"""Time series for forecasting: a CSV loader, a train-only scaler, sliding windows, a DataModule.

A file holds one or more series (a ``series_id`` column splits them; one global model is fitted
over all of them), one or more target columns, optional exogenous input columns, an optional
date column (kept as row labels for forecasts and plots, not used as a feature) and an optional
``split`` column (``train``/``val``/``test`` per row). Without a ``split`` column each series is
split chronologically: its first rows train, the next validate, the last test.

Every window is ``window + horizon`` consecutive rows of one series, batch-first and aligned: row
``t`` of ``x`` holds the exogenous inputs at time ``t`` and row ``t`` of ``y`` the targets at
time ``t``. The first ``window`` rows are the context (known past, the real initial conditions),
the last ``horizon`` rows are what the model forecasts. A window belongs to the split of its
forecast rows; training windows lie wholly in the training rows, so nothing of validation or test
leaks into training. Windows never cross from one series into another.

Scaling (per column, zero mean and unit variance) is fitted on the training rows only, stored as
plain numbers in :meth:`TimeSeriesDataModule.state_dict` and undone by the task for metrics.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from rnnkit.data.readers import read_text
from rnnkit.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    EmptyDataError,
    NonFiniteValueError,
    SequenceLengthError,
)
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class Series:
    """One series in time order.

    Attributes:
        name: the ``series_id`` value (or the file name when the file holds one series).
        targets: ``(N, O)`` float64 target values.
        inputs: ``(N, I)`` float64 exogenous inputs (``I`` may be 0).
        labels: ``N`` row labels: the date column's text, or the 0-based row index in the series.
        split: ``N`` split names from the file's ``split`` column, or ``None``.
    """

    name: str
    targets: np.ndarray
    inputs: np.ndarray
    labels: list[str]
    split: list[str] | None = None


@dataclass
class StandardScaler:
    """Per-column ``(v - mean) / std``, fitted on training rows only; plain numbers inside."""

    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @classmethod
    def fit(cls, values: np.ndarray) -> StandardScaler:
        """Fit on ``values (N, C)``; a constant column gets ``std = 1`` so it maps to zero."""
        mean = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
        std = values.std(axis=0) if len(values) else np.ones(values.shape[1])
        std = np.where(std > 1e-12, std, 1.0)
        return cls([float(m) for m in mean], [float(s) for s in std])

    def transform(self, values: np.ndarray) -> np.ndarray:
        if not self.mean:
            return values
        return (values - np.asarray(self.mean)) / np.asarray(self.std)

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        if not self.mean:
            return values
        return values * np.asarray(self.std) + np.asarray(self.mean)

    def state_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> StandardScaler:
        return cls([float(m) for m in state["mean"]], [float(s) for s in state["std"]])


def read_series_csv(
    path: str | Path,
    target_columns: Sequence[str],
    input_columns: Sequence[str] = (),
    series_column: str | None = None,
    split_column: str | None = None,
    date_column: str | None = None,
) -> list[Series]:
    """Read a CSV time-series file into one :class:`Series` per ``series_column`` value.

    Rows are taken to be in time order within each series (the order of the file). Every
    problem raises a :class:`rnnkit.errors.DataError` (a ``ValueError``; a missing file also a
    ``FileNotFoundError``) naming the file, the line and the column, and what was expected.

    Args:
        path: the CSV file; the first line names the columns.
        target_columns: the columns to forecast (at least one).
        input_columns: exogenous input columns, known at every step.
        series_column: column whose value names the series a row belongs to.
        split_column: column of ``train``/``val``/``test`` per row.
        date_column: column kept as row labels (e.g. dates); not a feature.

    Returns:
        The series, in the order of their first row in the file.
    """
    path = Path(path)
    if not target_columns:
        raise ConfigError(f"{path}: target_columns is empty; name at least one column to forecast")
    if not path.is_file():
        raise DataFileNotFoundError(path, "CSV time-series file")
    with io.StringIO(read_text(path), newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise EmptyDataError(
                "the file is empty, expected a header line naming the columns", path=path
            )
        header = [h.strip() for h in header]
        where = {name: i for i, name in enumerate(header)}
        wanted = [*target_columns, *input_columns]
        wanted += [c for c in (series_column, split_column, date_column) if c is not None]
        for name in wanted:
            if name not in where:
                raise DataFormatError(
                    f"no column {name!r} in the header (columns are {header})", path=path, line=1
                )
        numeric = [*target_columns, *input_columns]
        groups: dict[str, dict[str, list]] = {}
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    f"expected {len(header)} cells as in the header, got {len(row)}",
                    path=path,
                    line=line,
                )
            values = [_parse_number(row[where[c]], path, line, c) for c in numeric]
            name = row[where[series_column]].strip() if series_column else path.stem
            group = groups.setdefault(name, {"values": [], "labels": [], "split": []})
            group["values"].append(values)
            group["labels"].append(
                row[where[date_column]].strip() if date_column else str(len(group["labels"]))
            )
            if split_column is not None:
                split = row[where[split_column]].strip().lower()
                if split not in SPLITS:
                    raise DataFormatError(
                        f"column {split_column!r} is {row[where[split_column]]!r}, expected one "
                        f"of {list(SPLITS)}",
                        path=path,
                        line=line,
                    )
                group["split"].append(split)
    if not groups:
        raise EmptyDataError("no data rows after the header line", path=path)
    n_targets = len(target_columns)
    series = []
    for name, group in groups.items():
        values = np.asarray(group["values"], dtype=np.float64)  # (N, O + I)
        series.append(
            Series(
                name=name,
                targets=values[:, :n_targets],
                inputs=values[:, n_targets:],
                labels=group["labels"],
                split=group["split"] if split_column is not None else None,
            )
        )
    return series


def _parse_number(cell: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataFormatError(
            f"column {column!r} is {cell!r}, expected a number", path=path, line=line
        ) from None
    if not math.isfinite(value):
        raise NonFiniteValueError(
            f"column {column!r} is {cell.strip()!r}, expected a finite number (NaN/inf are not "
            "allowed: fill or drop missing values before loading)",
            path=path,
            line=line,
        )
    return value


def chronological_split(n: int, val_fraction: float, test_fraction: float) -> list[str]:
    """Split names for ``n`` rows in time order: train first, then val, then test."""
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    return ["train"] * n_train + ["val"] * n_val + ["test"] * n_test


def window_starts(split: Sequence[str], stage: str, window: int, horizon: int, stride: int = 1):
    """Start rows of the windows of one series that belong to ``stage``.

    A window covers rows ``[s, s + window + horizon)``; it belongs to ``stage`` when its
    forecast rows ``[s + window, s + window + horizon)`` all do. Training windows must lie wholly
    in training rows (no validation or test value reaches training, not even as context).
    """
    n = len(split)
    starts = []
    for s in range(0, n - window - horizon + 1):
        rows = (
            split[s : s + window + horizon]
            if stage == "train"
            else split[s + window : s + window + horizon]
        )
        if all(r == stage for r in rows):
            starts.append(s)
    return starts[::stride] if stage == "train" else starts


def mase_scale(series: Sequence[Series], splits: Sequence[Sequence[str]]) -> list[float]:
    """MASE denominators: per target column, the mean ``|y_t - y_{t-1}|`` over training rows.

    That is the in-sample error of the persistence (naive) forecast (Hyndman & Koehler 2006);
    pairs are taken within a series, never across two.
    """
    diffs = []
    for s, split in zip(series, splits, strict=True):
        train = np.asarray([r == "train" for r in split])
        pair = train[1:] & train[:-1]
        diffs.append(np.abs(np.diff(s.targets, axis=0))[pair])
    d = np.concatenate(diffs, axis=0)
    if len(d) == 0:
        raise EmptyDataError("MASE needs at least two consecutive training rows in some series")
    scale = d.mean(axis=0)
    return [float(v) if v > 1e-12 else 1.0 for v in scale]


class WindowDataset(Dataset):
    """Windows ``(x (W+H, I), y (W+H, O))`` cut from scaled series at the given starts."""

    def __init__(
        self,
        inputs: list[Tensor],
        targets: list[Tensor],
        index: list[tuple[int, int]],
        length: int,
    ) -> None:
        self.inputs, self.targets, self.index, self.length = inputs, targets, index, length

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        k, s = self.index[i]
        return self.inputs[k][s : s + self.length], self.targets[k][s : s + self.length], i


def collate_windows(
    items: list[tuple[Tensor, Tensor, int]],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stack windows into ``(x (B, T, I), lengths (B,), y (B, T, O), window_ids (B,))``."""
    x = torch.stack([it[0] for it in items])  # (B, T, I)
    y = torch.stack([it[1] for it in items])  # (B, T, O)
    lengths = torch.full((len(items),), x.shape[1], dtype=torch.long)
    ids = torch.tensor([it[2] for it in items], dtype=torch.long)
    return x, lengths, y, ids


class TimeSeriesDataModule(L.LightningDataModule):
    """Forecasting windows from a CSV file (or, in subclasses, a generator).

    Batches are ``(x (B, T, I), lengths (B,), y (B, T, O), window_ids (B,))`` with
    ``T = window + horizon``, scaled by statistics of the training rows. The test stage has a
    second loader of whole test spans, one series per batch, each preceded by ``window`` real
    rows of context: the free-run evaluation (closed loop over the whole test span).

    Args:
        path: the CSV file.
        target_columns: columns to forecast.
        input_columns: exogenous input columns.
        series_column: column naming the series of each row (one global model over all).
        split_column: column of ``train``/``val``/``test``; else split chronologically.
        date_column: column kept as row labels for forecasts and plots.
        window: W, context rows each forecast sees.
        horizon: H, rows forecast at once.
        val_fraction, test_fraction: of each series, for the chronological split.
        stride: step between training windows (evaluation uses every window).
        batch_size: windows per batch.
        scale: standardise targets and inputs with training statistics.
        num_workers: DataLoader workers.

    ``info`` (after ``setup``): ``input_size`` (I), ``output_size`` (O), ``window``,
    ``horizon``, ``target_names``, ``target_mean``, ``target_std``, ``mase_scale``.
    """

    def __init__(
        self,
        path: str | None = None,
        target_columns: Sequence[str] = ("y",),
        input_columns: Sequence[str] = (),
        series_column: str | None = None,
        split_column: str | None = None,
        date_column: str | None = None,
        window: int = 24,
        horizon: int = 1,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        stride: int = 1,
        batch_size: int = 64,
        scale: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name, value in {
            "window": window,
            "horizon": horizon,
            "stride": stride,
            "batch_size": batch_size,
        }.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{type(self).__name__}: {name} must be a positive integer, got {value!r}"
                )
        for name, value in {"val_fraction": val_fraction, "test_fraction": test_fraction}.items():
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{type(self).__name__}: {name} must be in [0, 1), got {value}")
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"{type(self).__name__}: val_fraction + test_fraction must leave "
                f"training rows, got {val_fraction} + {test_fraction}"
            )
        self.target_scaler: StandardScaler | None = None
        self.input_scaler: StandardScaler | None = None
        self.info: dict[str, Any] = {}
        self.series: list[Series] = []
        self.splits: list[list[str]] = []

    @property
    def source(self) -> str:
        """What the data came from, for error messages."""
        return str(self.hparams.path)

    def load_series(self) -> list[Series]:
        """The raw series; subclasses that generate data override this."""
        hp = self.hparams
        if hp.path is None:
            raise ConfigError(f"{type(self).__name__}: path is not set (expected a CSV file)")
        return read_series_csv(
            hp.path,
            list(hp.target_columns),
            list(hp.input_columns),
            hp.series_column,
            hp.split_column,
            hp.date_column,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.series:
            return
        hp = self.hparams
        self.series = self.load_series()
        need = hp.window + hp.horizon
        for s in self.series:
            n = len(s.targets)
            if hp.horizon >= n:
                raise SequenceLengthError(
                    f"{self.source}: horizon={hp.horizon} is longer than series "
                    f"{s.name!r} ({n} rows)"
                )
            if need > n:
                raise SequenceLengthError(
                    f"{self.source}: series {s.name!r} has {n} rows, fewer than "
                    f"window + horizon = {hp.window} + {hp.horizon}"
                )
        self.splits = [
            s.split
            if s.split is not None
            else chronological_split(len(s.targets), hp.val_fraction, hp.test_fraction)
            for s in self.series
        ]
        if self.target_scaler is None:  # else restored by load_state_dict
            self._fit_scalers()
        self._tensors()
        self._index = {
            stage: [
                (k, start)
                for k, split in enumerate(self.splits)
                for start in window_starts(split, stage, hp.window, hp.horizon, hp.stride)
            ]
            for stage in SPLITS
        }
        if not self._index["train"]:
            raise EmptyDataError(
                f"{self.source}: no training window of window + horizon = "
                f"{need} rows lies wholly in the training rows of any series"
            )
        for stage in ("val", "test"):  # a split with rows but no window: say so now,
            if not self._index[stage] and any(stage in split for split in self.splits):
                raise EmptyDataError(  # not after training
                    f"{self.source}: the {stage} split has no window of window + horizon = "
                    f"{need} rows (its rows are too few); use a larger {stage}_fraction or a "
                    "smaller window/horizon"
                )
        self.info = {
            "input_size": self.series[0].inputs.shape[1],
            "output_size": self.series[0].targets.shape[1],
            "window": hp.window,
            "horizon": hp.horizon,
            "target_names": list(self.target_names),
            "target_mean": list(self.target_scaler.mean),
            "target_std": list(self.target_scaler.std),
            "mase_scale": self._mase_scale,
        }

    @property
    def target_names(self) -> list[str]:
        return list(self.hparams.target_columns)

    def _fit_scalers(self) -> None:
        train = [np.asarray([r == "train" for r in split]) for split in self.splits]
        targets = np.concatenate([s.targets[m] for s, m in zip(self.series, train, strict=True)])
        inputs = np.concatenate([s.inputs[m] for s, m in zip(self.series, train, strict=True)])
        if self.hparams.scale:
            self.target_scaler = StandardScaler.fit(targets)
            self.input_scaler = StandardScaler.fit(inputs)
        else:  # the identity, with one entry per column so the task can always unscale
            self.target_scaler = StandardScaler([0.0] * targets.shape[1], [1.0] * targets.shape[1])
            self.input_scaler = StandardScaler([0.0] * inputs.shape[1], [1.0] * inputs.shape[1])
        self._mase_scale = mase_scale(self.series, self.splits)

    def _tensors(self) -> None:
        self._x = [
            torch.tensor(self.input_scaler.transform(s.inputs), dtype=torch.float32)
            for s in self.series
        ]
        self._y = [
            torch.tensor(self.target_scaler.transform(s.targets), dtype=torch.float32)
            for s in self.series
        ]

    # -- what the task asks for ------------------------------------------------------------

    def split_arrays(self, stage: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Scaled ``(inputs (N, I), targets (N, O))`` of each series' contiguous ``stage`` rows.

        Used to fit baselines (linear ARX) on the training rows by least squares.
        """
        out = []
        for k, split in enumerate(self.splits):
            for a, b in _runs(split, stage):
                out.append((self._x[k][a:b].numpy(), self._y[k][a:b].numpy()))
        return out

    def free_run_spans(self, stage: str = "test") -> list[tuple[int, int, int]]:
        """``(series, start, stop)`` of each stage span with ``window`` context rows before it.

        A span is a run of consecutive ``stage`` rows; the model gets ``start:start+window``
        as real initial conditions and forecasts the rest in closed loop.
        """
        w = self.hparams.window
        return [
            (k, a - w, b)
            for k, split in enumerate(self.splits)
            for a, b in _runs(split, stage)
            if a >= w
        ]

    def describe(self, stage: str, window_id: int) -> tuple[str, list[str]]:
        """Series name and row labels of the forecast rows of window ``window_id``."""
        k, s = self._index[stage][window_id]
        hp = self.hparams
        return self.series[k].name, self.series[k].labels[
            s + hp.window : s + hp.window + hp.horizon
        ]

    # -- loaders ---------------------------------------------------------------------------

    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        hp = self.hparams
        dataset = WindowDataset(self._x, self._y, self._index[stage], hp.window + hp.horizon)
        if len(dataset) == 0:
            raise EmptyDataError(
                f"{self.source}: the {stage} split has no window of window + "
                f"horizon = {hp.window + hp.horizon} rows"
            )
        return DataLoader(
            dataset,
            batch_size=hp.batch_size,
            shuffle=shuffle,
            collate_fn=collate_windows,
            num_workers=hp.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        spans = SpanDataset(self._x, self._y, self.free_run_spans("test"))
        if len(spans) == 0:
            log.warning(
                f"{self.source}: no test span has window={self.hparams.window} rows before it; "
                "free-run metrics are skipped"
            )
        return [
            self._loader("test", shuffle=False),
            DataLoader(spans, batch_size=1, collate_fn=collate_windows),
        ]

    def predict_dataloader(self) -> DataLoader:
        """The test windows: ``predict`` forecasts each from its context."""
        return self._loader("test", shuffle=False)

    # -- checkpointing: scalers are plain data ----------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.target_scaler is None:
            return {}
        return {
            "target_scaler": self.target_scaler.state_dict(),
            "input_scaler": self.input_scaler.state_dict(),
            "mase_scale": list(self._mase_scale),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        self.target_scaler = StandardScaler.from_state_dict(state_dict["target_scaler"])
        self.input_scaler = StandardScaler.from_state_dict(state_dict["input_scaler"])
        self._mase_scale = [float(v) for v in state_dict["mase_scale"]]
        if self.series:
            self._tensors()
            self.info.update(
                target_mean=list(self.target_scaler.mean),
                target_std=list(self.target_scaler.std),
                mase_scale=list(self._mase_scale),
            )


class SpanDataset(Dataset):
    """Whole spans ``(x (W+S, I), y (W+S, O))`` for free-run evaluation, one per item."""

    def __init__(
        self, inputs: list[Tensor], targets: list[Tensor], spans: list[tuple[int, int, int]]
    ) -> None:
        self.inputs, self.targets, self.spans = inputs, targets, spans

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        k, a, b = self.spans[i]
        return self.inputs[k][a:b], self.targets[k][a:b], i


def _runs(split: Sequence[str], stage: str) -> list[tuple[int, int]]:
    """``[a, b)`` of each maximal run of consecutive rows labelled ``stage``."""
    runs, start = [], None
    for i, r in enumerate([*split, None]):
        if r == stage and start is None:
            start = i
        elif r != stage and start is not None:
            runs.append((start, i))
            start = None
    return runs
