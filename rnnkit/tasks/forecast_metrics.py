r"""Forecast errors per series and pooled: MAE, MSE, RMSE, MAPE, sMAPE, MASE.

:class:`SeriesErrors` keeps every forecast point of an epoch (series, truth, forecast, the
series' MASE denominator) on the device, with no host sync per update, and computes at the end:

.. math::
    \text{MAE} = \overline{|e|}, \quad \text{MSE} = \overline{e^2}, \quad
    \text{MAPE} = 100\,\overline{|e| / |y|}\ (y \ne 0), \quad
    \text{sMAPE} = 200\,\overline{|e| / (|y| + |\hat y|)}

over all points (pooled), with :math:`e = \hat y - y`, and MASE as the M4 competition defines it
(Hyndman & Koehler 2006; Makridakis, Spiliotis & Assimakopoulos 2020): per series
:math:`\text{MAE}_s / d_s`, with :math:`d_s` the in-sample MAE of the seasonal naive forecast on
the series' training rows, then averaged over series (``mase``); ``mase_pooled`` is the pooled
MAE over the pooled denominator instead. Series whose :math:`d_s` is undefined (constant
training rows) are left out of ``mase``. Several targets: every score is averaged over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rnnkit.metrics import Metric

NAMES = ("mae", "mse", "rmse", "mape", "smape", "mase", "mase_pooled")


class SeriesErrors(Metric):
    """Forecast points of one evaluation; see the module docstring.

    Args:
        pooled_scale: per target, the pooled MASE denominator.
    """

    def __init__(self, pooled_scale: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("pooled_scale", torch.tensor(list(pooled_scale)), persistent=False)
        O = len(self.pooled_scale)
        self.add_state("series", torch.empty(0, dtype=torch.long), reduce="cat")
        for name in ("truth", "pred", "den"):
            self.add_state(name, torch.empty(0, O), reduce="cat")

    def _update(self, pred: Tensor, truth: Tensor, series: Tensor, den: Tensor) -> None:
        """Windows: ``pred``, ``truth (B, S, O)`` in data units, ``series (B,)``, ``den (B, O)``;
        or points: ``pred``, ``truth``, ``den (N, O)`` and ``series (N,)``."""
        if truth.dim() == 3:
            B, S, O = truth.shape
            pred, truth = pred.reshape(B * S, O), truth.reshape(B * S, O)
            series = series[:, None].expand(B, S).reshape(-1)
            den = den[:, None].expand(B, S, O).reshape(B * S, O)
        self.series.append(series)
        self.truth.append(truth)
        self.pred.append(pred.to(truth.dtype))
        self.den.append(den.to(truth.dtype))

    def _points(self):
        return tuple(self.rows(name) for name in ("series", "truth", "pred", "den"))

    def _compute(self) -> dict[str, Tensor]:
        series, truth, pred, den = self._points()
        error = (pred - truth).abs()
        out = {
            "mae": error.mean(),
            "mse": (error**2).mean(),
            "mape": 100 * (error / truth.abs())[truth != 0].mean(),
            "smape": 200 * torch.nan_to_num(error / (truth.abs() + pred.abs())).mean(),
            "mase_pooled": (error.mean(0) / self.pooled_scale.to(error)).mean(),
        }
        out["rmse"] = out["mse"].sqrt()
        table = self._per_series(series, truth, pred, den)
        mase = table["mase"][torch.isfinite(table["mase"])]
        out["mase"] = mase.mean() if len(mase) else torch.tensor(float("nan"))
        return {name: out[name] for name in NAMES}

    def per_series(self) -> dict[str, Tensor]:
        """``series``, ``points``, ``mae``, ``rmse``, ``smape``, ``mase``: one entry per series."""
        return self._per_series(*self._points())

    @staticmethod
    def _per_series(series, truth, pred, den) -> dict[str, Tensor]:
        ids, inverse = torch.unique(series, return_inverse=True)
        K, O = len(ids), truth.shape[1]

        def mean(values: Tensor) -> Tensor:  # (N, O) -> (K, O) per-series means
            total = values.new_zeros(K, O).index_add_(0, inverse, values)
            return total / counts[:, None]

        counts = truth.new_zeros(K).index_add_(0, inverse, torch.ones_like(truth[:, 0]))
        error = (pred - truth).abs()
        series_den = den.new_zeros(K, O).index_copy_(0, inverse, den)
        return {
            "series": ids,
            "points": counts,
            "mae": mean(error).mean(1),
            "rmse": mean(error**2).sqrt().mean(1),
            "smape": 200 * mean(torch.nan_to_num(error / (truth.abs() + pred.abs()))).mean(1),
            "mase": (mean(error) / series_den).mean(1),
        }
