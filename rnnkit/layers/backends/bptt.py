r"""The ``bptt`` backend: hand-written backpropagation through time for known cell math.

Backpropagation through time (Werbos 1990, "Backpropagation through time: what it does and how
to do it"), written out once per kernel as a :class:`torch.autograd.Function`:

1. the input projection of every step is one matmul, ``xp = x W_ih^T + b`` (autograd handles
   its gradient, so ``dW_ih``, ``db`` and ``dx`` are single matmuls too);
2. the forward loop does only the recurrent part, ``xp_t + h_{t-1} W_hh^T`` and the gate
   nonlinearities, writing activations into preallocated ``(T, B, .)`` buffers;
3. the backward turns every activation derivative into one coefficient tensor for all steps at
   once (vectorised over ``T``), so the backward loop is a handful of ops per step, and
   ``dW_hh = dG^T H_{prev}`` is one matmul at the end (lines 7-9 of the loop in
   :mod:`rnnkit.bptt`, summed over ``t``).

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
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends import feedback as feedback_kernels
from rnnkit.layers.backends import tapped
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.state import last_states, map_state

# ----------------------------------------------------------------------------------------------
# LSTM: gates = xp_t + h W_hh^T; chunks (i, f, g, o)


class _LSTMFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, mask: Tensor | None):
        T, B, G = xp.shape
        H = G // 4
        acts = torch.empty_like(xp)  # (T, B, 4H) sigmoid(i, f, o), tanh(g)
        cs = xp.new_empty(T, B, H)
        tcs = xp.new_empty(T, B, H)  # tanh(c_t)
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
        ctx.save_for_backward(h0, c0, w_hh, acts, cs, tcs, hs, mask)
        return hs, cs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs: Tensor | None, d_cs: Tensor | None):
        h0, c0, w_hh, acts, cs, tcs, hs, mask = ctx.saved_tensors
        T, B, G = acts.shape
        H = G // 4
        if d_hs is None:
            d_hs = torch.zeros_like(hs)
        c_prev = prev_states(c0, cs, None)
        d_gates = torch.empty_like(acts)  # (T, B, 4H)
        dc = d_cs[T - 1] if d_cs is not None else torch.zeros_like(c0)
        dh = d_hs[T - 1]
        # coefficients per block of steps (they stay in cache for long T):
        # dG_t = [dc*Ki, dc*Kf, dc*Kg, dh*Ko]
        for stop in range(T, 0, -_BLOCK):
            s = slice(max(stop - _BLOCK, 0), stop)
            i, f, g, o = acts[s].split(H, dim=-1)  # each (block, B, H)
            coef = torch.empty_like(acts[s])
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
        dh0 = d_gates[0] @ w_hh
        h_prev = prev_states(h0, hs, mask)
        dw_hh = d_gates.flatten(0, 1).t() @ h_prev.flatten(0, 1)
        return d_gates, dh0, dc, dw_hh, None


def _lstm(
    cell: Cell, x: Tensor, state: State, mask: Tensor | None, feedback: Tensor | None = None
) -> tuple[Tensor, State]:
    h0, c0 = state
    bias = sum_bias(cell.bias_ih, cell.bias_hh)
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, bias)  # (T, B, 4H)
    hs, cs = _LSTMFn.apply(xp, h0, c0, cell.weight_hh, mask)
    return hs, last_states((hs, cs), mask)


# ----------------------------------------------------------------------------------------------
# GRU, torch's variant: r, z = sig(xp_rz + gh_rz); n = tanh(xp_n + r * gh_n), gh = h W_hh^T + b_hh


class _GRUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor, mask: Tensor | None):
        T, B, G = xp.shape
        H = G // 3
        # per step: [r, z, W_hn h + b_hn], written in place over h W_hh^T + b_hh
        acts = torch.empty_like(xp)  # (T, B, 3H)
        ns = xp.new_empty(T, B, H)
        hs = xp.new_empty(T, B, H)
        w_t = w_hh.t()
        h = h0
        for t in range(T):
            a = acts[t]
            torch.addmm(b_hh, h, w_t, out=a)  # (B, 3H)
            rz = a[:, : 2 * H].add_(xp[t, :, : 2 * H]).sigmoid_()
            torch.tanh(torch.addcmul(xp[t, :, 2 * H :], rz[:, :H], a[:, 2 * H :]), out=ns[t])
            # h_t = n + z * (h - n)
            torch.addcmul(ns[t], rz[:, H:], h - ns[t], out=hs[t])
            h = hs[t]
        ctx.save_for_backward(h0, w_hh, acts, ns, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs: Tensor):
        h0, w_hh, acts, ns, hs, mask = ctx.saved_tensors
        T, B, H = hs.shape
        h_prev = prev_states(h0, hs, mask)
        # contiguous (B, H) writes: strided multi-slot writes measured slower on CPU
        d_gh = hs.new_empty(T, B, 3 * H)  # grads of h W_hh^T + b_hh, chunks (r, z, n)
        d_npre = torch.empty_like(hs)
        dh, carry = d_hs[T - 1], None
        # coefficients are computed per block of steps, so they stay in cache for long T
        for stop in range(T, 0, -_BLOCK):
            s = slice(max(stop - _BLOCK, 0), stop)
            r, z, ghn = acts[s].split(H, dim=-1)
            k_n = (1 - z) * (1 - ns[s] * ns[s])  # d n_pre / d h_t
            k_z = (h_prev[s] - ns[s]) * (z - z * z)  # d z_pre / d h_t
            k_r = ghn * (r - r * r)  # d r_pre / d n_pre
            z_keep = z  # d h_t / d h_{t-1} through the update gate
            if mask is not None:
                k_n = torch.where(mask[s], k_n, 0)
                k_z = torch.where(mask[s], k_z, 0)
                z_keep = torch.where(mask[s], z, 0)
            for t in range(stop - 1, s.start - 1, -1):
                i = t - s.start
                if t < T - 1:
                    dh = torch.addmm(d_hs[t], d_gh[t + 1], w_hh).addcmul_(dh, carry)
                dn = torch.mul(dh, k_n[i], out=d_npre[t])
                torch.mul(dn, k_r[i], out=d_gh[t, :, :H])
                torch.mul(dh, k_z[i], out=d_gh[t, :, H : 2 * H])
                torch.mul(dn, r[i], out=d_gh[t, :, 2 * H :])
                carry = z_keep[i]
        dh0 = torch.addmm(dh * carry, d_gh[0], w_hh)
        dw_hh = d_gh.flatten(0, 1).t() @ h_prev.flatten(0, 1)
        db_hh = d_gh.sum((0, 1))
        d_xp = torch.cat([d_gh[..., : 2 * H], d_npre], dim=-1)  # (T, B, 3H)
        return d_xp, dh0, dw_hh, db_hh, None


def _gru(
    cell: Cell, x: Tensor, state: Tensor, mask: Tensor | None, feedback: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    b_hh = cell.bias_hh if cell.bias_hh is not None else x.new_zeros(cell.weight_hh.shape[0])
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, cell.bias_ih)  # (T, B, 3H)
    hs = _GRUFn.apply(xp, state, cell.weight_hh, b_hh, mask)
    return hs, last_states(hs, mask)


# ----------------------------------------------------------------------------------------------
# GRU, paper variant (reset_after=False): n = tanh(xp_n + (r * h) W_hn^T), all biases in xp


class _GRUResetBeforeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, w_hh: Tensor, mask: Tensor | None):
        T, B, G = xp.shape
        H = G // 3
        w_rz_t, w_n_t = w_hh[: 2 * H].t(), w_hh[2 * H :].t()
        rz = xp.new_empty(T, B, 2 * H)
        rh = xp.new_empty(T, B, H)  # r * h_{t-1}
        ns = xp.new_empty(T, B, H)
        hs = xp.new_empty(T, B, H)
        h = h0
        for t in range(T):
            torch.sigmoid(torch.addmm(xp[t, :, : 2 * H], h, w_rz_t), out=rz[t])
            torch.mul(rz[t, :, :H], h, out=rh[t])
            torch.tanh(torch.addmm(xp[t, :, 2 * H :], rh[t], w_n_t), out=ns[t])
            torch.addcmul(ns[t], rz[t, :, H:], h - ns[t], out=hs[t])
            h = hs[t]
        ctx.save_for_backward(h0, w_hh, rz, rh, ns, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs: Tensor):
        h0, w_hh, rz, rh, ns, hs, mask = ctx.saved_tensors
        T, B, H = hs.shape
        w_rz, w_n = w_hh[: 2 * H], w_hh[2 * H :]
        r, z = rz.split(H, dim=-1)
        h_prev = prev_states(h0, hs, mask)
        k_n = (1 - z) * (1 - ns * ns)
        k_z = (h_prev - ns) * z * (1 - z)
        k_r = h_prev * r * (1 - r)  # d r_pre / d (r h)
        carry = z
        if mask is not None:
            k_n = torch.where(mask, k_n, 0)
            k_z = torch.where(mask, k_z, 0)
            k_r = torch.where(mask, k_r, 0)
            carry = torch.where(mask, z, 0)
            rh = torch.where(mask, rh, 0)
        d_xp = hs.new_empty(T, B, 3 * H)  # chunks (r, z, n)
        dh = d_hs[T - 1]
        dh_prev = None
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                dh = d_hs[t] + dh_prev
            dn = torch.mul(dh, k_n[t], out=d_xp[t, :, 2 * H :])
            d_rh = dn @ w_n  # (B, H)
            torch.mul(d_rh, k_r[t], out=d_xp[t, :, :H])
            torch.mul(dh, k_z[t], out=d_xp[t, :, H : 2 * H])
            dh_prev = torch.addmm(dh * carry[t], d_xp[t, :, : 2 * H], w_rz).addcmul_(d_rh, r[t])
        return d_xp, dh_prev, gru_reset_before_weight_grad(d_xp, h_prev, rh), None


def gru_reset_before_weight_grad(d_xp: Tensor, h_prev: Tensor, rh: Tensor) -> Tensor:
    """``dW_hh`` of the paper GRU: ``[dG_rz^T H_prev ; dG_n^T (r * H_prev)]``, inputs
    ``(T, B, .)`` with ``h_prev`` and ``rh`` already zero past each end."""
    H = h_prev.shape[-1]
    flat = d_xp.flatten(0, 1)  # (T*B, 3H)
    return torch.cat(
        [flat[:, : 2 * H].t() @ h_prev.flatten(0, 1), flat[:, 2 * H :].t() @ rh.flatten(0, 1)]
    )


def _gru_reset_before(
    cell: Cell, x: Tensor, state: Tensor, mask: Tensor | None, feedback: Tensor | None = None
):
    bias = sum_bias(cell.bias_ih, cell.bias_hh)
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, bias)  # (T, B, 3H)
    hs = _GRUResetBeforeFn.apply(xp, state, cell.weight_hh, mask)
    return hs, last_states(hs, mask)


# ----------------------------------------------------------------------------------------------
# helpers and dispatch


def sum_bias(b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor | None:
    return None if b_ih is None else b_ih + b_hh


#: steps per block when a backward computes its coefficients blockwise
_BLOCK = 32


def prev_states(s0: Tensor, ss: Tensor, mask: Tensor | None) -> Tensor:
    """``(s_{-1}, s_0, ..., s_{T-2})`` as ``(T, B, H)``; zero past each end when masked."""
    prev = torch.cat([s0.unsqueeze(0), ss[:-1]])
    return prev if mask is None else torch.where(mask, prev, 0)


#: kernel name -> ``fn(cell, x (B, T, F), state, mask (T, B, 1) | None, feedback) ->
#: (hs (T, B, O), final state)``: the outputs of every step, time-major, and each sequence's
#: state at its last valid step (:func:`rnnkit.layers.state.last_states`).
KERNELS: dict[str, Callable] = {
    "RNN_TANH": tapped.elman,
    "RNN_RELU": tapped.elman,
    "LSTM": _lstm,
    "GRU": _gru,
    "GRU_RESET_BEFORE": _gru_reset_before,
    "JORDAN": feedback_kernels._jordan,
    "NARX": feedback_kernels._narx,
}


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
    return unroll_with_kernel(KERNELS[kernel_of(cell)], cell, x, lengths, state, feedback)


def unroll_with_kernel(
    kernel: Callable,
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Run a time-major ``kernel`` (as in :data:`KERNELS`) as a layer's unroll: builds the
    length mask and zeroes outputs past each end."""
    T = x.shape[1]
    mask = None
    if lengths is not None:
        lengths = lengths.to(x.device)
        mask = (torch.arange(T, device=x.device)[:, None] < lengths)[..., None]  # (T, B, 1)
    state = map_state(Tensor.contiguous, state)  # a learned init arrives expanded (stride 0)
    hs, final = kernel(cell, x, state, mask, feedback)
    outputs = hs if mask is None else torch.where(mask, hs, 0)
    return outputs.transpose(0, 1), final  # (B, T, O)
