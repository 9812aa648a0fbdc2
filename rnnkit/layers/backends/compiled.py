"""The ``compiled`` backend: the loop, with each step compiled by ``torch.compile``.

Compiling the whole unroll was measured and rejected as a default (see ``docs/benchmarks.md``):
30-500 s per cell and a recompile for every new sequence length. Here one step (the cell, the
teacher forcing and the length mask) is compiled instead: its graph does not depend on ``T``,
so it compiles once per cell type, shape and dtype (a few seconds), inductor fuses the gate
nonlinearities, and inductor's on-disk cache makes later runs start fast. It works for every
cell, including output-feedback ones.
"""

from __future__ import annotations

import functools
import time

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends.steps import per_step, step_mask
from rnnkit.layers.state import where_state
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)


def _step(cell: Cell, x_t: Tensor, state: State, y_t: Tensor | None, valid_t: Tensor | None):
    out_t, new_state = cell(x_t, state)
    if y_t is not None:
        new_state = cell.teacher_force(new_state, y_t)
    if valid_t is not None:
        new_state = where_state(valid_t, new_state, state)
        out_t = torch.where(valid_t.unsqueeze(-1), out_t, torch.zeros_like(out_t))
    return out_t, new_state


@functools.cache
def _compiled_step():
    """``torch.compile(_step)``, made at first use: it imports inductor (seconds of start-up)."""
    return torch.compile(_step, dynamic=False)


# one graph per (cell type, sizes, dtype, grad mode, lengths/feedback, state requiring grad or
# not): more than dynamo's default limit of 8, after which it would silently run eagerly
_RECOMPILE_LIMIT = 64
_seen: set = set()
#: seconds spent in the first call of each (cell type, shapes, grad mode): the compile time
COMPILE_SECONDS: dict[tuple, float] = {}


def supports(cell: Cell, feedback: Tensor | None) -> bool:
    return True


def unroll_compiled(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Step ``cell`` through ``x (B, T, F)``, each step a compiled graph."""
    if torch._dynamo.config.recompile_limit < _RECOMPILE_LIMIT:
        torch._dynamo.config.recompile_limit = _RECOMPILE_LIMIT
    T = x.shape[1]
    steps = x.unbind(1)  # unbind once: x[:, t] in the loop makes the backward O(T^2)
    targets = feedback.unbind(1) if feedback is not None else [None] * T
    valid = per_step(step_mask(lengths, T, x.device), T)
    key = (type(cell).__name__, tuple(x.shape[::2]), x.dtype, x.device.type,
           torch.is_grad_enabled(), feedback is not None, lengths is not None)  # fmt: skip
    # step 0 runs eagerly: its state (zeros, or a learned init) differs in requires_grad from
    # every later one, and compiling both variants would double the compile time
    out_t, state = _step(cell, steps[0], state, targets[0], valid[0])
    outputs = [out_t]
    for t in range(1, T):
        if t == 1 and key not in _seen:
            start = time.perf_counter()
            out_t, state = _compiled_step()(cell, steps[t], state, targets[t], valid[t])
            COMPILE_SECONDS[key] = time.perf_counter() - start
            _seen.add(key)
            log.info("compiled backend: first step of %s took %.1f s", key, COMPILE_SECONDS[key])
        else:
            out_t, state = _compiled_step()(cell, steps[t], state, targets[t], valid[t])
        outputs.append(out_t)
    return torch.stack(outputs, dim=1), state  # (B, T, O)
