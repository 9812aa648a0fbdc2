"""The classical forecasts beside every model score: naive, seasonal naive, drift, mean.

Each is :mod:`rnnkit.baselines.forecast`'s, applied to the whole true past of each forecast
(not only the model's ``window`` rows), per target column, in the data's units. They do not
depend on the model, so the task computes them once per split and evaluation, on the host.
With fewer than ``m`` past rows the seasonal naive forecast, and with one past row the drift,
fall back to the naive one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from rnnkit.baselines.forecast import ORIGIN, naive, seasonal_naive

#: evaluation kinds: each forecast row from the end of its window's context (``windows``), the
#: whole span from its start (``origin``), or each span row from the true rows before it
EVALUATIONS = ("windows", "origin", "one_step")


def _forecast(method: Callable, history: np.ndarray, h: int, m: int) -> np.ndarray:
    """``h`` rows after ``history (n, O)``, column by column -> ``(h, O)``."""
    n = len(history)
    if (method is seasonal_naive and n < m) or (method.__name__ == "drift" and n < 2):
        method = naive
    return np.stack([method(history[:, o], h, m) for o in range(history.shape[1])], axis=1)


def baseline_forecasts(
    targets: Sequence[np.ndarray], items: Sequence[tuple[int, int, int]], kind: str, m: int
) -> Iterator[tuple[str, int, np.ndarray, np.ndarray]]:
    """``(baseline, series, truth (S, O), forecast (S, O))`` of every item.

    ``targets``: each series' ``(N, O)`` values; ``items``: ``(series, a, b)``, the rows
    ``[a, b)`` forecast (from ``targets[k][:a]``, or for ``one_step`` each row from the rows
    before it).
    """
    for name, method in ORIGIN.items():
        for k, a, b in items:
            y = targets[k]
            if kind == "one_step":
                pred = np.concatenate([_forecast(method, y[:t], 1, m) for t in range(a, b)])
            else:
                pred = _forecast(method, y[:a], b - a, m)
            yield name, k, y[a:b], pred
