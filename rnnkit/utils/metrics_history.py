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
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rnnkit.utils.atomic import atomic_write_bytes

__all__ = ["keep_csv_history"]

#: the old ``metrics.csv`` while a resume puts its rows back
ASIDE_SUFFIX = ".resume"


def _rows_before(path: Path, global_step: int) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) < global_step]
        return list(reader.fieldnames or []), rows


def keep_csv_history(loggers: Iterable[Any], global_step: int) -> None:
    """Start every ``CSVLogger`` in ``loggers`` with its rows from before ``global_step``.

    The old file is first renamed to ``metrics.csv.resume`` (the logger, starting, deletes a
    ``metrics.csv``), and that file is removed once the kept rows are back in place: a process
    killed in between leaves it, and the next resume reads the history from it.
    """
    for logger in loggers:
        if type(logger).__name__ != "CSVLogger":  # rnnkit's or Lightning's, not imported here
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        aside = path.with_name(path.name + ASIDE_SUFFIX)
        if path.is_file() and not aside.is_file():
            os.replace(path, aside)
        header, rows = _rows_before(aside, global_step) if aside.is_file() else ([], [])
        writer = logger.experiment  # starting the writer deletes a metrics.csv
        if rows:
            text = io.StringIO()
            table = csv.DictWriter(text, fieldnames=header)
            table.writeheader()
            table.writerows(rows)
            atomic_write_bytes(path, text.getvalue().encode())
            writer.metrics_keys = list(header)  # new keys later rewrite the header (Lightning)
        aside.unlink(missing_ok=True)
