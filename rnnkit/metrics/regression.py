r"""Errors of numeric predictions over every element of every update.

.. math::
    \text{MSE} = \frac{1}{N} \sum_i (\hat y_i - y_i)^2, \quad
    \text{RMSE} = \sqrt{\text{MSE}}, \quad
    \text{MAE} = \frac{1}{N} \sum_i |\hat y_i - y_i|
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.metrics.base import Metric


def _check_shapes(preds: Tensor, target: Tensor) -> None:
    if preds.shape != target.shape:  # shapes are metadata: no host sync
        raise ValueError(
            f"predictions {tuple(preds.shape)} and targets {tuple(target.shape)} differ in shape"
        )


class MeanSquaredError(Metric):
    """Mean squared error; its square root with ``squared=False`` (the target's unit).

    ``update(preds, target)``: tensors of one shape.
    """

    def __init__(self, squared: bool = True) -> None:
        super().__init__()
        self.squared = squared
        self.add_state("sum_squared_error", torch.tensor(0.0))
        self.add_state("total", torch.tensor(0))

    def _update(self, preds: Tensor, target: Tensor) -> None:
        _check_shapes(preds, target)
        diff = preds.reshape(-1) - target.reshape(-1)  # (N,)
        self.sum_squared_error += (diff * diff).sum()
        self.total += target.numel()

    def _compute(self) -> Tensor:
        mse = self.sum_squared_error / self.total
        return mse if self.squared else mse.sqrt()


class MeanAbsoluteError(Metric):
    """Mean absolute error. ``update(preds, target)``: tensors of one shape."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("sum_abs_error", torch.tensor(0.0))
        self.add_state("total", torch.tensor(0))

    def _update(self, preds: Tensor, target: Tensor) -> None:
        _check_shapes(preds, target)
        self.sum_abs_error += (preds.reshape(-1) - target.reshape(-1)).abs().sum()
        self.total += target.numel()

    def _compute(self) -> Tensor:
        return self.sum_abs_error / self.total
