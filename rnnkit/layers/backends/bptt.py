r"""The ``bptt`` backend: hand-written backpropagation through time for known cell math.

Each kernel is one :class:`torch.autograd.Function` whose time loops run in Python here and in
C++ under ``native`` (:mod:`.native`); the Python loops are the readable version. Every kernel
follows one scheme (Werbos 1990's backpropagation through time, written out per cell):

1. the input projection of every step is one matmul, ``xp = x W_ih^T + b`` (autograd handles
   its gradient, so ``dW_ih``, ``db`` and ``dx`` are single matmuls too);
2. the forward loop does only the recurrent part, ``xp_t + h_{t-1} W_hh^T`` and the gate
   nonlinearities, writing activations into preallocated ``(T, B, .)`` buffers;
3. the backward turns every activation derivative into one coefficient tensor for many steps at
   once (vectorised over ``T``), so the backward loop is a handful of ops per step, and
   ``dW_hh = \sum_t dG_t^T h_{t-1}`` is one matmul at the end.

Variable lengths: padding comes after each sequence's end, so nothing computed there can reach a
valid step. The loop runs over all ``T`` steps unmasked; outputs past the end are zeroed, the
final state is gathered at ``lengths - 1``, and the backward zeroes every coefficient past the
end so no padding value (even an overflowed ReLU state) leaks into a gradient.

A cell opts in by its ``kernel`` attribute (or ``fused_mode``, whose math is the same); see
:data:`KERNELS`. Cells are never inspected by type.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends import feedback, gru, lstm, mgu, sru, tapped
from rnnkit.layers.backends.steps import step_mask
from rnnkit.layers.state import map_state

#: kernel name -> ``fn(cell, x (B, T, F), state, mask (T, B, 1) | None, feedback, native=False)
#: -> (hs (T, B, O), final state)``: the outputs of every step, time-major, and each sequence's
#: state at its last valid step; ``native=True`` runs the time loops in C++.
KERNELS: dict[str, Callable] = {
    "RNN_TANH": tapped.elman,
    "RNN_RELU": tapped.elman,
    "LSTM": lstm.lstm,
    "GRU": gru.gru,
    "GRU_RESET_BEFORE": gru.gru_reset_before,
    "JORDAN": feedback.jordan,
    "NARX": feedback.narx,
    "MGU": mgu.mgu,
    "SRU": sru.sru,
}
#: the kernels whose time loops also exist in C++ (the ``native`` backend runs these)
NATIVE_KERNELS = frozenset(
    {"RNN_TANH", "RNN_RELU", "LSTM", "GRU", "GRU_RESET_BEFORE", "JORDAN", "NARX", "MGU", "SRU"}
)


def kernel_of(cell: Cell) -> str | None:
    """The hand-written kernel that runs ``cell``'s exact math, or ``None``."""
    name = getattr(cell, "kernel", None) or getattr(cell, "fused_mode", None)
    return name if name in KERNELS else None


def autocast_active() -> bool:
    """Mixed precision is on: the hand-written loops write into buffers of one dtype, so they
    leave it to ``fused`` (torch's kernels handle autocast) or ``loop``."""
    return torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")


def supports(cell: Cell, feedback: Tensor | None) -> bool:
    return (
        kernel_of(cell) is not None
        and (feedback is None or cell.output_feedback)
        and not autocast_active()
    )


def unroll_bptt(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x (B, T, F)`` with its hand-written BPTT kernel."""
    if not supports(cell, feedback):
        raise ValueError(f"backend 'bptt' has no kernel for {type(cell).__name__}")
    return unroll_with_kernel(cell, x, lengths, state, feedback, native=False)


def unroll_with_kernel(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
    native: bool,
) -> tuple[Tensor, State]:
    """Run ``cell``'s kernel (:data:`KERNELS`) as a layer's unroll, its loops in C++ if
    ``native``: builds the length mask and zeroes outputs past each end."""
    mask = step_mask(lengths, x.shape[1], x.device)
    state = map_state(Tensor.contiguous, state)  # a learned init arrives expanded (stride 0)
    hs, final = KERNELS[kernel_of(cell)](cell, x, state, mask, feedback, native=native)
    outputs = hs if mask is None else torch.where(mask, hs, 0)
    return outputs.transpose(0, 1), final  # (B, T, O)
