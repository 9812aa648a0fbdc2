"""Reading a monitored metric: the one place ``ModelCheckpoint``, ``EarlyStopping`` and a
``ReduceLROnPlateau`` scheduler look up their ``monitor`` in the logged values, and the one
error for a monitor the task never logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rnnkit.errors import ConfigError

__all__ = ["monitored", "never_logged"]


def never_logged(owner: str, monitor: str, metrics: Mapping[str, Any]) -> str:
    """The message for ``owner``'s ``monitor`` missing from ``metrics`` (what is logged)."""
    logged = sorted(k for k in metrics if k not in ("epoch", "step"))
    return (
        f"{owner}(monitor={monitor!r}): the task never logs it; it logs "
        f"{', '.join(logged) or 'nothing'}"
    )


def monitored(metrics: Mapping[str, Any], monitor: str, owner: str, required: bool) -> Any:
    """``metrics[monitor]``; missing: a :class:`ConfigError` when ``required``, else ``None``."""
    value = metrics.get(monitor)
    if value is None and required:
        raise ConfigError(never_logged(owner, monitor, metrics))
    return value
