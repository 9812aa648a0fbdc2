"""The reference backend: a plain Python loop over time steps."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends.steps import per_step, step_mask
from rnnkit.layers.state import where_state


def unroll_loop(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Step ``cell`` through ``x (B, T, F)``; returns ``(outputs (B, T, O), final state)``.

    Past a sequence's end (``t >= lengths[b]``) its state is kept and its output is zero.
    """
    T = x.shape[1]
    # unbind once: indexing x[:, t] inside the loop makes the backward O(T^2)
    steps = x.unbind(1)
    targets = feedback.unbind(1) if feedback is not None else [None] * T
    valid = per_step(step_mask(lengths, T, x.device), T)
    outputs = []
    for t in range(T):
        out_t, new_state = cell(steps[t], state)
        if targets[t] is not None:
            new_state = cell.teacher_force(new_state, targets[t])
        if valid[t] is not None:
            new_state = where_state(valid[t], new_state, state)
            out_t = torch.where(valid[t].unsqueeze(-1), out_t, torch.zeros_like(out_t))
        state = new_state
        outputs.append(out_t)
    return torch.stack(outputs, dim=1), state  # (B, T, O)
