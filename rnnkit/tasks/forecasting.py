"""``ForecastingTask``: one global forecaster over many series, scored as the M competitions do.

Batches are :class:`rnnkit.data.series.ForecastBatch` tuples from
:class:`rnnkit.data.TimeSeriesDataModule`; the model is any forecaster of
:mod:`rnnkit.models.forecaster` (``forward``, ``forecast``, ``one_step``). The loss (``loss``: MSE,
or MAE, whose optimum is the conditional median that MAE and MASE reward) is that of
``model(x, y, W)`` (open or closed loop as the model is set) against ``y[:, W:]`` in the model's
space (transformed, per-series scaled); a model's linear skip is fitted for the same loss
(least squares, or least absolute deviations). Every other score is in the data's units, after
the transforms are undone (:meth:`rnnkit.data.series.transforms.TargetPipeline.invert`).

Logged per split (``val``, and each test split under its own name: ``test``, ``test1``, ...),
with the metrics of :mod:`rnnkit.tasks.forecast_metrics` (``mae``, ``mse``, ``rmse``, ``mape``,
``smape``, ``mase`` = the M4 per-series mean, ``mase_pooled``):

- ``{split}/{metric}``: the windows' ``H``-step forecasts (closed loop after the context; for
  ``H = 1`` the rolling one-step forecast);
- ``{split}/origin_{metric}``: from the origin, the whole span of the split forecast from the
  ``W`` rows before it, nothing of it seen (what the M competitions score);
- ``{split}/one_step_{metric}``: each row of the span from the true rows before it;
- the baselines beside each, ``{split}/[origin_|one_step_]{naive,seasonal_naive,drift,mean}_*``
  (:mod:`rnnkit.tasks.forecast_baselines`, seasonal period ``season`` of the data) and, with
  ``arx_input_delays``/``arx_output_delays``, the least-squares ARX fitted on the training rows
  (``..._arx_*``); computed once per split, never per training step;
- ``val/loss``, ``train/loss``: the loss the model is fitted on.

At the end of a test run ``forecast_per_series.csv`` in the run directory lists every series'
scores (split, evaluation, forecaster), and the first span of the first test split is plotted
against its dates (``test_origin.png``, ``test_one_step.png``).

Args:
    model: a built forecaster.
    optimizer: partial optimizer, called with the parameters.
    scheduler: partial LR scheduler (stepped per epoch on ``val/loss``), or ``None``.
    window: W, context rows of each window (from the data).
    horizon: H, rows forecast per window (from the data).
    target_names, mase_scale, transform, difference, seasonal_difference: data state (the
        target names, the pooled MASE denominators, the target transforms to undo).
    arx_input_delays, arx_output_delays: lags of the linear ARX baseline; ``None``: no ARX.
    arx_seasonal_lags: output lags of that ARX besides ``1 .. arx_output_delays``.
    select_linear: ``origin_backtest``: before training, choose the structure of the model's
        linear skip (seasonal lags, intercept) by an origin backtest inside the training part
        (:mod:`rnnkit.tasks.linear_selection`); ``None``: as configured.
    loss: ``mse`` or ``mae``, the training loss (and ``val/loss``).
    baselines: score the classical baselines beside the model.
    plot: write the PNG plots at test time.
    monitor, monitor_mode: the metric that selects the best checkpoint (:class:`Task`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from rnnkit.data.series.transforms import TargetPipeline
from rnnkit.errors import ConfigError
from rnnkit.metrics import Mean
from rnnkit.models.arx import LinearARX
from rnnkit.plots import plot_forecast
from rnnkit.tasks import linear_selection
from rnnkit.tasks.base import Task
from rnnkit.tasks.forecast_baselines import baseline_forecasts
from rnnkit.tasks.forecast_metrics import SeriesErrors
from rnnkit.tasks.metrics import StageMetrics
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

PER_SERIES_CSV = "forecast_per_series.csv"
LOSSES = {"mse": nn.MSELoss, "mae": nn.L1Loss}


class ForecastingTask(Task):
    __doc__ = __doc__

    data_state = ("target_names", "mase_scale", "transform", "difference", "seasonal_difference")
    # the console's last line: the model's MASE and RMSE, and the origin MASE beside the
    # baselines a reader compares first (the other ~100 scores are in summary.json)
    summary_metrics = (
        "mase", "rmse", "origin_mase", "one_step_mase",
        "origin_naive_mase", "origin_seasonal_naive_mase", "origin_arx_mase",
    )  # fmt: skip

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        window: int = 24,
        horizon: int = 1,
        target_names: list[str] | None = None,
        mase_scale: list[float] | None = None,
        transform: str | None = None,
        difference: int = 0,
        seasonal_difference: int = 0,
        arx_input_delays: int | None = None,
        arx_output_delays: int | None = None,
        arx_seasonal_lags: Sequence[int] = (),
        select_linear: str | None = None,
        loss: str = "mse",
        baselines: bool = True,
        plot: bool = True,
        monitor: str = "val/loss",
        monitor_mode: str = "min",
    ) -> None:
        super().__init__(monitor, monitor_mode)
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        self.model = model
        O = model.output_size
        self.target_names = list(target_names) if target_names else [f"y{i}" for i in range(O)]
        for name, values in (("target_names", self.target_names), ("mase_scale", mase_scale)):
            if values is not None and len(values) != O:
                raise ValueError(
                    f"ForecastingTask: {name} has {len(values)} entries for "
                    f"{O} targets (model.output_size)"
                )
        self.pooled_scale = list(mase_scale or [1.0] * O)
        self.pipeline = TargetPipeline(transform, difference, seasonal_difference)
        if loss not in LOSSES:
            raise ConfigError(f"task.loss: expected one of {list(LOSSES)}, got {loss!r}")
        self.loss_name, self.loss_fn = loss, LOSSES[loss]()
        if select_linear not in linear_selection.SELECTIONS:
            raise ConfigError(
                f"task.select_linear: expected null or origin_backtest, got {select_linear!r}"
            )
        if select_linear and not isinstance(getattr(model, "linear", None), LinearARX):
            raise ConfigError(
                "task.select_linear: it chooses the linear skip of model=forecast_narx "
                "(model.linear_skip=true); this model has none"
            )
        self.arx: LinearARX | None = None
        if arx_input_delays is not None and arx_output_delays is not None:
            self.arx = LinearARX(
                model.input_size,
                O,
                arx_input_delays,
                arx_output_delays,
                seasonal_lags=list(arx_seasonal_lags),
            )
            if self.arx.memory > window:  # its lags before a window's first row would read 0
                raise ConfigError(
                    f"task.arx_output_delays/arx_seasonal_lags: the ARX baseline reads "
                    f"{self.arx.memory} past rows (lags {self.arx.output_lags}), but data.window "
                    f"is {window}; raise data.window"
                )
        self.metrics = StageMetrics({"train": {"loss": Mean()}, "val": {"loss": Mean()}})
        self.errors = nn.ModuleDict()  # "<split>__<prefix>" -> SeriesErrors, made as needed
        self._val_baselines: dict[str, float] | None = None

    # -- pieces ------------------------------------------------------------------------------

    def forward(self, x: Tensor, y_context: Tensor) -> Tensor:
        """Free-run forecast (model space) of the rows of ``x`` after ``y_context``."""
        return self.model.forecast(x, y_context)

    def to_data_units(self, z: Tensor, batch, one_step: bool) -> Tensor:
        """Model-space forecasts ``z (B, S, O)`` after the ``W`` context rows, in data units."""
        v = z * batch.scale + batch.shift
        return self.pipeline.invert(v, batch.raw, self.hparams.window, one_step)

    def _errors(self, split: str, prefix: str) -> SeriesErrors:
        key = f"{split}__{prefix}"
        if key not in self.errors:
            self.errors[key] = SeriesErrors(self.pooled_scale).to(self.device)
        return self.errors[key]

    def _den(self, series: Tensor) -> Tensor:
        """The per-series MASE denominators ``(B, O)`` of the data (set at fit/test start)."""
        return self._series_den[series]

    def _score(self, split: str, prefix: str, pred: Tensor, truth: Tensor, series: Tensor):
        self._errors(split, prefix).update(pred, truth, series, self._den(series))

    def _use_data(self) -> Any:
        datamodule = getattr(self.trainer, "datamodule", None)
        if not hasattr(datamodule, "mase_den"):
            raise ValueError(
                "ForecastingTask: validation and test need the rnnkit.data.TimeSeriesDataModule "
                "(trainer.fit/test(..., datamodule=...))"
            )
        self._series_den = torch.as_tensor(datamodule.mase_den, dtype=torch.float32).to(
            self.device
        )
        return datamodule

    # -- training and validation -----------------------------------------------------------

    def on_fit_start(self) -> None:
        """A model with a linear skip (``fit_linear``) starts from its fit for the loss, of the
        structure ``select_linear`` chose (once: a resumed model keeps its own)."""
        if not hasattr(self.model, "fit_linear"):
            return
        datamodule = self.trainer.datamodule
        if self.hparams.select_linear and not self.model.linear_fitted:
            linear_selection.select_linear(
                self.model.linear, datamodule, self.to_data_units, self.loss_name
            )
        self.model.fit_linear(datamodule.split_arrays("train"), self.loss_name)

    def model_step(self, batch) -> tuple[Tensor, Tensor, Tensor]:
        """Training: the model's own prediction mode (open or closed loop) and its loss."""
        W = self.hparams.window
        pred = self.model(batch.x, batch.y, W)  # (B, T - W, O)
        return self.loss_fn(pred, batch.y[:, W:]), pred, batch.y[:, W:]

    def training_step(self, batch, batch_idx: int) -> Tensor:
        loss, _, y = self.model_step(batch)
        self.metrics.update("train", "loss", loss.detach())
        return loss

    def on_validation_epoch_start(self) -> None:
        self._use_data()
        self._errors("val", "").reset()

    def validation_step(self, batch, batch_idx: int) -> None:
        W = self.hparams.window
        z = self.model.forecast(batch.x, batch.y[:, :W])  # (B, H, O)
        self.metrics.update("val", "loss", self.loss_fn(z, batch.y[:, W:]))
        pred = self.to_data_units(z, batch, one_step=False)
        self._score("val", "", pred, batch.raw[:, W:], batch.series)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        errors = self._errors("val", "")
        if not errors.update_count:
            return
        for name, value in errors.compute().items():
            self.log(f"val/{name}", value, prog_bar=name == "mase")
        if self.hparams.baselines and not self.trainer.sanity_checking:
            if self._val_baselines is None:  # once: they do not depend on the model
                self._val_baselines = self._baseline_scores(
                    self.trainer.datamodule, "val", ["windows"]
                )
            for key, value in self._val_baselines.items():
                self.log(key, value, add_dataloader_idx=False)

    # -- test ----------------------------------------------------------------------------------

    def on_test_start(self) -> None:
        datamodule = self._use_data()
        for metric in self.errors.values():
            metric.reset()
        self._test_loaders = datamodule.test_loaders
        self._plotted = False
        if self.arx is not None:
            self.arx.fit(datamodule.split_arrays("train"))
            for (split, kind), loader in zip(
                self._test_loaders, datamodule.test_dataloader(), strict=True
            ):
                for batch in loader:
                    batch = type(batch)(*(t.to(self.device) for t in batch))
                    self._evaluate(self.arx, batch, split, kind, "arx_")

    def _evaluate(self, forecaster: nn.Module, batch, split: str, kind: str, name: str):
        """Score ``forecaster`` on a test batch of ``split`` (``windows`` or ``spans``)."""
        W = self.hparams.window
        truth = batch.raw[:, W:]
        free = self.to_data_units(forecaster.forecast(batch.x, batch.y[:, :W]), batch, False)
        if kind == "windows":
            self._score(split, name, free, truth, batch.series)
            return None
        one_step = self.to_data_units(forecaster.one_step(batch.x, batch.y, W), batch, True)
        self._score(split, f"origin_{name}", free, truth, batch.series)
        self._score(split, f"one_step_{name}", one_step, truth, batch.series)
        return free, one_step

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        split, kind = self._test_loaders[dataloader_idx]
        out = self._evaluate(self.model, batch, split, kind, "")
        if out is not None and not self._plotted and self.hparams.plot:
            self._plotted = True
            if self.trainer.is_global_zero:
                self._plot(batch, split, *out)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        datamodule = self.trainer.datamodule
        scores: dict[str, float] = {}
        rows = []
        for key, errors in self.errors.items():
            split, _, prefix = key.partition("__")
            if split == "val" or not errors.update_count:
                continue
            for name, value in errors.compute().items():
                scores[f"{split}/{prefix}{name}"] = float(value)
            rows += self._table_rows(split, prefix, errors, datamodule)
        if self.hparams.baselines:
            for split in datamodule.test_names:
                scores.update(self._baseline_scores(datamodule, split, ["windows", "spans"], rows))
        for key, value in sorted(scores.items()):
            self.log(key, value, add_dataloader_idx=False)
        if self.trainer.is_global_zero:
            self._write_table(rows)

    # -- baselines -------------------------------------------------------------------------

    def _baseline_scores(self, datamodule, split: str, kinds, rows: list | None = None):
        """Scores of the classical baselines on ``split``: ``{key: value}`` (host, once)."""
        m = datamodule.hparams.season
        W = self.hparams.window
        targets = [s.targets for s in datamodule.series]
        den = torch.as_tensor(datamodule.mase_den, dtype=torch.float64)
        evaluations = []
        if "windows" in kinds:
            items = [(k, s + W, b) for k, s, b in datamodule.windows(split)]
            evaluations.append(("", "windows", items))
        if "spans" in kinds:
            items = [(k, a + W, b) for k, a, b in datamodule.spans(split)]
            evaluations += [("origin_", "origin", items), ("one_step_", "one_step", items)]
        scores = {}
        for prefix, kind, items in evaluations:
            points: dict[str, tuple[list, list, list]] = {}
            for name, k, truth, pred in baseline_forecasts(targets, items, kind, m):
                preds, truths, series = points.setdefault(name, ([], [], []))
                preds.append(pred)
                truths.append(truth)
                series.append(np.full(len(truth), k))
            for name, (preds, truths, series) in points.items():
                metric = SeriesErrors(self.pooled_scale)
                ids = torch.as_tensor(np.concatenate(series))
                metric.update(
                    torch.as_tensor(np.concatenate(preds)),
                    torch.as_tensor(np.concatenate(truths)),
                    ids,
                    den[ids],
                )
                for metric_name, value in metric.compute().items():
                    scores[f"{split}/{prefix}{name}_{metric_name}"] = float(value)
                if rows is not None:
                    rows += self._table_rows(split, f"{prefix}{name}_", metric, datamodule)
        return scores

    # -- outputs -------------------------------------------------------------------------------

    @staticmethod
    def _table_rows(split: str, prefix: str, errors: SeriesErrors, datamodule) -> list[list]:
        """Per-series CSV rows of one evaluation (``prefix`` as in the logged keys)."""
        evaluation, forecaster = "windows", prefix
        for name in ("origin_", "one_step_"):
            if prefix.startswith(name):
                evaluation, forecaster = name[:-1], prefix[len(name) :]
        table = errors.per_series()
        return [
            [split, evaluation, forecaster.rstrip("_") or "model"]
            + [datamodule.series[int(k)].name, int(table["points"][i])]
            + [f"{float(table[col][i]):.6g}" for col in ("mae", "rmse", "smape", "mase")]
            for i, k in enumerate(table["series"])
        ]

    def _write_table(self, rows: list[list]) -> None:
        path = Path(self.trainer.default_root_dir) / PER_SERIES_CSV
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                [
                    "split",
                    "evaluation",
                    "forecaster",
                    "series",
                    "points",
                    "mae",
                    "rmse",
                    "smape",
                    "mase",
                ]
            )
            writer.writerows(sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3])))
        log.info(f"Per-series scores: {path}")

    def _plot(self, batch, split: str, origin: Tensor, one_step: Tensor) -> None:
        """The first span of the batch against its time labels."""
        datamodule = self.trainer.datamodule
        W = self.hparams.window
        k, a, b = datamodule.spans(split)[int(batch.window_ids[0])]
        series = datamodule.series[k]
        root = Path(self.trainer.default_root_dir)
        for name, pred in (("origin", origin), ("one_step", one_step)):
            path = plot_forecast(
                batch.raw[0, W:].cpu(),
                pred[0].cpu(),
                root / f"{split}_{name}.png",
                context=batch.raw[0, :W].cpu(),
                labels=self.target_names,
                title=f"{series.name}, {split}: {name.replace('_', '-')} forecast",
                times=series.labels[a:b],
            )
            log.info(f"Forecast plot: {path}")

    def predict_step(self, batch, batch_idx: int) -> list[dict[str, Any]]:
        """Forecasts past the end of each series, in the data's units, with their times."""
        W = self.hparams.window
        z = self.model.forecast(batch.x, batch.y[:, :W])
        pred = self.to_data_units(z, batch, one_step=False).cpu()  # (B, S, O)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        out = []
        for b, window_id in enumerate(batch.window_ids.tolist()):
            series, times = datamodule.describe("predict", window_id)
            out.append(
                {
                    "series": series,
                    "times": times,
                    "forecast": {
                        name: [float(v) for v in pred[b, :, o]]
                        for o, name in enumerate(self.target_names)
                    },
                }
            )
        return out

    def format_predictions(self, predictions: Sequence[dict[str, Any]], datamodule) -> list[str]:
        """CSV lines: ``series_id,time,step,forecast`` (one column per target if several)."""
        names = self.target_names
        f = io.StringIO()
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(
            ["series_id", "time", "step", *(["forecast"] if len(names) == 1 else names)]
        )
        for item in predictions:
            values = [item["forecast"][name] for name in names]
            for h, time in enumerate(item["times"]):
                writer.writerow([item["series"], time, h + 1, *(f"{v[h]:.6g}" for v in values)])
        return f.getvalue().splitlines()
