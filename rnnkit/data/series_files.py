"""Series of archives that are not CSV: the ``.ts`` format (UCR/UEA, Monash) and ``.npz`` arrays.

Both give equal-length series ``(N, T, C)`` with one target each, turned into
:class:`~rnnkit.data.readers.RawExample` objects (``inputs``: ``T`` steps of ``C`` channels)
for :class:`~rnnkit.data.sequence_csv.CSVSequenceDataModule`. The ``.ts`` parsing is
:func:`rnnkit.baselines.formats.read_ts`, the one the baselines use; ``.npz`` files load with
``allow_pickle=False``, so nothing read can run code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from rnnkit.baselines.formats import read_ts
from rnnkit.data.readers import RawExample, canonical_label
from rnnkit.errors import DataError, DataFileNotFoundError, DataFormatError

SERIES_SUFFIXES = (".ts", ".npz")


def _examples(
    path: Path, x: np.ndarray, y: np.ndarray | None, regression: bool, where: str
) -> list[RawExample]:
    if x.ndim == 2:  # (N, T): one channel
        x = x[:, :, None]
    if x.ndim != 3 or len(x) == 0:
        raise DataFormatError(f"{where}: expected series (N, T, C) or (N, T), got {x.shape}")
    if not np.isfinite(x).all():
        n = int(np.argwhere(~np.isfinite(x).all(axis=(1, 2)))[0, 0])
        raise DataFormatError(f"{where}: series {n} has NaN/inf values (not allowed)")
    if y is not None and len(y) != len(x):
        raise DataFormatError(f"{where}: {len(x)} series but {len(y)} targets")
    examples = []
    for i, series in enumerate(x):
        target = None
        if y is not None:
            if regression:
                try:
                    target = float(y[i])
                except ValueError:
                    raise DataFormatError(
                        f"{where}: target {y[i]!r} of series {i} is not a number; a "
                        "classification file needs data.regression=false"
                    ) from None
            else:
                target = canonical_label(str(y[i]))
        examples.append(RawExample(series.tolist(), target, f"{path}:series {i}"))
    return examples


def read_ts_series(path: str | Path, regression: bool) -> list[RawExample]:
    """The series and targets of an equal-length ``.ts`` file (``@data`` rows, ``:`` between
    channels, the target last).

    A regression file (``@targetLabel true``) read with ``regression=False`` is an error, so a
    real-valued target never becomes hundreds of classes.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(path)
    x, y = read_ts(path)
    if y.dtype.kind == "f" and not regression:
        raise DataFormatError(
            f"{path}: a regression file (@targetLabel true); set data.regression=true and "
            "task=regression"
        )
    return _examples(path, x, y, regression, str(path))


def read_npz_series(
    path: str | Path, split: str, regression: bool, labeled: bool = True
) -> list[RawExample]:
    """Series of an ``.npz`` file: the arrays ``X_<split>`` and ``y_<split>`` (tslearn's layout,
    one file for train and test), else ``X`` and ``y``.

    Args:
        split: ``train``, ``val``, ``test`` or ``predict``.
        labeled: when false, ``y`` may be absent.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            content = {name: arrays[name] for name in arrays.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: not a readable .npz of numeric arrays ({exc}); expected arrays saved "
            "with numpy.savez, no Python objects"
        ) from None
    x_key, y_key = (f"X_{split}", f"y_{split}") if f"X_{split}" in content else ("X", "y")
    if x_key not in content:
        raise DataFormatError(
            f"{path}: no array X_{split} or X (has {sorted(content)}); expected the series "
            f"as X_{split}/y_{split} or X/y"
        )
    y = content.get(y_key)
    if y is None and labeled:
        raise DataFormatError(f"{path}: array {x_key} has no targets {y_key}")
    if content[x_key].dtype.kind not in "biuf":
        raise DataFormatError(f"{path}: {x_key} holds {content[x_key].dtype}, expected numbers")
    return _examples(path, content[x_key].astype(np.float64), y, regression, f"{path}:{x_key}")
