"""``ForecastingTask``: multi-step forecasting, one-step-ahead and free-run evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import Metric
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

from rnnkit.models.arx import LinearARX
from rnnkit.plots import plot_forecast
from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, mean_metric
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)


def _scores(*prefixes: str) -> dict[str, Metric]:
    """MAE, RMSE and MASE (an MAE of values divided by the MASE scale) of each prefix."""
    metrics: dict[str, Metric] = {}
    for prefix in prefixes:
        metrics[f"{prefix}mae"] = MeanAbsoluteError()
        metrics[f"{prefix}rmse"] = MeanSquaredError(squared=False)
        metrics[f"{prefix}mase"] = MeanAbsoluteError()
    return metrics


class ForecastingTask(Task):
    """Train a forecaster on scaled windows; report errors in the data's original units.

    Batches are ``(x (B, W+H, I), lengths, y (B, W+H, O), window_ids)`` as
    :class:`rnnkit.data.TimeSeriesDataModule` gives them; the model is any forecaster of
    :mod:`rnnkit.models.forecaster` (``forward``, ``forecast``, ``one_step``). The loss is the
    MSE of ``model(x, y, W)`` (open or closed loop as the model is set) against ``y[:, W:]``.

    Logged, per stage (``val``, ``test``), on the windows' ``H``-step forecasts (closed loop after
    the context, so for ``H = 1`` one step ahead), with the scaler undone:

    - ``{stage}/mae``, ``{stage}/rmse``, ``{stage}/mase``: MASE divides by the in-sample MAE of
      the persistence forecast on the training rows (Hyndman & Koehler 2006);
    - ``{stage}/persistence_*``: the persistence forecast (last context value held), always; it
      does not depend on the model, so its validation scores are computed in the first
      validation epoch only and re-logged afterwards;
    - ``{stage}/loss``: MSE of the scaled forecast (what checkpoints select on).

    Test also runs over each whole test span after ``W`` real rows of context:
    ``test/one_step_*`` (open loop: every step from the true past) and ``test/free_run_*``
    (closed loop over the whole span, the model's outputs fed back), with
    ``test/free_run_persistence_*`` beside them; with ``arx_input_delays``/``arx_output_delays``
    a linear ARX model is fitted by least squares on the training rows and scored the same way
    (``test/arx_*``, ``test/arx_one_step_*``, ``test/arx_free_run_*``). The first span's
    forecasts are plotted to ``test_free_run.png`` and ``test_one_step.png`` in the run
    directory.

    Args:
        model: a built forecaster.
        optimizer: partial optimizer, called with the parameters.
        scheduler: partial LR scheduler (stepped per epoch on ``val/loss``), or ``None``.
        window: W, context rows of each window (from the data).
        horizon: H, rows forecast per window (from the data).
        target_names: names of the O targets (data state, like the next three).
        target_mean, target_std: the target scaler fitted on the training rows.
        mase_scale: per-target MASE denominators.
        arx_input_delays, arx_output_delays: lags of the linear ARX baseline; ``None``: no ARX.
        plot: write the PNG plots at test time.
        monitor, monitor_mode: the metric that selects the best checkpoint (:class:`Task`).
    """

    data_state = ("target_names", "target_mean", "target_std", "mase_scale")

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        window: int = 24,
        horizon: int = 1,
        target_names: list[str] | None = None,
        target_mean: list[float] | None = None,
        target_std: list[float] | None = None,
        mase_scale: list[float] | None = None,
        arx_input_delays: int | None = None,
        arx_output_delays: int | None = None,
        plot: bool = True,
        monitor: str = "val/loss",
        monitor_mode: str = "min",
    ) -> None:
        super().__init__(monitor, monitor_mode)
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        self.model = model
        O = model.output_size
        self.target_names = list(target_names) if target_names else [f"y{i}" for i in range(O)]
        for name, values in (
            ("target_names", self.target_names),
            ("target_mean", target_mean),
            ("target_std", target_std),
            ("mase_scale", mase_scale),
        ):
            if values is not None and len(values) != O:
                raise ValueError(
                    f"ForecastingTask: {name} has {len(values)} entries for "
                    f"{O} targets (model.output_size)"
                )
        self.register_buffer("mean", torch.tensor(target_mean or [0.0] * O))
        self.register_buffer("std", torch.tensor(target_std or [1.0] * O))
        self.register_buffer("scale", torch.tensor(mase_scale or [1.0] * O))
        self.loss_fn = nn.MSELoss()
        test = ["", "persistence_", "one_step_", "free_run_", "free_run_persistence_"]
        self.arx: LinearARX | None = None
        if arx_input_delays is not None and arx_output_delays is not None:
            self.arx = LinearARX(model.input_size, O, arx_input_delays, arx_output_delays)
            test += ["arx_", "arx_one_step_", "arx_free_run_"]
        self.metrics = StageMetrics(
            {
                "train": {"loss": mean_metric()},
                "val": {"loss": mean_metric(), **_scores("", "persistence_")},
                "test": {"loss": mean_metric(), **_scores(*test)},
            },
            baselines=[f"val/persistence_{name}" for name in ("mae", "rmse", "mase")],
        )

    def forward(self, x: Tensor, y_context: Tensor) -> Tensor:
        """Free-run forecast (scaled units) of the rows of ``x`` after ``y_context``."""
        return self.model.forecast(x, y_context)

    def unscale(self, y: Tensor) -> Tensor:
        """Scaled values back to the data's units."""
        return y * self.std + self.mean

    def _update(self, stage: str, prefix: str, pred: Tensor, target: Tensor, B: int) -> None:
        """Update MAE/RMSE/MASE of ``{stage}/{prefix}`` on unscaled ``(B, S, O)`` values."""
        p, t = pred.reshape(-1, pred.shape[-1]), target.reshape(-1, target.shape[-1])
        update = self.metrics.update
        update(self, stage, f"{prefix}mae", p, t, batch_size=B)
        update(self, stage, f"{prefix}rmse", p, t, batch_size=B)
        update(self, stage, f"{prefix}mase", p / self.scale, t / self.scale, batch_size=B)

    def model_step(self, batch) -> tuple[Tensor, Tensor, Tensor]:
        """Training: the model's own prediction mode (open or closed loop) and its loss."""
        x, _, y, _ = batch
        W = self.hparams.window
        pred = self.model(x, y, W)  # (B, T - W, O)
        return self.loss_fn(pred, y[:, W:]), pred, y[:, W:]

    def training_step(self, batch, batch_idx: int) -> Tensor:
        loss, _, y = self.model_step(batch)
        self.metrics.update(self, "train", "loss", loss.detach(), batch_size=y.shape[0])
        return loss

    def _window_step(self, batch, stage: str) -> None:
        x, _, y, _ = batch
        W = self.hparams.window
        pred = self.model.forecast(x, y[:, :W])  # (B, H, O)
        B = y.shape[0]
        self.metrics.update(self, stage, "loss", self.loss_fn(pred, y[:, W:]), batch_size=B)
        truth = self.unscale(y[:, W:])
        self._update(stage, "", self.unscale(pred), truth, B)
        if self.metrics.wants(stage, "persistence_mae"):  # known after one validation epoch
            persistence = self.unscale(y[:, W - 1 : W]).expand_as(truth)
            self._update(stage, "persistence_", persistence, truth, B)
        if stage == "test" and self.arx is not None:
            self._update(stage, "arx_", self.unscale(self.arx.forecast(x, y[:, :W])), truth, B)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._window_step(batch, "val")

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if dataloader_idx == 0:
            self._window_step(batch, "test")
        else:
            self._span_step(batch, batch_idx)

    def _span_step(self, batch, batch_idx: int) -> None:
        """A whole test span after ``W`` real rows: one step ahead and free run."""
        x, _, y, _ = batch
        W = self.hparams.window
        truth = self.unscale(y[:, W:])  # (1, S, O)
        one_step = self.unscale(self.model.one_step(x, y, W))
        free_run = self.unscale(self.model.forecast(x, y[:, :W]))
        self._update("test", "one_step_", one_step, truth, 1)
        self._update("test", "free_run_", free_run, truth, 1)
        persistence = self.unscale(y[:, W - 1 : W]).expand_as(truth)
        self._update("test", "free_run_persistence_", persistence, truth, 1)
        if self.arx is not None:
            arx_one_step = self.unscale(self.arx.one_step(x, y, W))
            self._update("test", "arx_one_step_", arx_one_step, truth, 1)
            arx_free_run = self.unscale(self.arx.forecast(x, y[:, :W]))
            self._update("test", "arx_free_run_", arx_free_run, truth, 1)
        if batch_idx == 0 and self.hparams.plot and self.trainer.is_global_zero:
            self._plot(self.unscale(y[0, :W]), truth[0], one_step[0], free_run[0])

    def _plot(self, context: Tensor, truth: Tensor, one_step: Tensor, free_run: Tensor) -> None:
        root = Path(self.trainer.default_root_dir)
        for name, pred in (("free_run", free_run), ("one_step", one_step)):
            path = plot_forecast(
                truth,
                pred,
                root / f"test_{name}.png",
                context=context,
                labels=self.target_names,
                title=f"test span, {name.replace('_', '-')} forecast",
            )
            log.info(f"Forecast plot: {path}")

    def predict_step(self, batch, batch_idx: int) -> list[dict[str, Any]]:
        """Forecasts in the data's units: one dict per window, named by series and row."""
        x, _, y, ids = batch
        W = self.hparams.window
        pred = self.unscale(self.model.forecast(x, y[:, :W])).cpu()  # (B, H, O)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        out = []
        for b, window_id in enumerate(ids.tolist()):
            series, steps = (
                datamodule.describe("test", window_id)
                if hasattr(datamodule, "describe")
                else (None, None)
            )
            out.append(
                {
                    "series": series,
                    "steps": steps if steps is not None else list(range(W, W + pred.shape[1])),
                    "forecast": {
                        name: [round(float(v), 6) for v in pred[b, :, o]]
                        for o, name in enumerate(self.target_names)
                    },
                }
            )
        return out

    def format_predictions(self, predictions: Sequence[dict[str, Any]], datamodule) -> list[str]:
        """``series<TAB>step<TAB>value of each target`` per forecast row."""
        lines = []
        for window in predictions:
            values = list(window["forecast"].values())
            for h, step in enumerate(window["steps"]):
                row = "\t".join(f"{v[h]:.6g}" for v in values)
                lines.append(f"{window['series']}\t{step}\t{row}")
        return lines

    def on_test_start(self) -> None:
        if self.arx is None:
            return
        datamodule = self.trainer.datamodule
        if not hasattr(datamodule, "split_arrays"):
            raise ValueError(
                "ForecastingTask: the ARX baseline needs a datamodule with "
                "split_arrays('train') (rnnkit.data.TimeSeriesDataModule)"
            )
        self.arx.fit(datamodule.split_arrays("train"))
