r"""Running aggregates of numbers: the (weighted) mean, the largest and the smallest value.

.. math::
    \text{mean} = \frac{\sum_i w_i v_i}{\sum_i w_i}

over every element :math:`v_i` of every update (weights default to 1), in the default float
dtype like the rest of the states.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.metrics.base import Metric


def _as_state(value: Tensor | float, like: Tensor) -> Tensor:
    """``value`` as a tensor of the state's dtype and device (no copy when it already is)."""
    if isinstance(value, Tensor) and value.dtype == like.dtype and value.device == like.device:
        return value  # the common case, without the two calls below (this runs every step)
    return torch.as_tensor(value, device=like.device).to(like.dtype)


class Mean(Metric):
    """Weighted running mean of every element updated since the last reset (NaN if none).

    ``update(value, weight=1.0)``: ``value`` of any shape, ``weight`` broadcast to it (e.g.
    one batch mean weighted by its token count).
    """

    def __init__(self) -> None:
        super().__init__()
        dtype = torch.get_default_dtype()
        self.add_state("mean_value", torch.tensor(0.0, dtype=dtype))
        self.add_state("weight", torch.tensor(0.0, dtype=dtype))

    def _update(self, value: Tensor | float, weight: Tensor | float = 1.0) -> None:
        value, weight = _as_state(value, self.mean_value), _as_state(weight, self.weight)
        if value.dim() == 0 and weight.dim() == 0:  # a batch mean and its count, every step
            self.mean_value.addcmul_(value, weight)  # in place: no nn.Module attribute set
            self.weight.add_(weight)
            return
        weight = torch.broadcast_to(weight, value.shape)
        self.mean_value.add_((value * weight).sum())
        self.weight.add_(weight.sum())

    def _compute(self) -> Tensor:
        return self.mean_value / self.weight


class Max(Metric):
    """The largest element updated since the last reset (``-inf`` if none)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("max_value", torch.tensor(-float("inf")), reduce="max")

    def _update(self, value: Tensor | float) -> None:
        value = _as_state(value, self.max_value)
        if value.numel():  # numel is shape metadata: no host sync
            self.max_value = torch.maximum(self.max_value, value.max())

    def _compute(self) -> Tensor:
        return self.max_value.clone()  # a logged value must not change with the next update


class Min(Metric):
    """The smallest element updated since the last reset (``inf`` if none)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("min_value", torch.tensor(float("inf")), reduce="min")

    def _update(self, value: Tensor | float) -> None:
        value = _as_state(value, self.min_value)
        if value.numel():
            self.min_value = torch.minimum(self.min_value, value.min())

    def _compute(self) -> Tensor:
        return self.min_value.clone()
