"""The time axis of a series file: parse each row's time, check the grid, continue it.

Three kinds of time, chosen by the config's ``frequency`` and the cells:

- **none** (no time column): the rows' order in the file is the time order; labels are the
  0-based row index within the series;
- **number** (every cell an integer, ``frequency`` null or an integer step): the step is
  ``frequency``, or else the smallest positive difference between consecutive times of any
  series (1 for yearly ``1871, 1872, ...``);
- **date** (``frequency`` a pandas period alias such as ``D``, ``W-SAT``, ``M``, ``Q``, ``Y``,
  ``h``, ``30min``; or null and the cells dates, when the alias is inferred from the longest
  series): each cell becomes a :class:`pandas.Period` of that frequency, so consecutive rows
  must be one period apart.

Two time columns (macrodata's ``year`` and ``quarter``) are joined as ``1959Q1`` (``Q``) or
``1959-01`` (``M``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rnnkit.errors import ConfigError

#: calendar frequencies whose periods read well as text (``1991-01``, ``1959Q1``, ``1959``)
_CALENDAR = re.compile(r"^\d*(M|Q|Y|A)(-[A-Z]{3})?$")


def _period_alias(freq: str) -> str:
    """A period alias for an offset alias (``MS``/``ME`` -> ``M``, ``QS-OCT`` -> ``Q-OCT``)."""
    return re.sub(r"^(\d*)(M|Q|Y|A)(S|E)", r"\1\2", freq)


def _as_int(cell: str) -> int | None:
    try:
        return int(cell)
    except ValueError:
        return None


@dataclass
class TimeAxis:
    """How times of one file parse, step and print.

    Attributes:
        kind: ``none``, ``number`` or ``date``.
        step: the step of a number axis.
        freq: the period alias of a date axis.
    """

    kind: str
    step: int = 1
    freq: str | None = None

    @classmethod
    def infer(cls, cells: Sequence[Sequence[str]], frequency: Any, key: str) -> TimeAxis:
        """The axis of ``cells`` (the time text of each series' rows), given ``frequency``.

        ``key`` is the config key named in errors.
        """
        flat = [c for series in cells for c in series]
        if not flat:
            return cls("none")
        if frequency is None or isinstance(frequency, int):
            numbers = [_as_int(c) for c in flat]
            if all(n is not None for n in numbers):
                if isinstance(frequency, int) and not isinstance(frequency, bool):
                    if frequency < 1:
                        raise ConfigError(f"{key}: an integer frequency must be >= 1")
                    return cls("number", step=frequency)
                ordered = [sorted(map(int, series)) for series in cells]
                steps = [b - a for o in ordered for a, b in zip(o, o[1:], strict=False) if b > a]
                return cls("number", step=min(steps) if steps else 1)
            if frequency is not None:
                raise ConfigError(
                    f"{key}: frequency {frequency} is a number step, but time "
                    f"{flat[numbers.index(None)]!r} is not an integer"
                )
            longest = max(cells, key=len)
            import pandas as pd

            try:
                index = pd.DatetimeIndex([_timestamp(c) for c in longest]).sort_values()
                inferred = pd.infer_freq(index) if len(index) >= 3 else None
            except (ValueError, TypeError):
                inferred = None
            if inferred is None:
                raise ConfigError(
                    f"{key}: cannot infer the frequency of the dates (first {longest[0]!r}); "
                    "set frequency (e.g. D, W-SAT, M, Q, Y, h, 30min)"
                )
            return cls("date", freq=_period_alias(str(getattr(inferred, "freqstr", inferred))))
        return cls("date", freq=_period_alias(str(frequency)))

    def parse(self, cell: str) -> Any:
        """The sortable time of ``cell``; raises ``ValueError`` with what was expected."""
        if self.kind == "number":
            value = _as_int(cell)
            if value is None:
                raise ValueError(f"time {cell!r} is not an integer")
            return value
        import pandas as pd

        try:
            if re.fullmatch(r"\d{4}Q[1-4]", cell):
                return pd.Period(cell, freq=self.freq)
            return _timestamp(cell).to_period(self.freq)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"time {cell!r} is not a date of frequency {self.freq} ({error})"
            ) from None

    def next(self, time: Any) -> Any:
        """The time one step after ``time``."""
        return time + (self.step if self.kind == "number" else 1)

    def label(self, time: Any) -> str:
        """``time`` as text, for forecasts past the end and plots."""
        if self.kind != "date":
            return str(time)
        if _CALENDAR.match(self.freq or ""):
            return str(time)  # 1991-01, 1959Q1, 1959
        if re.fullmatch(r"\d*(min|h|H|s|S|T|ms)", self.freq or ""):
            return time.start_time.strftime("%Y-%m-%d %H:%M")
        return time.end_time.strftime("%Y-%m-%d")  # days and weeks: the last day

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "freq": self.freq}


def _timestamp(cell: str):
    import pandas as pd

    stamp = pd.Timestamp(cell)
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def join_time_cells(cells: Sequence[str], frequency: Any) -> str:
    """One time text from several columns: ``year, quarter`` -> ``1959Q1``, ``year, month`` ->
    ``1959-01``; other combinations are joined with ``-``."""
    if len(cells) == 2 and str(frequency or "").startswith("Q"):
        return f"{cells[0]}Q{cells[1]}"
    if len(cells) == 2 and str(frequency or "").startswith("M"):
        return f"{cells[0]}-{int(cells[1]):02d}"
    return "-".join(cells)
