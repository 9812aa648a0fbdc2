"""A resumed run keeps its ``metrics.csv`` history.

A ``CSVLogger`` (rnnkit's, :mod:`rnnkit.engine.loggers`, or Lightning's: the same file and the
same writer attributes) deletes an existing ``metrics.csv`` when it starts, so a run resumed
with ``ckpt_path=last`` would keep only the epochs after the resume. :func:`keep_csv_history`
reads the rows logged before the checkpoint (``step < global_step`` of the checkpoint; rows of
the interrupted part of an epoch are dropped, they are logged again) and writes them back once
the logger has started, so the file reads as if the run had never stopped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rnnkit.utils.atomic import atomic_write_bytes

__all__ = ["keep_csv_history"]


def _rows_before(path: Path, global_step: int) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) < global_step]
        return list(reader.fieldnames or []), rows


def keep_csv_history(loggers: Iterable[Any], global_step: int) -> None:
    """Start every ``CSVLogger`` in ``loggers`` with its rows from before ``global_step``."""
    for logger in loggers:
        if type(logger).__name__ != "CSVLogger":  # rnnkit's or Lightning's, not imported here
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        header, rows = _rows_before(path, global_step) if path.is_file() else ([], [])
        writer = logger.experiment  # starting the writer deletes the old file
        if not rows:
            continue
        text = io.StringIO()
        table = csv.DictWriter(text, fieldnames=header)
        table.writeheader()
        table.writerows(rows)
        atomic_write_bytes(path, text.getvalue().encode())
        writer.metrics_keys = list(header)  # new keys later rewrite the header, as Lightning does
