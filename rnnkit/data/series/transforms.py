r"""Target transforms and per-series scaling: what the model sees, and the way back.

The targets :math:`y` of each series go through, in this order,

.. math::
    w_t = f(y_t), \qquad v_t = (1 - B)^d (1 - B^m)\, w_t, \qquad
    z_t = \frac{v_t - \mu_s}{\sigma_s}

with :math:`f` the identity, :math:`\log` or :math:`\log(1 + y)` (``transform``), :math:`B` the
lag operator, :math:`d \in \{0, 1\}` (``difference``) and :math:`m` (``seasonal_difference``,
0 for none; Box & Jenkins 1970). The first :math:`d + m` rows of a series have no :math:`v` and
start no window. The model is trained on :math:`z`; its forecasts are taken back by
:meth:`TargetPipeline.invert`: with :math:`P(B) = (1 - B)^d (1 - B^m) = 1 - \sum_k a_k B^k`,

.. math::
    \hat w_t = \hat v_t + \sum_k a_k \tilde w_{t-k}, \qquad \hat y_t = f^{-1}(\hat w_t)

where :math:`\tilde w` is the true past (one step ahead) or, past the forecast origin, the
forecasts themselves (recursive). All metrics are computed on :math:`\hat y`, in the data's
units.

Per-series scaling (``scale``), fitted on each series' training rows of :math:`v`:
``standard`` (:math:`\mu, \sigma` the mean and standard deviation), ``mase`` (:math:`\mu` the
mean, :math:`\sigma` the in-sample MAE of the seasonal naive forecast at lag ``season``, the MASE
denominator of Hyndman & Koehler 2006 that N-BEATS and the Monash archive scale errors by), or
``none``. Covariates are standardised per series on the training rows (unless ``none``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import ConfigError, DataFormatError

TRANSFORMS = (None, "log", "log1p")
SCALES = ("standard", "mase", "none")


def in_sample_naive_mae(values: np.ndarray, mask: np.ndarray, lag: int) -> np.ndarray:
    r"""Per column, :math:`\text{mean} |v_t - v_{t-lag}|` over pairs with both rows in ``mask``.

    ``values (N, C)``, ``mask (N,)`` bool. A column with no pair, or a constant one, gets NaN.
    """
    pair = mask[lag:] & mask[:-lag] if len(mask) > lag else np.zeros(0, dtype=bool)
    if not pair.any():
        return np.full(values.shape[1], np.nan)
    mae = np.abs(values[lag:] - values[:-lag])[pair].mean(axis=0)
    return np.where(mae > 1e-12, mae, np.nan)


@dataclass
class TargetPipeline:
    """The invertible target transform: ``transform``, then the differences."""

    transform: str | None = None
    difference: int = 0
    seasonal_difference: int = 0

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise ConfigError(
                f"data.transform: expected one of {list(TRANSFORMS)}, got {self.transform!r}"
            )
        if self.difference not in (0, 1):
            raise ConfigError(f"data.difference: expected 0 or 1, got {self.difference!r}")
        if isinstance(self.seasonal_difference, bool) or self.seasonal_difference < 0:
            raise ConfigError(
                "data.seasonal_difference: expected a period >= 0, got "
                f"{self.seasonal_difference!r}"
            )
        poly = np.ones(1)
        for _ in range(self.difference):
            poly = np.convolve(poly, [1.0, -1.0])
        if self.seasonal_difference:
            poly = np.convolve(poly, [1.0] + [0.0] * (self.seasonal_difference - 1) + [-1.0])
        #: a_k of w_t = v_t + sum_k a_k w_{t-k}, for k = 1 .. lost
        self.coefficients = [(k, float(-poly[k])) for k in range(1, len(poly)) if poly[k] != 0]

    @property
    def lost(self) -> int:
        """Rows at the start of a series without a differenced value."""
        return self.difference + self.seasonal_difference

    def check(self, y: np.ndarray, where: Sequence[str] | None, name: str) -> None:
        """Refuse values outside the transform's domain, naming the first such row."""
        bad = None
        if self.transform == "log":
            bad, need = np.argwhere(y <= 0), "> 0 for transform: log (log1p takes zeros)"
        elif self.transform == "log1p":
            bad, need = np.argwhere(y <= -1), "> -1 for transform: log1p"
        if bad is not None and len(bad):
            r = int(bad[0][0])
            path, _, line = (where[r] if where else f"{name}:0").rpartition(":")
            raise DataFormatError(
                f"series {name!r}: target {y[r].tolist()} must be {need}",
                path=path or name,
                line=int(line) or None,
            )

    def level(self, y):
        """:math:`w = f(y)`, for numpy arrays and tensors alike."""
        lib = torch if isinstance(y, Tensor) else np
        if self.transform == "log":
            return lib.log(y)
        if self.transform == "log1p":
            return lib.log1p(y)
        return y

    def unlevel(self, w: Tensor) -> Tensor:
        """:math:`y = f^{-1}(w)`."""
        if self.transform == "log":
            return torch.exp(w)
        if self.transform == "log1p":
            return torch.expm1(w)
        return w

    def forward(self, y: np.ndarray) -> np.ndarray:
        """``y (N, O)`` -> ``v (N, O)``; the first :attr:`lost` rows are 0 (never used)."""
        w = self.level(np.asarray(y, dtype=np.float64))
        v = w.copy()
        for k, a in self.coefficients:
            v[k:] -= a * w[:-k]
        v[: self.lost] = 0.0
        return v

    def invert(self, v_hat: Tensor, raw: Tensor, context: int, one_step: bool) -> Tensor:
        """Forecasts ``v_hat (B, S, O)`` of rows ``context .. context + S`` back to data units.

        ``raw (B, T, O)``: the window's targets in data units (rows before ``context`` are the
        known past; with ``one_step`` the true rows after it are the past of the next step).
        """
        if not self.coefficients:
            return self.unlevel(v_hat)
        w = self.level(raw)
        if one_step:  # every step from the true past
            S = v_hat.shape[1]
            past = [a * w[:, context - k : context - k + S] for k, a in self.coefficients]
            return self.unlevel(v_hat + sum(past))
        history = list(w[:, :context].unbind(1))
        for s in range(v_hat.shape[1]):  # recursive: forecasts stand in for the unknown past
            history.append(v_hat[:, s] + sum(a * history[-k] for k, a in self.coefficients))
        return self.unlevel(torch.stack(history[context:], dim=1))


@dataclass
class SeriesScaler:
    """Per-series affine maps of targets (``shift``, ``scale``) and inputs (``mean``, ``std``).

    Arrays are ``(K, O)`` and ``(K, I)`` for ``K`` series, keyed by name in the state.
    """

    names: list[str]
    shift: np.ndarray
    scale: np.ndarray
    input_mean: np.ndarray
    input_std: np.ndarray

    @classmethod
    def fit(
        cls,
        names: list[str],
        v: Sequence[np.ndarray],
        inputs: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        method: str,
        season: int,
    ) -> SeriesScaler:
        """Fit on the rows of ``masks`` (training rows with a differenced value)."""
        if method not in SCALES:
            raise ConfigError(f"data.scale: expected one of {list(SCALES)}, got {method!r}")
        shift, scale, mean, std = [], [], [], []
        for vk, uk, mk in zip(v, inputs, masks, strict=True):
            O, I = vk.shape[1], uk.shape[1]
            if method == "none" or not mk.any():
                shift.append(np.zeros(O))
                scale.append(np.ones(O))
                mean.append(np.zeros(I))
                std.append(np.ones(I))
                continue
            spread = vk[mk].std(axis=0)
            if method == "mase":
                spread = in_sample_naive_mae(vk, mk, season)
                spread = np.where(np.isnan(spread), vk[mk].std(axis=0), spread)
            shift.append(vk[mk].mean(axis=0))
            scale.append(np.where(spread > 1e-12, spread, 1.0))
            mean.append(uk[mk].mean(axis=0))
            s = uk[mk].std(axis=0)
            std.append(np.where(s > 1e-12, s, 1.0))
        return cls(
            list(names), *(np.asarray(a, dtype=np.float64) for a in (shift, scale, mean, std))
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            name: {
                "shift": self.shift[k].tolist(),
                "scale": self.scale[k].tolist(),
                "input_mean": self.input_mean[k].tolist(),
                "input_std": self.input_std[k].tolist(),
            }
            for k, name in enumerate(self.names)
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take the saved maps of every series the state knows (by name); keep the rest."""
        for k, name in enumerate(self.names):
            if name in state:
                saved = state[name]
                self.shift[k], self.scale[k] = saved["shift"], saved["scale"]
                self.input_mean[k], self.input_std[k] = saved["input_mean"], saved["input_std"]
