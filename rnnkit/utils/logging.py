"""Rank-zero logging: ``get_logger(__name__)`` is the only way library code reports anything.

Under DDP every process runs the same code; a message logged on every rank appears once per
process. The logger returned here drops records on ranks other than zero, unless a call asks
for them with ``extra={"all_ranks": True}``.
"""

from __future__ import annotations

import logging
import os

_RANK_ENV = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def global_rank() -> int:
    """This process's rank, read the way Lightning reads it (environment variables)."""
    for key in _RANK_ENV:
        value = os.environ.get(key)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return 0


class RankZeroFilter(logging.Filter):
    """Let a record through on rank zero, or on every rank when it asks for ``all_ranks``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "all_ranks", False):
            record.msg = f"[rank {global_rank()}] {record.msg}"
            return True
        return global_rank() == 0


def get_logger(name: str = __name__) -> logging.Logger:
    """A standard ``logging.Logger`` that only speaks on rank zero (see module docstring)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RankZeroFilter) for f in logger.filters):
        logger.addFilter(RankZeroFilter())
    return logger
