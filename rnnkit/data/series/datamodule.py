"""``TimeSeriesDataModule``: forecasting windows of one or many series from CSV files.

Reading (:mod:`~rnnkit.data.series.reading`), splits (:mod:`~rnnkit.data.series.splits`),
transforms and per-series scaling (:mod:`~rnnkit.data.series.transforms`), windows
(:mod:`~rnnkit.data.series.windowing`) and the steps past the end
(:mod:`~rnnkit.data.series.future`) are each in their own module; this one puts them together
and answers what the task asks: loaders per split, the evaluation spans, forecasts past the end
of the data.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from rnnkit.data.series.future import future_inputs, labels_after
from rnnkit.data.series.reading import Layout, Series, read_series
from rnnkit.data.series.splits import assign_splits, runs, test_split_names
from rnnkit.data.series.times import TimeAxis
from rnnkit.data.series.transforms import SeriesScaler, TargetPipeline, in_sample_naive_mae
from rnnkit.data.series.windowing import (
    CollateWindows,
    EqualLengthBatches,
    SeriesTensors,
    WindowDataset,
    window_starts,
)
from rnnkit.engine import DataModule
from rnnkit.errors import ConfigError, EmptyDataError, SequenceLengthError


class TimeSeriesDataModule(DataModule):
    """Forecasting windows of one or many series (one global model over all of them).

    Batches are :class:`~rnnkit.data.series.windowing.ForecastBatch` tuples
    ``(x (B, T, I), lengths (B,), y (B, T, O), window_ids (B,), series (B,), raw (B, T, O),
    shift (B, 1, O), scale (B, 1, O))`` with ``T = window + horizon``: ``y`` as the model sees
    it (transformed, per-series scaled), ``raw`` in the data's units.

    The test stage has two loaders per test split (:attr:`test_loaders` names them): its
    windows, and its whole spans (each after ``window`` real rows) for the origin and one-step
    evaluations. Without validation rows :attr:`has_validation` is False.

    Args:
        path: the CSV file (long, one series, or one column per series).
        target_columns: columns to forecast (``O`` of them).
        input_columns: known-future covariates (calendar, planned inputs): known at every step,
            also after the forecast origin (``predict`` reads them from ``future_path``).
        past_input_columns: past-only covariates, known up to the forecast origin only: in
            every window their rows after the ``window`` context rows read 0 (their training
            mean), in training and evaluation alike; they follow ``input_columns`` in ``x``.
        series_column: the series id column of the long layout.
        series_columns: wide layout: each of these columns is its own series (target ``y``).
        split_column: a column of split labels: ``train``, optional ``val``, any other label a
            named test split (``test``, ``test1``, ...).
        time_column: the time column (or two, ``[year, quarter]``), used to sort and check
            rows and to label forecasts; ``date_column`` is its old name.
        frequency: the time step: null (inferred), an integer step, or a period alias (``D``,
            ``W-SAT``, ``M``, ``Q``, ``Y``, ``h``, ``30min``).
        missing: ``error`` or ``interpolate`` empty cells.
        wide_periods: columns holding consecutive periods of one row (a year's 12 months):
            each row is read as that many rows of the target ``y`` (:mod:`.reading`).
        test_path, val_path: files of test / validation rows of the same series (same layout).
        predict_path: the history to forecast from (default: every row of the data).
        future_path: covariates of the steps after the end of each series (same layout without
            targets), needed by ``predict`` when there are covariates.
        window: W, context rows each forecast sees.
        horizon: H, rows forecast per window.
        test_size, val_size: see :mod:`rnnkit.data.series.splits`.
        stride: step between training windows.
        batch_size: windows per batch.
        scale: ``standard``, ``mase`` or ``none`` (``true``/``false`` read as standard/none).
        transform, difference, seasonal_difference: the target transforms.
        season: m, the seasonal period of MASE and of the seasonal naive baseline.
        predict_steps: steps forecast past the end (default: ``horizon``).
        num_workers: DataLoader workers.

    ``info`` (after ``setup``): ``input_size``, ``output_size``, ``window``, ``horizon``,
    ``target_names``, ``mase_scale`` (pooled, per target), ``season``, ``series_names``, and
    ``transform``, ``difference``, ``seasonal_difference`` (what the task undoes).
    """

    def __init__(
        self,
        path: str | None = None,
        target_columns: Sequence[str] = ("y",),
        input_columns: Sequence[str] = (),
        past_input_columns: Sequence[str] = (),
        series_column: str | None = None,
        series_columns: Sequence[str] = (),
        split_column: str | None = None,
        time_column: str | Sequence[str] | None = None,
        date_column: str | None = None,
        frequency: Any = None,
        missing: str = "error",
        wide_periods: Sequence[str] = (),
        test_path: str | None = None,
        val_path: str | None = None,
        predict_path: str | None = None,
        future_path: str | None = None,
        window: int = 24,
        horizon: int = 1,
        test_size: float | int = 0.2,
        val_size: float | int | None = None,
        stride: int = 1,
        batch_size: int = 64,
        scale: str | bool = "standard",
        transform: str | None = None,
        difference: int = 0,
        seasonal_difference: int = 0,
        season: int = 1,
        predict_steps: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name, value in {
            "window": window,
            "horizon": horizon,
            "stride": stride,
            "batch_size": batch_size,
            "season": season,
        }.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"data.{name}: expected a positive integer, got {value!r}")
        if series_columns or wide_periods:
            target_columns = ()
        if date_column is not None and time_column is not None:
            raise ConfigError("data.date_column is the old name of time_column: give one")
        self.layout = Layout(
            target_columns=list(target_columns),
            input_columns=[*input_columns, *past_input_columns],
            series_column=series_column,
            series_columns=list(series_columns),
            split_column=split_column,
            time_column=time_column if time_column is not None else date_column,
            frequency=frequency,
            missing=missing,
            wide_periods=list(wide_periods),
        )
        self.known_inputs = len(input_columns)  # x columns after these are past-only
        self.scale_method = {True: "standard", False: "none"}.get(scale, scale)
        self.pipeline = TargetPipeline(transform, difference, seasonal_difference)
        if window < self.pipeline.lost:
            raise ConfigError(
                f"data.window={window}: the differences need window >= difference + "
                f"seasonal_difference = {self.pipeline.lost}"
            )
        self.series: list[Series] = []
        self.splits: list[list[str]] = []
        self.axis = TimeAxis("none")
        self.scaler: SeriesScaler | None = None
        self._saved: dict[str, Any] = {}
        self.info: dict[str, Any] = {}

    # -- reading ---------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """What the data came from, for error messages."""
        return str(self.hparams.path)

    def _files(self) -> list[tuple[str, str | None]]:
        hp = self.hparams
        if hp.path is None:
            raise ConfigError(f"{type(self).__name__}: data.path is not set (expected a CSV file)")
        files = [(hp.path, None)]
        files += [(p, label) for p, label in ((hp.val_path, "val"), (hp.test_path, "test")) if p]
        return files

    def load_series(self) -> list[Series]:
        """The raw series; subclasses that generate data override this."""
        series, self.axis = read_series(self._files(), self.layout)
        return series

    @property
    def target_names(self) -> list[str]:
        return self.layout.target_names

    # -- setup -----------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.series:
            return
        hp = self.hparams
        self.series = self.load_series()
        self.splits = assign_splits(
            [s.split for s in self.series],
            [len(s.targets) for s in self.series],
            hp.test_size,
            hp.val_size,
            hp.horizon,
        )
        self._prepare()
        if not self._items["train"]:
            raise EmptyDataError(
                f"{self.source}: no training window of window + horizon = "
                f"{hp.window + hp.horizon} rows lies wholly in the training rows of any series"
            )

    def _prepare(self) -> None:
        """Everything that follows from :attr:`series` and :attr:`splits`: transforms, the
        scaler (fitted on the training rows), MASE denominators, tensors, windows, ``info``."""
        hp = self.hparams
        self.test_names = test_split_names(self.splits)
        for s in self.series:
            self.pipeline.check(s.targets, s.where, s.name)
        self._v = [self.pipeline.forward(s.targets) for s in self.series]
        lost = self.pipeline.lost
        masks = [
            (np.asarray(split) == "train") & (np.arange(len(split)) >= lost)
            for split in self.splits
        ]
        self.scaler = SeriesScaler.fit(
            [s.name for s in self.series],
            self._v,
            [s.inputs for s in self.series],
            masks,
            self.scale_method,
            hp.season,
        )
        if self._saved:
            self.scaler.restore(self._saved["scaler"])
        # MASE's in-sample part: every row before the test splits (training and validation)
        train_masks = [np.isin(split, ["train", "val"]) for split in self.splits]
        self.mase_den = np.stack(
            [
                in_sample_naive_mae(s.targets, m, hp.season)
                for s, m in zip(self.series, train_masks, strict=True)
            ]
        )  # (K, O), NaN where undefined
        self._check_lengths()
        self.tensors = self._tensors(self.series, self._v, self.scaler)
        W, H = hp.window, hp.horizon
        self._items: dict[str, list[tuple[int, int, int]]] = {}
        for stage_name in ("train", "val", *self.test_names):
            self._items[stage_name] = [
                (k, s, s + W + H)
                for k, split in enumerate(self.splits)
                for s in window_starts(split, stage_name, W, H, lost, hp.stride)
            ]
        self.info = {
            "input_size": self.series[0].inputs.shape[1],
            "output_size": self.series[0].targets.shape[1],
            "window": W,
            "horizon": H,
            "target_names": list(self.target_names),
            "mase_scale": self.pooled_mase_scale(),
            "season": hp.season,
            "series_names": [s.name for s in self.series],
            "transform": self.pipeline.transform,
            "difference": self.pipeline.difference,
            "seasonal_difference": self.pipeline.seasonal_difference,
        }

    def _check_lengths(self) -> None:
        """Refuse, before training, an evaluation span the model cannot forecast whole."""
        hp = self.hparams
        need = hp.window + self.pipeline.lost
        for s, split in zip(self.series, self.splits, strict=True):
            for stage in (*self.test_names, "val"):
                for a, b in runs(split, stage):
                    where = f"{s.where[a]}: " if s.where else ""
                    if b - a < hp.horizon:
                        raise SequenceLengthError(
                            f"{where}series {s.name!r}: the {stage} split has {b - a} rows, "
                            f"fewer than horizon={hp.horizon} (use a larger data.test_size / "
                            "val_size or a smaller horizon)"
                        )
                    if a < need:
                        raise SequenceLengthError(
                            f"{where}series {s.name!r}: the {stage} split starts after {a} "
                            f"rows, fewer than window + differences = {need} (use a smaller "
                            "data.window)"
                        )

    def pooled_mase_scale(self) -> list[float]:
        """Per target, the seasonal naive in-sample MAE pooled over every series' pairs of
        training and validation rows (the in-sample part, as for the per-series MASE)."""
        m = self.hparams.season
        sums, counts = 0.0, 0
        for s, split in zip(self.series, self.splits, strict=True):
            train = np.isin(split, ["train", "val"])
            if len(train) > m:
                pair = train[m:] & train[:-m]
                sums = sums + np.abs(s.targets[m:] - s.targets[:-m])[pair].sum(axis=0)
                counts += int(pair.sum())
        if counts == 0:
            raise EmptyDataError(
                f"{self.source}: MASE needs training rows more than season={m} apart"
            )
        scale = np.atleast_1d(sums / counts)
        return [float(v) if v > 1e-12 else 1.0 for v in scale]

    def _tensors(self, series: list[Series], v: list[np.ndarray], scaler: SeriesScaler):
        shift, scale = scaler.shift, scaler.scale
        x = [
            torch.tensor(
                (s.inputs - scaler.input_mean[k]) / scaler.input_std[k], dtype=torch.float32
            )
            for k, s in enumerate(series)
        ]
        y = [
            torch.tensor((vk - shift[k]) / scale[k], dtype=torch.float32) for k, vk in enumerate(v)
        ]
        raw = [torch.tensor(s.targets, dtype=torch.float32) for s in series]
        return SeriesTensors(
            x,
            y,
            raw,
            torch.tensor(shift, dtype=torch.float32),
            torch.tensor(scale, dtype=torch.float32),
        )

    def backtest(self) -> TimeSeriesDataModule:
        """The data as if each series' in-sample part (training and validation rows) ended
        ``h`` rows earlier, ``h`` the length of its first test run: those ``h`` rows are the
        view's ``test`` split, the rows before them its ``train``, and nothing from the first
        test row on is kept (a time-respecting origin backtest that never reads a test split).

        The scaler and the MASE denominators are refitted on the view's own training rows. A
        series without a test split, or with no more than ``window`` rows (after the rows the
        differences lose) before its held-out ones, is left out.
        """
        need = self.hparams.window + self.pipeline.lost
        series, splits = [], []
        for s, split in zip(self.series, self.splits, strict=True):
            starts = [a for name in self.test_names for a, _ in runs(split, name)]
            if not starts:
                continue
            first = min(starts)
            h = next(b - a for a, b in runs(split, split[first]) if a == first)
            if first - h > need:
                series.append(_head(s, first))
                splits.append(["train"] * (first - h) + ["test"] * h)
        if not series:
            raise EmptyDataError(
                f"{self.source}: the backtest holds out the last h rows before each test split "
                f"(h: its length); no series keeps more than window + differences = {need} "
                "rows before them"
            )
        view = copy.copy(self)
        view.series, view.splits, view._saved = series, splits, {}
        view._prepare()
        return view

    @property
    def has_validation(self) -> bool:
        """Whether there is a validation split (COMMON contract: no val -> last checkpoint)."""
        if not self.series:
            self.setup("fit")
        return bool(self._items["val"])

    # -- what the task asks for ------------------------------------------------------------

    def windows(self, stage: str) -> list[tuple[int, int, int]]:
        """``(series, start, stop)`` of the windows of ``stage`` (``stop - start = W + H``)."""
        return list(self._items[stage])

    def spans(self, stage: str) -> list[tuple[int, int, int]]:
        """``(series, start, stop)``: each run of ``stage`` rows after ``window`` context rows."""
        W = self.hparams.window
        return [
            (k, a - W, b) for k, split in enumerate(self.splits) for a, b in runs(split, stage)
        ]

    def split_arrays(self, stage: str = "train") -> list[tuple[np.ndarray, np.ndarray]]:
        """Model-space ``(inputs (N, I), targets (N, O))`` of each run of ``stage`` rows (after
        the rows the differences lost): what a least-squares ARX is fitted on."""
        lost = self.pipeline.lost
        out = []
        for k, split in enumerate(self.splits):
            for a, b in runs(split, stage):
                a = max(a, lost)
                if b > a:
                    out.append((self.tensors.x[k][a:b].numpy(), self.tensors.y[k][a:b].numpy()))
        return out

    def describe(self, stage: str, window_id: int) -> tuple[str, list[str]]:
        """Series name and time labels of the forecast rows of window ``window_id``."""
        if stage == "predict":
            return self._future_labels[window_id]
        k, s, b = self._items[stage][window_id]
        return self.series[k].name, self.series[k].labels[s + self.hparams.window : b]

    # -- loaders ---------------------------------------------------------------------------

    def _loader(self, items, shuffle: bool = False, tensors=None, spans: bool = False):
        tensors = tensors or self.tensors
        dataset = WindowDataset(tensors, items)
        hp = self.hparams
        if spans:
            return DataLoader(
                dataset,
                batch_sampler=EqualLengthBatches(items, hp.batch_size),
                collate_fn=self._collate(tensors),
                num_workers=hp.num_workers,
            )
        return DataLoader(
            dataset,
            batch_size=hp.batch_size,
            shuffle=shuffle,
            collate_fn=self._collate(tensors),
            num_workers=hp.num_workers,
        )

    def _collate(self, tensors: SeriesTensors) -> CollateWindows:
        past = list(range(self.known_inputs, len(self.layout.input_columns)))
        return CollateWindows(tensors, self.hparams.window, past)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._items["train"], shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self._items["val"]) if self._items["val"] else []

    @property
    def test_loaders(self) -> list[tuple[str, str]]:
        """``(split, "windows" | "spans")`` of each loader of :meth:`test_dataloader`."""
        return [(name, kind) for name in self.test_names for kind in ("windows", "spans")]

    def test_dataloader(self) -> list[DataLoader]:
        if not self.test_names:
            raise EmptyDataError(f"{self.source}: there is no test split (data.test_size is 0)")
        return [
            self._loader(self._items[name]) if kind == "windows" else self.span_dataloader(name)
            for name, kind in self.test_loaders
        ]

    def span_dataloader(self, stage: str) -> DataLoader:
        """The spans of ``stage`` (:meth:`spans`), batched by equal length."""
        return self._loader(self.spans(stage), spans=True)

    # -- forecasts past the end -------------------------------------------------------------

    def predict_dataloader(self) -> DataLoader:
        """One window per series: its last ``window`` rows, then ``predict_steps`` future rows."""
        hp = self.hparams
        steps = hp.predict_steps or hp.horizon
        history = self.series
        if hp.predict_path is not None:
            history, _ = read_series([(hp.predict_path, "train")], self.layout)
        v = [self.pipeline.forward(s.targets) for s in history]
        lost = self.pipeline.lost
        scaler = SeriesScaler.fit(
            [s.name for s in history],
            v,
            [s.inputs for s in history],
            [np.arange(len(s.targets)) >= lost for s in history],
            self.scale_method,
            hp.season,
        )
        scaler.restore(self.scaler.state_dict())  # series seen in training keep their maps
        future = future_inputs(
            history, steps, self.layout, self.known_inputs, hp.future_path, self.axis
        )
        extended = []
        for s, u in zip(history, future, strict=True):
            O = s.targets.shape[1]
            extended.append(
                Series(
                    s.name,
                    np.concatenate([s.targets, np.zeros((steps, O))]),
                    np.concatenate([s.inputs, u]),
                    s.labels,
                )
            )
        v = [np.concatenate([vk, np.zeros((steps, vk.shape[1]))]) for vk in v]
        tensors = self._tensors(extended, v, scaler)
        W = hp.window
        items, self._future_labels = [], []
        for k, s in enumerate(history):
            n = len(s.targets)
            if n < W + lost:
                raise SequenceLengthError(
                    f"{hp.predict_path or self.source}: series {s.name!r} has {n} rows, fewer "
                    f"than window + differences = {W + lost}"
                )
            items.append((k, n - W, n + steps))
            self._future_labels.append((s.name, labels_after(s, steps, self.axis)))
        return self._loader(items, tensors=tensors)

    # -- checkpointing: plain numbers -------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.scaler is None:
            return {}
        return {"scaler": self.scaler.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        self._saved = dict(state_dict)
        if self.series:
            self.scaler.restore(state_dict["scaler"])
            self.tensors = self._tensors(self.series, self._v, self.scaler)


def _head(s: Series, n: int) -> Series:
    """The first ``n`` rows of a series."""
    cut = {f: getattr(s, f)[:n] for f in ("split", "times", "where") if getattr(s, f) is not None}
    return dataclasses.replace(
        s, targets=s.targets[:n], inputs=s.inputs[:n], labels=s.labels[:n], **cut
    )
