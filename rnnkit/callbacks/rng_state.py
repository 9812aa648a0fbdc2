"""``RNGState``: checkpoint the random number generators so a resumed run continues exactly.

A driver restores weights, optimizer and loop counters from a checkpoint but not the random
generators, so after a resume the training data are shuffled (and dropout drawn) differently
from an uninterrupted run. This callback stores the python, numpy and torch (CPU and CUDA)
generator states (:func:`rnnkit.engine.seed.capture`) in every checkpoint and puts them back
when training restarts, right before the training data loader is iterated again, which is
where the uninterrupted run stood when the checkpoint was written. A run killed and resumed
from an epoch-end checkpoint then ends with the same weights and metrics as a run that was
never interrupted.
"""

from __future__ import annotations

from typing import Any

from rnnkit.engine import Callback
from rnnkit.engine.seed import capture, restore


class RNGState(Callback):
    """Save the generator states in checkpoints; restore them when training resumes."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return capture()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Applied in on_train_start: callbacks are restored before the sanity check and data
        # set-up, which draw from the same generators.
        self._pending = state_dict

    def on_train_start(self, trainer: Any, task: Any) -> None:
        if self._pending is None:
            return
        restore(self._pending)
        self._pending = None
        # Lightning's fit loop already created the train iterator (drawing from the generators
        # we just reset). In the uninterrupted run that iterator is created after the
        # checkpoint, so create it again: the draws then happen in the same order as there.
        # (rnnkit's trainer creates each epoch's iterator after this hook: nothing to redo.)
        fetcher = getattr(getattr(trainer, "fit_loop", None), "_data_fetcher", None)
        if fetcher is not None and getattr(fetcher, "_combined_loader", None) is not None:
            iter(fetcher)
