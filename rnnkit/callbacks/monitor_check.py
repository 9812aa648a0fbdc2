"""``MonitorCheck``: one clear error when the task's monitored metric is never logged.

Checkpoint selection and early stopping read ``task.monitor``. When a task does not log that
metric (``val/f1`` on a set of plain tags, a typo), Lightning's callbacks stop with a message
about "the returned metrics"; this callback runs before them, at the end of the first
real validation (the sanity check is skipped: ``*_best`` values are never logged there), and
names the key to change and the metrics the task does log.
"""

from __future__ import annotations

from typing import Any

from rnnkit.engine import Callback
from rnnkit.errors import ConfigError


class MonitorCheck(Callback):
    """Raise :class:`~rnnkit.errors.ConfigError` if ``monitor`` is missing after validation.

    Args:
        monitor: the metric the checkpoint and early-stopping callbacks select on.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor

    def on_validation_end(self, trainer: Any, task: Any) -> None:
        if trainer.sanity_checking or self.monitor in trainer.callback_metrics:
            return
        logged = sorted(k for k in trainer.callback_metrics if not k.startswith("train/"))
        raise ConfigError(
            f"task.monitor={self.monitor!r} is never logged by {type(task).__name__}; "
            f"it logs {', '.join(logged) or 'nothing at validation'}: set task.monitor (and "
            "task.monitor_mode: max or min) to one of them"
        )
