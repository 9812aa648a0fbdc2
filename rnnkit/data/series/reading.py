"""Reading series from CSV files: long, wide, or one column per series; sorted and checked.

Three layouts, all with a header line naming the columns, and wide rows in any of them:

- **long**: a ``series_column`` names the series of each row (``series_id, time, y, u``);
- **one series**: no series column; every row belongs to one series named after the file;
- **one column per series** (``series_columns: [a, b, ...]``): each listed column is the target
  of its own series (statsmodels' macrodata, 12 columns), sharing the time and input columns;
- **wide rows** (``wide_periods: [JAN, ..., DEC]``): each row holds consecutive periods of one
  series in the listed columns, read as that many rows in column order (statsmodels' elnino:
  a year a row, 12 months). The target is ``y``; the row's time cell ``1950`` and the period's
  position make the time (``1950-01`` with ``frequency: M``, ``1950Q1`` with ``Q``). With a
  ``series_column`` the rows may be of several series; covariates are not read this way.

Rows may come in any order: each series is sorted by its time column (stable). Two rows of one
series at the same time, and a hole in the time grid (see :mod:`rnnkit.data.series.times`), are
refused with the file and line. Empty cells (``""``, ``NA``, ``NaN``) are missing values:
refused (``missing: error``) or filled by linear interpolation in time within the series
(``missing: interpolate``; the first and last known values are held at the ends).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.readers import read_text
from rnnkit.data.series.times import TimeAxis, join_time_cells
from rnnkit.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    EmptyDataError,
    NonFiniteValueError,
)

MISSING = frozenset({"", "na", "nan", "n/a", "null", "none"})
MISSING_POLICIES = ("error", "interpolate")


@dataclass
class Series:
    """One series in time order.

    Attributes:
        name: the series id (the file name for a one-series file, the column for wide files).
        targets: ``(N, O)`` float64 target values (missing ones filled by the policy).
        inputs: ``(N, I)`` float64 covariates (``I`` may be 0).
        labels: ``N`` time labels as text (the file's cells, or the row index).
        split: ``N`` split labels (``train``, ``val``, ``test``, ``test2``, ...), or ``None``.
        times: ``N`` parsed times (numbers or :class:`pandas.Period`), or ``None`` (no time).
        where: ``N`` ``file:line`` of each row, for errors.
    """

    name: str
    targets: np.ndarray
    inputs: np.ndarray
    labels: list[str]
    split: list[str] | None = None
    times: list[Any] | None = None
    where: list[str] | None = None


@dataclass
class Layout:
    """Which columns mean what (the data config's keys of the same names)."""

    target_columns: Sequence[str] = ()
    input_columns: Sequence[str] = ()
    series_column: str | None = None
    series_columns: Sequence[str] = ()
    split_column: str | None = None
    time_column: str | Sequence[str] | None = None
    frequency: Any = None
    missing: str = "error"
    wide_periods: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.series_columns and (self.target_columns or self.series_column):
            raise ConfigError(
                "data.series_columns: each listed column is a series' target; leave "
                "target_columns and series_column empty"
            )
        if self.wide_periods and (self.target_columns or self.series_columns):
            raise ConfigError(
                "data.wide_periods: the listed columns are the target's consecutive periods; "
                "leave target_columns and series_columns empty"
            )
        if self.wide_periods and self.input_columns:
            raise ConfigError(
                "data.wide_periods: covariates are not read from wide rows; leave "
                "input_columns and past_input_columns empty"
            )
        if not self.series_columns and not self.wide_periods and not self.target_columns:
            raise ConfigError(
                "data.target_columns is empty; name at least one column to forecast "
                "(or series_columns for one series per column)"
            )
        if self.missing not in MISSING_POLICIES:
            raise ConfigError(
                f"data.missing: expected one of {list(MISSING_POLICIES)}, got {self.missing!r}"
            )

    @property
    def time_columns(self) -> list[str]:
        if self.time_column is None:
            return []
        return [self.time_column] if isinstance(self.time_column, str) else list(self.time_column)

    @property
    def target_names(self) -> list[str]:
        return ["y"] if self.series_columns or self.wide_periods else list(self.target_columns)


@dataclass
class _Row:
    series: str
    time: str | None
    values: list[float]
    split: str | None
    where: str


def _cell_value(cell: str, path: Path, line: int, column: str) -> float:
    """A number, or NaN for a missing cell; anything else is a one-line error."""
    if cell.strip().lower() in MISSING:
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise DataFormatError(
            f"column {column!r} is {cell!r}, expected a number", path=path, line=line
        ) from None
    if not math.isfinite(value):
        raise NonFiniteValueError(
            f"column {column!r} is {cell.strip()!r}, expected a finite number",
            path=path,
            line=line,
        )
    return value


def _read_rows(path: Path, layout: Layout, split_label: str | None, name: str) -> list[_Row]:
    """Every data row of ``path`` as :class:`_Row` (one per series column in the wide layout);
    ``name`` names the series of a one-series file."""
    if not path.is_file():
        raise DataFileNotFoundError(path, "CSV time-series file")
    with io.StringIO(read_text(path), newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise EmptyDataError(
                "the file is empty, expected a header line naming the columns", path=path
            )
        header = [h.strip() for h in header]
        where = {name: i for i, name in enumerate(header)}
        series_columns = list(layout.series_columns)
        numeric = [*layout.target_columns, *layout.input_columns, *layout.wide_periods]
        wanted = [*numeric, *series_columns, *layout.time_columns]
        wanted += [c for c in (layout.series_column, layout.split_column) if c is not None]
        for column in wanted:
            if column not in where:
                raise DataFormatError(
                    f"no column {column!r} in the header (columns are {header})", path=path, line=1
                )
        rows = []
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    f"expected {len(header)} cells as in the header, got {len(row)}",
                    path=path,
                    line=line,
                )
            here = f"{path}:{line}"
            cells = [row[where[c]].strip() for c in layout.time_columns]
            if any(not c for c in cells):
                raise DataFormatError(
                    f"time column {layout.time_column!r} is empty", path=path, line=line
                )
            time = join_time_cells(cells, layout.frequency) if cells else None
            split = split_label
            if layout.split_column is not None:
                split = row[where[layout.split_column]].strip().lower()
                if not split:
                    raise DataFormatError(
                        f"column {layout.split_column!r} is empty, expected a split label "
                        "(train, val, test, test2, ...)",
                        path=path,
                        line=line,
                    )
            inputs = [_cell_value(row[where[c]], path, line, c) for c in layout.input_columns]
            if series_columns:
                for c in series_columns:
                    value = _cell_value(row[where[c]], path, line, c)
                    rows.append(_Row(c, time, [value, *inputs], split, here))
                continue
            series = name
            if layout.series_column is not None:
                series = row[where[layout.series_column]].strip()
                if not series:
                    raise DataFormatError(
                        f"column {layout.series_column!r} (the series id) is empty",
                        path=path,
                        line=line,
                    )
            if layout.wide_periods:  # one row per period, in column order
                for k, c in enumerate(layout.wide_periods, start=1):
                    t = join_time_cells([*cells, str(k)], layout.frequency) if cells else None
                    rows.append(
                        _Row(series, t, [_cell_value(row[where[c]], path, line, c)], split, here)
                    )
                continue
            targets = [_cell_value(row[where[c]], path, line, c) for c in layout.target_columns]
            rows.append(_Row(series, time, [*targets, *inputs], split, here))
    if not rows:
        raise EmptyDataError("no data rows after the header line", path=path)
    return rows


def _interpolate(values: np.ndarray, names: list[str], where: list[str], missing: str):
    """Fill NaN cells of ``values (N, C)`` by linear interpolation, or refuse the first one."""
    holes = np.isnan(values)
    if not holes.any():
        return values
    if missing == "error":
        r, c = map(int, np.argwhere(holes)[0])
        path, _, line = where[r].rpartition(":")
        raise DataFormatError(
            f"column {names[c]!r} has a missing value (an empty, NA or NaN cell); set "
            "data.missing=interpolate to fill missing values linearly in time",
            path=path,
            line=int(line),
        )
    out = values.copy()
    index = np.arange(len(values))
    for c in range(values.shape[1]):
        known = ~holes[:, c]
        if not known.any():
            path, _, line = where[0].rpartition(":")
            raise DataFormatError(
                f"column {names[c]!r} has no value in this series", path=path, line=int(line)
            )
        out[:, c] = np.interp(index, index[known], values[known, c])
    return out


def read_series(
    files: Sequence[tuple[str | Path, str | None]], layout: Layout
) -> tuple[list[Series], TimeAxis]:
    """Read, merge, sort and check the series of ``files``.

    Args:
        files: ``(path, split_label)`` pairs; a label marks every row of that file (a separate
            test file, say); ``None`` takes labels from ``split_column`` (or none at all).
        layout: the columns.

    Returns:
        The series in the order of their first row, and the time axis they share.
    """
    name = Path(files[0][0]).stem  # a one-series layout: the series of the first file
    rows = [r for path, label in files for r in _read_rows(Path(path), layout, label, name)]
    groups: dict[str, list[_Row]] = {}
    for r in rows:
        groups.setdefault(r.series, []).append(r)
    axis = TimeAxis("none")
    if layout.time_columns:
        axis = TimeAxis.infer(
            [[r.time for r in g] for g in groups.values()], layout.frequency, "data.frequency"
        )
    value_names = [*layout.target_names, *layout.input_columns]
    n_targets = len(layout.target_names)
    series = []
    for series_name, group in groups.items():
        times = None
        if axis.kind != "none":
            parsed = []
            for r in group:
                try:
                    parsed.append(axis.parse(r.time))
                except ValueError as error:
                    path, _, line = r.where.rpartition(":")
                    raise DataFormatError(str(error), path=path, line=int(line)) from None
            order = sorted(range(len(group)), key=parsed.__getitem__)  # stable
            group, times = [group[i] for i in order], [parsed[i] for i in order]
            _check_grid(series_name, group, times, axis)
        where = [r.where for r in group]
        values = _interpolate(
            np.asarray([r.values for r in group], dtype=np.float64).reshape(len(group), -1),
            value_names,
            where,
            layout.missing,
        )
        has_split = any(r.split is not None for r in group)
        series.append(
            Series(
                name=series_name,
                targets=values[:, :n_targets],
                inputs=values[:, n_targets:],
                labels=[r.time for r in group]
                if axis.kind != "none"
                else [str(i) for i in range(len(group))],
                split=[r.split for r in group] if has_split else None,  # None: unlabelled rows
                times=times,
                where=where,
            )
        )
    return series, axis


def _check_grid(name: str, group: list[_Row], times: list[Any], axis: TimeAxis) -> None:
    """Refuse a repeated time or a hole in the grid, naming the row where it shows."""
    for i in range(1, len(times)):
        if times[i] == times[i - 1]:
            path, _, line = group[i].where.rpartition(":")
            raise DataFormatError(
                f"series {name!r}: time {group[i].time!r} appears twice (also at "
                f"{group[i - 1].where}); each series needs one row per time",
                path=path,
                line=int(line),
            )
        expected = axis.next(times[i - 1])
        if times[i] != expected:
            path, _, line = group[i].where.rpartition(":")
            step = f"step {axis.step}" if axis.kind == "number" else f"frequency {axis.freq}"
            hint = (
                " (dates? set data.frequency, e.g. D, W-SAT, M, Q, Y)"
                if axis.kind == "number"
                else ""
            )
            raise DataFormatError(
                f"series {name!r}: gap in time from {group[i - 1].time!r} to {group[i].time!r} "
                f"(expected {axis.label(expected)!r}, {step}){hint}; add the missing rows, "
                "with empty cells and data.missing=interpolate if the values are unknown",
                path=path,
                line=int(line),
            )
