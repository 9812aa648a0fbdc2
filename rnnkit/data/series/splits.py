"""Which rows of each series train, validate and test.

Labels come from the data (a ``split_column``, or a separate ``test_path``/``val_path`` file
whose rows carry that label), or by size from the end of each series:

- ``test_size``: when a series has no test-like label, its last ``k`` rows (an integer) or last
  fraction of rows (a float in (0, 1)) are ``test``; 0 for no test split;
- ``val_size``: when a series has no ``val`` label, the last ``k`` rows (or fraction) of its
  training part just before its first test row are ``val`` (time-respecting: validation is
  later than everything trained on); 0 for none; ``None`` (the default) means 10 % when the
  splits are by size, and no validation when the data labels its splits (a train/test file is
  used as given); the default tail has at least ``horizon`` rows.

Labels other than ``train`` and ``val`` are test splits, each evaluated and logged under its
own name (``test/...``, ``test1/...``, ``test2/...``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rnnkit.errors import ConfigError

DEFAULT_VAL_FRACTION = 0.1


def _count(size: float | int, n: int, key: str) -> int:
    """Rows meant by ``size`` out of ``n``: an integer count or a fraction in [0, 1)."""
    if isinstance(size, bool) or not isinstance(size, (int, float)) or size < 0:
        raise ConfigError(f"data.{key}: expected a row count >= 0 or a fraction in [0, 1)")
    if isinstance(size, float) and not size.is_integer() or 0 < size < 1:
        if size >= 1:
            raise ConfigError(f"data.{key}: a fraction must be below 1, got {size}")
        return int(round(n * size))
    return int(size)


def assign_splits(
    labels: Sequence[Sequence[str | None] | None],
    lengths: Sequence[int],
    test_size: float | int,
    val_size: float | int | None,
    horizon: int = 1,
) -> list[list[str]]:
    """The split label of every row of every series (see the module docstring).

    ``labels``: per series, the row labels from the data (``None`` for unlabelled rows or a
    series without labels); ``lengths``: the rows of each series; ``horizon``: the fewest
    rows of the default validation tail.
    """
    labelled = any(row is not None for series in labels if series is not None for row in series)
    out = []
    for series, n in zip(labels, lengths, strict=True):
        rows = list(series) if series is not None else [None] * n
        if not any(r not in (None, "train", "val") for r in rows):
            k = _count(test_size, sum(r is None for r in rows), "test_size")
            free = [i for i, r in enumerate(rows) if r is None]
            for i in free[len(free) - k :] if k else []:
                rows[i] = "test"
        first_test = next((i for i, r in enumerate(rows) if r not in (None, "train", "val")), n)
        if "val" not in rows:
            train = [i for i in range(first_test) if rows[i] in (None, "train")]
            if val_size is None:  # the default: 10 % of the training part, at least H rows
                k = 0 if labelled else max(_count(DEFAULT_VAL_FRACTION, len(train), ""), horizon)
            else:
                k = _count(val_size, len(train), "val_size")
            for i in train[len(train) - k :] if k else []:
                rows[i] = "val"
        out.append(["train" if r is None else r for r in rows])
    return out


def test_split_names(splits: Sequence[Sequence[str]]) -> list[str]:
    """The test splits present: ``test`` first, then the others as they first appear."""
    names: list[str] = []
    for rows in splits:
        for r in rows:
            if r not in ("train", "val") and r not in names:
                if not re.fullmatch(r"[a-z][a-z0-9_]*", r):
                    raise ConfigError(
                        f"split label {r!r}: expected train, val or a test name of letters, "
                        "digits and _ (test, test1, test2, ...)"
                    )
                names.append(r)
    return sorted(names, key=lambda name: name != "test")


def runs(split: Sequence[str], stage: str) -> list[tuple[int, int]]:
    """``[a, b)`` of each maximal run of consecutive rows labelled ``stage``."""
    out, start = [], None
    for i, r in enumerate([*split, None]):
        if r == stage and start is None:
            start = i
        elif r != stage and start is not None:
            out.append((start, i))
            start = None
    return out
