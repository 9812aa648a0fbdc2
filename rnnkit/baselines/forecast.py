r"""Forecasting baselines and the M-competition errors, for one series at a time.

A series ``y (n + h,)`` is split into its training part ``y[:n]`` and a test part ``y[n:]`` of
``h`` points. Two evaluations:

- **origin**: ``h`` forecasts made at the end of the training part, nothing of the test part
  seen (what the M competitions score);
- **one-step**: each test point forecast from all true values before it (what a rolling
  one-step-ahead evaluation, and the current ``ForecastingTask``'s windows of horizon 1, score).

The baselines (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, sec. 5.2),
with :math:`T` the last known time and :math:`m` the seasonal period:

.. math::
    \text{naive: } \hat y_{T+k} = y_T \qquad
    \text{seasonal naive: } \hat y_{T+k} = y_{T + k - m\lceil k/m \rceil}

    \text{drift: } \hat y_{T+k} = y_T + k\,\frac{y_T - y_1}{T - 1} \qquad
    \text{mean: } \hat y_{T+k} = \frac1T \sum_{t \le T} y_t

and the least-squares ARX of :class:`rnnkit.models.arx.LinearARX` (the one the forecasting task
fits), its output order chosen by AIC on the training part only.

MASE (Hyndman & Koehler 2006) divides the test MAE by the in-sample MAE of the seasonal naive
forecast on the training part, as the M4 competition defines it:

.. math::
    \text{MASE} = \frac{\frac1h \sum_{k=1}^{h} |y_{n+k} - \hat y_{n+k}|}
                       {\frac{1}{n-m} \sum_{t=m+1}^{n} |y_t - y_{t-m}|}

Over many series it is computed per series and then averaged (:func:`mean_mase`), never on
pooled errors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rnnkit.models.arx import LinearARX


def mase_scale(y_train: np.ndarray, m: int = 1) -> float:
    """In-sample MAE of the seasonal naive forecast, :math:`\\frac{1}{n-m}\\sum |y_t - y_{t-m}|`.

    Raises ``ValueError`` when the training part has no more than ``m`` points or is constant
    at lag ``m`` (MASE would divide by zero).
    """
    y = np.asarray(y_train, dtype=float)
    if len(y) <= m:
        raise ValueError(f"MASE scale: {len(y)} training points, need more than m={m}")
    scale = float(np.mean(np.abs(y[m:] - y[:-m])))
    if scale == 0.0:
        raise ValueError(f"MASE scale: the training part is constant at lag m={m}")
    return scale


def mase(y_true: np.ndarray, y_pred: np.ndarray, scale: float) -> float:
    """Test MAE over the in-sample scale of :func:`mase_scale`."""
    return float(np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred)))) / scale


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)))


def mean_mase(scores: list[float]) -> float:
    """The M-competition MASE of many series: the mean of the per-series MASEs."""
    return float(np.mean(scores))


# --- origin forecasts: (y_train (n,), h, m) -> (h,) --------------------------------------------


def naive(y: np.ndarray, h: int, m: int = 1) -> np.ndarray:
    return np.full(h, y[-1], dtype=float)


def seasonal_naive(y: np.ndarray, h: int, m: int = 1) -> np.ndarray:
    last_season = y[-m:]
    return np.asarray([last_season[k % m] for k in range(h)], dtype=float)


def drift(y: np.ndarray, h: int, m: int = 1) -> np.ndarray:
    slope = (y[-1] - y[0]) / (len(y) - 1)
    return y[-1] + slope * np.arange(1, h + 1)


def mean(y: np.ndarray, h: int, m: int = 1) -> np.ndarray:
    return np.full(h, np.mean(y), dtype=float)


ORIGIN: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "naive": naive,
    "seasonal_naive": seasonal_naive,
    "drift": drift,
    "mean": mean,
}


def one_step(method: Callable[[np.ndarray, int, int], np.ndarray], y: np.ndarray, n: int, m: int):
    """One-step-ahead forecasts of ``y[n:]``, each from the true ``y[:t]`` (``(len(y) - n,)``)."""
    return np.asarray([method(y[:t], 1, m)[0] for t in range(n, len(y))])


# --- least-squares ARX -------------------------------------------------------------------------


def _as_tensor(v: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(1, len(v), -1))


def fit_arx(y: np.ndarray, u: np.ndarray | None, order: int, input_delays: int = 1) -> LinearARX:
    """:class:`LinearARX` with ``order`` output lags (and inputs ``u_t .. u_{t-L}``), fitted."""
    u = np.zeros((len(y), 0)) if u is None else np.asarray(u, dtype=np.float64).reshape(len(y), -1)
    model = LinearARX(u.shape[1], 1, input_delays, order).double()
    return model.fit([(u, np.asarray(y, dtype=np.float64).reshape(-1, 1))])


def arx_aic(y: np.ndarray, u: np.ndarray | None, orders: range, input_delays: int = 1) -> int:
    """The output order of least AIC (Akaike 1974), :math:`N\\log(\\mathrm{RSS}/N) + 2k`.

    Every order is scored on the same rows (those after the largest lag), so the criteria
    compare.
    """
    start = max(max(orders), input_delays)
    x = _as_tensor(np.zeros((len(y), 0)) if u is None else u)
    best, best_aic = orders[0], np.inf
    for order in orders:
        model = fit_arx(y, u, order, input_delays)
        fitted = model.one_step(x, _as_tensor(y), start)[0, :, 0].numpy()
        residual = np.asarray(y[start:], dtype=float) - fitted
        width = model.weight.shape[1]
        aic = len(residual) * np.log(np.mean(residual**2) + 1e-300) + 2 * width
        if aic < best_aic:
            best, best_aic = order, aic
    return best


def arx_forecasts(
    y: np.ndarray, u: np.ndarray | None, n: int, order: int, input_delays: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``(origin, one_step)`` forecasts of ``y[n:]`` by the ARX fitted on ``y[:n]``.

    ``u`` covers the test part too: inputs at time ``t`` are used to forecast ``y_t`` (known
    future covariates, ex-post), as the forecasting task's ARX does.
    """
    u_all = np.zeros((len(y), 0)) if u is None else np.asarray(u, dtype=np.float64)
    u_all = u_all.reshape(len(y), -1)
    model = fit_arx(y[:n], u_all[:n], order, input_delays)
    x, yt = _as_tensor(u_all), _as_tensor(y)
    origin = model.forecast(x, yt[:, :n])[0, :, 0].numpy()
    stepwise = model.one_step(x, yt, n)[0, :, 0].numpy()
    return origin, stepwise


def evaluate(
    y: np.ndarray,
    n: int,
    m: int,
    u: np.ndarray | None = None,
    max_order: int | None = None,
) -> dict[str, dict[str, float]]:
    """Every baseline on one series: ``{"origin"|"one_step": {"<baseline>_mase"|"_rmse": v}}``.

    ``y (N,)`` the whole series, ``n`` the length of its training part, ``m`` the seasonal
    period, ``u (N, I)`` optional exogenous inputs for the ARX, ``max_order`` the largest ARX
    output order AIC may pick (default ``min(2m or 8, n // 5)``). ``arx_order`` is reported too.
    """
    y = np.asarray(y, dtype=float)
    if not 0 < n < len(y):
        raise ValueError(f"training part of {n} points for a series of {len(y)}")
    h, scale, truth = len(y) - n, mase_scale(y[:n], m), y[n:]
    forecasts = {"origin": {}, "one_step": {}}
    for name, method in ORIGIN.items():
        forecasts["origin"][name] = method(y[:n], h, m)
        forecasts["one_step"][name] = one_step(method, y, n, m)
    top = max_order or min(2 * m if m > 1 else 8, n // 5)
    order = arx_aic(y[:n], None if u is None else np.asarray(u)[:n], range(1, max(top, 1) + 1))
    forecasts["origin"]["arx"], forecasts["one_step"]["arx"] = arx_forecasts(y, u, n, order)
    scores: dict[str, dict[str, float]] = {}
    for mode, preds in forecasts.items():
        scores[mode] = {"arx_order": order}
        for name, pred in preds.items():
            scores[mode][f"{name}_mase"] = mase(truth, pred, scale)
            scores[mode][f"{name}_rmse"] = rmse(truth, pred)
    return scores
