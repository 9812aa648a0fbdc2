"""Callbacks (:class:`rnnkit.engine.Callback`) for reliable runs: stop on a bad loss, resume
exactly, save on SIGTERM, refuse a monitored metric that is never logged."""

from rnnkit.callbacks.monitor_check import MonitorCheck
from rnnkit.callbacks.nan_guard import NaNGuard
from rnnkit.callbacks.rng_state import RNGState
from rnnkit.callbacks.run_guard import RunGuard

__all__ = ["MonitorCheck", "NaNGuard", "RNGState", "RunGuard"]
