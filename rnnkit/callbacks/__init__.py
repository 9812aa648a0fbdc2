"""Lightning callbacks for reliable runs: stop on a non-finite loss, resume reproducibly."""

from rnnkit.callbacks.nan_guard import NaNGuard
from rnnkit.callbacks.rng_state import RNGState

__all__ = ["NaNGuard", "RNGState"]
