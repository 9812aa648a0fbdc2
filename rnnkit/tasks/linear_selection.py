r"""Choosing a forecaster's linear part by an origin backtest inside the training part.

``task.select_linear: origin_backtest`` picks the structure of the linear skip of
``model=forecast_narx`` (:class:`rnnkit.models.LinearARX`: which seasonal lags it reads beside
``1 .. K``, and whether it has an intercept) the way statsforecast and darts pick a model: by
how it forecasts the past, never the test split.

- **The backtest** (:meth:`rnnkit.data.TimeSeriesDataModule.backtest`): each series' in-sample
  part (the rows before its first test row) loses its last ``h`` rows, ``h`` the length of that
  test run (what the origin evaluation forecasts); the scaler is refitted on what is left.
- **The candidates** (:func:`candidates`), a small fixed set: the seasonal lags as configured,
  none, :math:`\{m, m + 1\}` (the multiplicative seasonal AR of Box & Jenkins 1970) and
  :math:`\{m, 2m\}` (two seasons back), for the data's season ``m > 1``; each with and without
  the intercept (a near-unit-root AR amplifies a small intercept over a long free run); at most
  8, fewer where two give the same lags, and none that reads more than ``data.window`` rows.
- **The score**: each candidate is fitted (least squares, or least absolute deviations for
  ``task.loss=mae``) on the shortened training rows, forecasts the ``h`` held-out rows closed
  loop from their origin, and is scored in the data's units by the M4 mean MASE over the
  ``S`` series, with ``n_s`` the rows left in series ``s``:

  .. math::
      \text{score} = \frac{1}{S} \sum_s \frac{\frac{1}{h} \sum_{t=n_s}^{n_s+h-1}
      |y_t - \hat y_t|}{\frac{1}{n_s - m} \sum_{t=m}^{n_s-1} |y_t - y_{t-m}|}
- **The choice**: the lowest score; a tie keeps the earlier candidate (the configured one
  first). The task then fits the winner on the whole training part (``fit_linear``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from rnnkit.models.arx import LinearARX
from rnnkit.tasks.forecast_metrics import SeriesErrors
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

SELECTIONS = (None, "origin_backtest")

Candidate = tuple[tuple[int, ...], bool]  # (seasonal lags, intercept)


def candidates(linear: LinearARX, season: int, window: int) -> list[Candidate]:
    """The structures tried for ``linear``, the configured one first, then in the order of the
    module docstring; lags ``1 .. K`` it reads anyway are dropped, duplicates and candidates
    reading more than ``window`` rows left out."""
    m, K = season, linear.output_delays
    lag_sets = [linear.seasonal_lags, []] + ([[m, m + 1], [m, 2 * m]] if m > 1 else [])
    out: list[Candidate] = []
    for lags in lag_sets:
        lags = tuple(k for k in lags if k > K)
        for intercept in (linear.has_intercept, not linear.has_intercept):
            if (lags, intercept) not in out and max(lags, default=0) <= window:
                out.append((lags, intercept))
    return out


def origin_mase(forecaster: nn.Module, datamodule, to_data_units: Callable[..., Tensor]) -> float:
    """The M4 mean MASE of ``forecaster``'s free run over each span of the ``test`` split, in
    the data's units (``to_data_units``: :meth:`ForecastingTask.to_data_units`)."""
    W = datamodule.hparams.window
    metric = SeriesErrors(datamodule.info["mase_scale"])
    den = torch.as_tensor(datamodule.mase_den, dtype=torch.float32)
    for batch in datamodule.span_dataloader("test"):
        pred = to_data_units(forecaster.forecast(batch.x, batch.y[:, :W]), batch, one_step=False)
        metric.update(pred, batch.raw[:, W:], batch.series, den[batch.series])
    return float(metric.compute()["mase"])


def select_linear(
    linear: LinearARX,
    datamodule,
    to_data_units: Callable[..., Tensor],
    loss: str = "mse",
) -> list[tuple[Candidate, float]]:
    """Give ``linear`` the candidate structure with the best origin backtest (its weights
    restart unfitted); return every candidate tried with its backtest MASE."""
    view = datamodule.backtest()
    pieces = view.split_arrays("train")
    scores = []
    for lags, intercept in candidates(linear, view.info["season"], view.hparams.window):
        arx = LinearARX(
            linear.input_size,
            linear.output_size,
            linear.input_delays,
            linear.output_delays,
            seasonal_lags=lags,
            intercept=intercept,
        ).fit(pieces, loss)
        scores.append(((lags, intercept), origin_mase(arx, view, to_data_units)))
    best = min(scores, key=lambda item: item[1] if math.isfinite(item[1]) else math.inf)
    for (lags, intercept), score in scores:
        log.info(
            f"select_linear (origin backtest): seasonal lags {list(lags)}, intercept "
            f"{intercept}: MASE {score:.4f}{'  <- chosen' if (lags, intercept) == best[0] else ''}"
        )
    linear.set_structure(*best[0])
    return scores
