r"""Seeded synthetic system identification: NARMA, a nonlinear system driven by a random input.

NARMA of order :math:`n` (Atiya & Parlos 2000; NARMA-10 for :math:`n = 10`):

.. math::
    y_{t+1} = 0.3\, y_t + 0.05\, y_t \sum_{i=0}^{n-1} y_{t-i} + 1.5\, u_{t-n+1} u_t + 0.1,
    \qquad u_t \sim U[0, 0.5]

The output depends on its own last :math:`n` values and on products of inputs and outputs,
which a linear ARX model cannot represent: the benchmark on which a NARX network should beat a
least-squares ARX fit of the same lags, in free run.
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.series import Series, TimeSeriesDataModule


def narma(length: int, order: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One NARMA series: ``u (length,)`` input and ``y (length,)`` output, from ``seed``.

    Starts from ``y = 0``; the first ``2 * order`` steps are dropped as burn-in.
    """
    if length < 1 or order < 1:
        raise ValueError(f"narma: length and order must be positive, got {length}, {order}")
    rng = np.random.default_rng(seed)
    burn = 2 * order
    n = length + burn
    u = rng.uniform(0.0, 0.5, size=n)
    y = np.zeros(n)
    for t in range(order - 1, n - 1):
        window = y[t - order + 1 : t + 1]
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * window.sum() + 1.5 * u[t - order + 1] * u[t] + 0.1
    if not np.all(np.isfinite(y)):
        raise ValueError(f"narma: order {order} diverged for seed {seed}; try another seed")
    return u[burn:], y[burn:]


class NARMADataModule(TimeSeriesDataModule):
    """NARMA system identification: input ``u`` (exogenous), output ``y`` (target).

    Args:
        length: rows per series.
        order: NARMA order n (10 for NARMA-10).
        num_series: independent series (seeds ``seed, seed + 1, ...``), one global model.
        seed: seed of the first series.
        **kwargs: window, horizon, fractions, batch size... as :class:`TimeSeriesDataModule`.
    """

    def __init__(
        self, length: int = 2000, order: int = 10, num_series: int = 1, seed: int = 0, **kwargs
    ) -> None:
        kwargs.setdefault("target_columns", ("y",))
        kwargs.setdefault("input_columns", ("u",))
        super().__init__(**kwargs)

    @property
    def source(self) -> str:
        hp = self.hparams
        return f"NARMA-{hp.order} (seed {hp.seed})"

    def load_series(self) -> list[Series]:
        hp = self.hparams
        series = []
        for k in range(hp.num_series):
            u, y = narma(hp.length, hp.order, hp.seed + k)
            series.append(
                Series(
                    name=f"narma{hp.order}_{hp.seed + k}",
                    targets=y[:, None],
                    inputs=u[:, None],
                    labels=[str(i) for i in range(hp.length)],
                )
            )
        return series
