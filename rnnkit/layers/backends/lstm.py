r"""LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000) with
hand-written BPTT; the time loops run in Python (``bptt``) or C++ (``native``).

.. math::
    G_t = xp_t + h_{t-1} W_{hh}^\top,\quad (i, f, g, o) = (\sigma, \sigma, \tanh, \sigma)(G_t),
    \quad c_t = f c_{t-1} + i g,\quad h_t = o \tanh(c_t)

with ``xp = x W_ih^T + b_ih + b_hh`` for every step at once (one matmul; autograd takes its
gradient). Buffers are time-major: ``xp, acts (T, B, 4H)``, ``hs, cs, tcs = tanh(cs) (T, B, H)``.

Backward: with ``dc_t`` the gradient reaching ``c_t``,
``dG_t = [dc_t g i', dc_t c_{t-1} f', dc_t i g', dh_t tanh(c_t) o']`` (``'`` the derivative of
each gate's nonlinearity, written with its output), ``dh_{t-1} = dG_t W_hh``,
``dc_{t-1} = f dc_t + dh_{t-1} o (1 - tanh^2 c_{t-1})``, and ``dW_hh = dG^T H_prev`` is one
matmul at the end. The coefficients of a block of steps are computed at once (vectorised over
``t``), so the loop is a handful of ops a step. Past each sequence's end every coefficient is
zero, so nothing computed on padding reaches a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends import native_build
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.backends.steps import (
    BLOCK,
    last_states,
    lengths_of,
    prev_states,
    recording,
)


def _forward_loop(xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor):
    """-> ``(hs, cs, acts, tcs)``, as the C++ ``lstm_forward`` returns them."""
    T, B, G = xp.shape
    H = G // 4
    acts = torch.empty_like(xp)  # (T, B, 4H) sigmoid(i, f, o), tanh(g)
    cs = xp.new_empty(T, B, H)
    tcs = xp.new_empty(T, B, H)
    hs = xp.new_empty(T, B, H)
    w_t = w_hh.t()
    h, c = h0, c0
    for t in range(T):
        gates = torch.addmm(xp[t], h, w_t)  # (B, 4H)
        a = acts[t]
        torch.sigmoid(gates, out=a)
        torch.tanh(gates[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])
        torch.mul(a[:, H : 2 * H], c, out=cs[t])
        cs[t].addcmul_(a[:, :H], a[:, 2 * H : 3 * H])
        torch.tanh(cs[t], out=tcs[t])
        torch.mul(a[:, 3 * H :], tcs[t], out=hs[t])
        h, c = hs[t], cs[t]
    return hs, cs, acts, tcs


def _backward_loop(d_hs, d_cs, h0, c0, w_hh, acts, cs, tcs, mask):
    """-> ``(d_gates (T, B, 4H), dh0, dc0)``, as the C++ ``lstm_backward`` returns them."""
    T, B, G = acts.shape
    H = G // 4
    c_prev = prev_states(c0, cs, None)
    d_gates = torch.empty_like(acts)
    dc = d_cs[T - 1] if d_cs is not None else torch.zeros_like(c0)
    dh = d_hs[T - 1]
    for stop in range(T, 0, -BLOCK):
        s = slice(max(stop - BLOCK, 0), stop)
        i, f, g, o = acts[s].split(H, dim=-1)  # each (block, B, H)
        coef = torch.empty_like(acts[s])  # dG_t = [dc Ki, dc Kf, dc Kg, dh Ko]
        ki, kf, kg, ko = coef.split(H, dim=-1)
        torch.mul(g, i - i * i, out=ki)
        torch.mul(c_prev[s], f - f * f, out=kf)
        torch.mul(i, 1 - g * g, out=kg)
        torch.mul(tcs[s], o - o * o, out=ko)
        dc_dh = o * (1 - tcs[s] * tcs[s])
        carry = f
        if mask is not None:
            coef = torch.where(mask[s], coef, 0)
            dc_dh = torch.where(mask[s], dc_dh, 0)
            carry = torch.where(mask[s], f, 0)
        for t in range(stop - 1, s.start - 1, -1):
            j = t - s.start
            if t < T - 1:
                dh = torch.addmm(d_hs[t], d_gates[t + 1], w_hh)  # (B, H)
                if d_cs is not None and mask is not None:
                    dc = dc + d_cs[t]
            dc = torch.addcmul(dc, dh, dc_dh[j])
            dg = d_gates[t]
            torch.mul(dc, coef[j, :, :H], out=dg[:, :H])
            torch.mul(dc, coef[j, :, H : 2 * H], out=dg[:, H : 2 * H])
            torch.mul(dc, coef[j, :, 2 * H : 3 * H], out=dg[:, 2 * H : 3 * H])
            torch.mul(dh, coef[j, :, 3 * H :], out=dg[:, 3 * H :])
            dc = dc * carry[j]
    return d_gates, d_gates[0] @ w_hh, dc


class LSTMFn(torch.autograd.Function):
    """``hs, cs (T, B, H) = LSTMFn.apply(xp (T, B, 4H), h0, c0 (B, H), w_hh (4H, H),
    mask (T, B, 1) | None, native)``."""

    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, mask, native: bool):
        ctx.set_materialize_grads(False)  # d_cs is None unless a cell state reaches the loss
        if native:
            hs, cs, acts, tcs = native_build.load().lstm_forward(xp, h0, c0, w_hh, True)
        else:
            hs, cs, acts, tcs = _forward_loop(xp, h0, c0, w_hh)
        ctx.native = native
        ctx.save_for_backward(h0, c0, w_hh, acts, cs, tcs, hs, mask)
        return hs, cs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs, d_cs):
        h0, c0, w_hh, acts, cs, tcs, hs, mask = ctx.saved_tensors
        d_hs = torch.zeros_like(hs) if d_hs is None else d_hs.contiguous()
        d_cs = None if d_cs is None else d_cs.contiguous()
        if ctx.native:
            d_gates, dh0, dc0 = native_build.load().lstm_backward(
                d_hs, d_cs, h0, c0, w_hh, acts, cs, tcs, lengths_of(mask)
            )
        else:
            d_gates, dh0, dc0 = _backward_loop(d_hs, d_cs, h0, c0, w_hh, acts, cs, tcs, mask)
        dw_hh = d_gates.flatten(0, 1).t() @ prev_states(h0, hs, mask).flatten(0, 1)
        return d_gates, dh0, dc0, dw_hh, None, None


def lstm(
    cell: Cell,
    x: Tensor,
    state: State,
    mask: Tensor | None,
    feedback: Tensor | None = None,
    native: bool = False,
) -> tuple[Tensor, State]:
    """The LSTM kernel: ``x (B, T, F)`` -> ``(hs (T, B, H), (h, c) at each sequence's end)``."""
    h0, c0 = state
    bias = None if cell.bias_ih is None else cell.bias_ih + cell.bias_hh
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, bias)  # (T, B, 4H)
    if native and not recording(xp, h0, c0, cell.weight_hh):  # no activations kept
        hs, cs = native_build.load().lstm_forward(xp, h0, c0, cell.weight_hh, False)[:2]
    else:
        hs, cs = LSTMFn.apply(xp, h0, c0, cell.weight_hh, mask, native)
    return hs, last_states((hs, cs), mask)
