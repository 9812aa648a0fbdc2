"""``RNGState``: checkpoint the random number generators so a resumed run continues exactly.

A driver restores weights, optimizer and loop counters from a checkpoint but not the random
generators, so after a resume the training data are shuffled (and dropout drawn) differently
from an uninterrupted run. This callback stores the python, numpy and torch (CPU and CUDA)
generator states in every checkpoint and puts them back when training restarts, right before
the training data loader is iterated again, which is where the uninterrupted run stood when
the checkpoint was written. A run killed and resumed from an epoch-end checkpoint then ends
with the same weights and metrics as a run that was never interrupted.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from rnnkit.engine import Callback


def capture() -> dict[str, Any]:
    """The state of every global generator, as plain data (tensors, ints, lists)."""
    np_state = np.random.get_state(legacy=True)  # ('MT19937', keys, pos, has_gauss, gauss)
    version, internal, gauss = random.getstate()
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
        fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
        if fetcher is not None and getattr(fetcher, "_combined_loader", None) is not None:
            iter(fetcher)
