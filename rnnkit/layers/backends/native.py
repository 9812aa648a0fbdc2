r"""The ``native`` backend: the ``bptt`` algorithm with its time loops in C++.

Same math, same buffers and same gradients as :mod:`.bptt` (BPTT, Werbos 1990): the input
projection of all steps is one matmul, the loops do only the recurrent part, and
``dW_hh = dG^T H_{prev}`` is one matmul at the end. What changes is the loop body: in
``rnnkit/csrc/recurrent_loops.cpp`` a step is one matmul plus one vectorised pass over the gates,
where torch's own GRU/RNN on CPU (and the Python loops of ``bptt``) dispatch a dozen small ops.
Measured in ``scripts/bench.py``: faster than ``torch.nn.GRU``/``RNN`` for training and
inference (docs/benchmarks.md). Elman and NARX's closed loop in state form share the tapped
recurrence of :mod:`.tapped` (forward and backward in C++); Jordan and NARX's other closed loop
run their forward here and their backward in :mod:`.feedback`.

The per-step matmul in float32 is oneDNN's brgemm micro-kernel (through
``at::native::cpublas::brgemm``) with the output columns split over the intra-op threads: at a
batch of 32 one MKL call keeps to one core, so this is about 2x faster than ``addmm`` at H=128
and at par with oneDNN's packed linear at H=512; float64 uses MKL's ``addmm``. CPU only; the
library is compiled on first use (:mod:`.native_build`), and without a compiler this backend
reports itself unsupported.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends import feedback as feedback_kernels
from rnnkit.layers.backends import native_build, tapped
from rnnkit.layers.backends.bptt import (
    autocast_active,
    gru_reset_before_weight_grad,
    kernel_of,
    prev_states,
    sum_bias,
    unroll_with_kernel,
)
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.state import last_states


def _lengths(mask: Tensor | None) -> Tensor | None:
    return None if mask is None else mask[..., 0].sum(0)  # (B,) int64


def _training(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


# ----------------------------------------------------------------------------------------------
# GRU (torch's reset placement)


class _GRUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, w_hh, b_hh, mask):
        hs, acts, ns = native_build.load().gru_forward(xp, h0, w_hh, b_hh, True)
        ctx.save_for_backward(h0, w_hh, acts, ns, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs):
        h0, w_hh, acts, ns, hs, mask = ctx.saved_tensors
        d_xp, d_gh, dh0 = native_build.load().gru_backward(
            d_hs.contiguous(), h0, w_hh, acts, ns, hs, _lengths(mask)
        )
        dw_hh = d_gh.flatten(0, 1).t() @ prev_states(h0, hs, mask).flatten(0, 1)
        return d_xp, dh0, dw_hh, d_gh.sum((0, 1)), None


def _gru(cell: Cell, x: Tensor, state: Tensor, mask: Tensor | None, feedback=None):
    b_hh = cell.bias_hh if cell.bias_hh is not None else x.new_zeros(cell.weight_hh.shape[0])
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, cell.bias_ih)  # (T, B, 3H)
    if _training(xp, state, cell.weight_hh, b_hh):
        hs = _GRUFn.apply(xp, state, cell.weight_hh, b_hh, mask)
    else:  # no activations kept
        hs = native_build.load().gru_forward(xp, state, cell.weight_hh, b_hh, False)[0]
    return hs, last_states(hs, mask)


# ----------------------------------------------------------------------------------------------
# GRU, the paper's variant (reset_after=False): n = tanh(xp_n + (r * h) W_n^T)


class _GRUResetBeforeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, w_hh, mask):
        hs, rz, rh, ns = native_build.load().gru_rb_forward(xp, h0, w_hh, True)
        ctx.save_for_backward(h0, w_hh, rz, rh, ns, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs):
        h0, w_hh, rz, rh, ns, hs, mask = ctx.saved_tensors
        d_xp, dh0 = native_build.load().gru_rb_backward(
            d_hs.contiguous(), h0, w_hh, rz, ns, hs, _lengths(mask)
        )
        if mask is not None:
            rh = torch.where(mask, rh, 0)
        dw_hh = gru_reset_before_weight_grad(d_xp, prev_states(h0, hs, mask), rh)
        return d_xp, dh0, dw_hh, None


def _gru_reset_before(cell: Cell, x: Tensor, state: Tensor, mask: Tensor | None, feedback=None):
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, sum_bias(cell.bias_ih, cell.bias_hh))
    if _training(xp, state, cell.weight_hh):
        hs = _GRUResetBeforeFn.apply(xp, state, cell.weight_hh, mask)
    else:  # no activations kept
        hs = native_build.load().gru_rb_forward(xp, state, cell.weight_hh, False)[0]
    return hs, last_states(hs, mask)


# ----------------------------------------------------------------------------------------------
# LSTM


class _LSTMFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, mask):
        ctx.set_materialize_grads(False)  # d_cs is None unless a cell state reaches the loss
        hs, cs, acts, tcs = native_build.load().lstm_forward(xp, h0, c0, w_hh, True)
        ctx.save_for_backward(h0, c0, w_hh, acts, cs, tcs, hs, mask)
        return hs, cs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs, d_cs):
        h0, c0, w_hh, acts, cs, tcs, hs, mask = ctx.saved_tensors
        d_hs = torch.zeros_like(hs) if d_hs is None else d_hs.contiguous()
        d_cs = None if d_cs is None else d_cs.contiguous()
        d_gates, dh0, dc0 = native_build.load().lstm_backward(
            d_hs, d_cs, h0, c0, w_hh, acts, cs, tcs, _lengths(mask)
        )
        dw_hh = d_gates.flatten(0, 1).t() @ prev_states(h0, hs, mask).flatten(0, 1)
        return d_gates, dh0, dc0, dw_hh, None


def _lstm(cell: Cell, x: Tensor, state: State, mask: Tensor | None, feedback=None):
    h0, c0 = state
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, sum_bias(cell.bias_ih, cell.bias_hh))
    if _training(xp, h0, c0, cell.weight_hh):
        hs, cs = _LSTMFn.apply(xp, h0, c0, cell.weight_hh, mask)
    else:  # no activations kept
        hs, cs = native_build.load().lstm_forward(xp, h0, c0, cell.weight_hh, False)[:2]
    return hs, last_states((hs, cs), mask)


# ----------------------------------------------------------------------------------------------
# dispatch

#: kernel name (``cell.kernel`` or ``cell.fused_mode``) -> time-major kernel, as in bptt.KERNELS;
#: Jordan and NARX run their closed-loop forward in C++ (their open loop has no nonlinear
#: recurrence left: at most Jordan's elementwise decaying memory)
KERNELS = {
    "RNN_TANH": functools.partial(tapped.elman, native=True),
    "RNN_RELU": functools.partial(tapped.elman, native=True),
    "GRU": _gru,
    "GRU_RESET_BEFORE": _gru_reset_before,
    "LSTM": _lstm,
    "JORDAN": functools.partial(feedback_kernels._jordan, native=True),
    "NARX": functools.partial(feedback_kernels._narx, native=True),
}


def supports(cell: Cell, feedback: Tensor | None) -> bool:
    weight = next(cell.parameters())
    return (
        (feedback is None or cell.output_feedback)
        and kernel_of(cell) in KERNELS
        and weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.float64)  # what the loops are compiled for
        and not autocast_active()
        and native_build.load() is not None
    )


# torch.compile cannot trace into the C++ ops (they have no fake-tensor kernels): a compiled
# model runs this unroll eagerly (a graph break) and compiles the rest
@torch.compiler.disable
def unroll_native(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x (B, T, F)`` with its C++ time loop."""
    if not supports(cell, feedback):
        reason = native_build.unavailable_reason() or "no C++ loop for this cell or device"
        raise ValueError(f"backend 'native' cannot run {type(cell).__name__}: {reason}")
    return unroll_with_kernel(KERNELS[kernel_of(cell)], cell, x, lengths, state, feedback)
