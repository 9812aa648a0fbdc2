"""Execution backends: different ways to run the same cell over time, all giving its numbers.

``loop`` is the readable reference every other backend is tested against.
"""

from __future__ import annotations

from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends.loop import unroll_loop

BACKEND_NAMES = {"auto", "loop"}


def run_unroll(
    backend: str,
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Unroll ``cell`` over ``x (B, T, F)`` with the chosen backend."""
    return unroll_loop(cell, x, lengths, state, feedback)
