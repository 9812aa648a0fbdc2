"""Past the end of the data: the time labels of the next steps and their covariates.

Forecasting ``S`` steps past the end of a series needs the times of those steps (continued
from the data's time axis) and, for a model with known-future covariates, their values: a CSV
(``future_path``) with the time column, those covariates and, in the long layout, the series
column, starting at the step after each series' last time.
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.series.reading import Layout, Series, read_series
from rnnkit.data.series.times import TimeAxis
from rnnkit.errors import ConfigError, DataFormatError


def labels_after(s: Series, steps: int, axis: TimeAxis) -> list[str]:
    """Time labels of the ``steps`` rows after the end of ``s``."""
    if s.times is None:
        return [str(len(s.targets) + k) for k in range(steps)]
    out, t = [], s.times[-1]
    for _ in range(steps):
        t = axis.next(t)
        out.append(axis.label(t))
    return out


def future_inputs(
    history: list[Series],
    steps: int,
    layout: Layout,
    known_inputs: int,
    future_path: str | None,
    axis: TimeAxis,
) -> list[np.ndarray]:
    """Covariates ``(steps, I)`` of the rows after each series' end: the first
    ``known_inputs`` columns from ``future_path``, the past-only ones 0 (never known)."""
    known = list(layout.input_columns)[:known_inputs]
    past = np.zeros((steps, len(layout.input_columns) - len(known)))  # never known
    if not known:
        return [past for _ in history]
    if future_path is None:
        raise ConfigError(
            f"data.future_path: the model reads covariates {known}; give a CSV with their "
            f"values for the {steps} steps after the end of each series"
        )
    columns = Layout(
        target_columns=known,  # read as values, no targets
        series_column=layout.series_column,
        time_column=layout.time_column,
        frequency=layout.frequency,
    )
    future, _ = read_series([(future_path, None)], columns)
    by_name = {f.name: f for f in future}
    out = []
    for s in history:
        f = by_name.get(s.name) if layout.series_column else future[0]
        if f is None:
            raise DataFormatError(
                f"no future covariates for series {s.name!r}", path=future_path, line=1
            )
        if len(f.targets) < steps:
            raise DataFormatError(
                f"series {s.name!r}: {len(f.targets)} future rows, expected {steps} "
                "(data.predict_steps)",
                path=future_path,
                line=1,
            )
        if s.times is not None and f.times is not None and f.times[0] != axis.next(s.times[-1]):
            path, _, line = f.where[0].rpartition(":")
            raise DataFormatError(
                f"series {s.name!r}: future rows start at {f.labels[0]!r}, expected the "
                f"step after the data's last time {s.labels[-1]!r}",
                path=path,
                line=int(line),
            )
        out.append(np.concatenate([f.targets[:steps], past], axis=1))
    return out
