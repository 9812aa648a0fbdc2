r"""GRU (Cho et al. 2014) with hand-written BPTT, in both reset placements; the time loops run in
Python (``bptt``) or C++ (``native``).

torch's variant (``reset_after=True``), ``gh = h_{t-1} W_hh^T + b_hh``:

.. math::
    r, z = \sigma(xp_{rz} + gh_{rz}),\quad n = \tanh(xp_n + r \odot gh_n),\quad
    h_t = n + z \odot (h_{t-1} - n)

the paper's variant (``reset_after=False``), all biases in ``xp``:

.. math::
    r, z = \sigma(xp_{rz} + h_{t-1} W_{rz}^\top),\quad n = \tanh(xp_n + (r \odot h_{t-1}) W_n^\top)

``xp = x W_ih^T + b`` is one matmul for all steps (autograd takes its gradient); buffers are
time-major ``(T, B, .)``. Backward: with ``dh`` the gradient reaching ``h_t``,
``dn_pre = dh (1 - z)(1 - n^2)``, ``dz_pre = dh (h_{t-1} - n) z'``, the reset gate's gradient
through ``gh_n`` (torch's) or ``r h_{t-1}`` (paper's), and ``dh_{t-1}`` collects the carry
``dh z`` plus the recurrent matmuls; ``dW_hh`` is one matmul of the gate gradients against the
previous states at the end. Past each sequence's end every coefficient is zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell
from rnnkit.layers.backends import native_build
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.backends.steps import (
    BLOCK,
    last_states,
    lengths_of,
    prev_states,
    recording,
)

# ----------------------------------------------------------------------------------------------
# torch's variant


def _forward_loop(xp: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor):
    """-> ``(hs, acts = [r, z, W_hn h + b_hn] (T, B, 3H), ns)``, as C++ ``gru_forward``."""
    T, B, G = xp.shape
    H = G // 3
    acts = torch.empty_like(xp)  # written in place over h W_hh^T + b_hh
    ns = xp.new_empty(T, B, H)
    hs = xp.new_empty(T, B, H)
    w_t = w_hh.t()
    h = h0
    for t in range(T):
        a = acts[t]
        torch.addmm(b_hh, h, w_t, out=a)  # (B, 3H)
        rz = a[:, : 2 * H].add_(xp[t, :, : 2 * H]).sigmoid_()
        torch.tanh(torch.addcmul(xp[t, :, 2 * H :], rz[:, :H], a[:, 2 * H :]), out=ns[t])
        torch.addcmul(ns[t], rz[:, H:], h - ns[t], out=hs[t])  # h_t = n + z * (h - n)
        h = hs[t]
    return hs, acts, ns


def _backward_loop(d_hs, h0, w_hh, acts, ns, hs, mask):
    """-> ``(d_xp, d_gh (T, B, 3H): the gradient of h W_hh^T + b_hh, dh0)``, as C++
    ``gru_backward``."""
    T, B, H = hs.shape
    h_prev = prev_states(h0, hs, mask)
    # contiguous (B, H) writes: strided multi-slot writes measured slower on CPU
    d_gh = hs.new_empty(T, B, 3 * H)  # chunks (r, z, n)
    d_npre = torch.empty_like(hs)
    dh, carry = d_hs[T - 1], None
    for stop in range(T, 0, -BLOCK):
        s = slice(max(stop - BLOCK, 0), stop)
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
    d_xp = torch.cat([d_gh[..., : 2 * H], d_npre], dim=-1)  # (T, B, 3H)
    return d_xp, d_gh, dh0


class GRUFn(torch.autograd.Function):
    """``hs (T, B, H) = GRUFn.apply(xp (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,),
    mask (T, B, 1) | None, native)``."""

    @staticmethod
    def forward(ctx, xp, h0, w_hh, b_hh, mask, native: bool):
        if native:
            hs, acts, ns = native_build.load().gru_forward(xp, h0, w_hh, b_hh, True)
        else:
            hs, acts, ns = _forward_loop(xp, h0, w_hh, b_hh)
        ctx.native = native
        ctx.save_for_backward(h0, w_hh, acts, ns, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs):
        h0, w_hh, acts, ns, hs, mask = ctx.saved_tensors
        d_hs = d_hs.contiguous()
        if ctx.native:
            d_xp, d_gh, dh0 = native_build.load().gru_backward(
                d_hs, h0, w_hh, acts, ns, hs, lengths_of(mask)
            )
        else:
            d_xp, d_gh, dh0 = _backward_loop(d_hs, h0, w_hh, acts, ns, hs, mask)
        dw_hh = d_gh.flatten(0, 1).t() @ prev_states(h0, hs, mask).flatten(0, 1)
        return d_xp, dh0, dw_hh, d_gh.sum((0, 1)), None, None


def gru(
    cell: Cell,
    x: Tensor,
    state: Tensor,
    mask: Tensor | None,
    feedback: Tensor | None = None,
    native: bool = False,
) -> tuple[Tensor, Tensor]:
    """torch's GRU kernel: ``x (B, T, F)`` -> ``(hs (T, B, H), h at each sequence's end)``."""
    b_hh = cell.bias_hh if cell.bias_hh is not None else x.new_zeros(cell.weight_hh.shape[0])
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, cell.bias_ih)  # (T, B, 3H)
    if native and not recording(xp, state, cell.weight_hh, b_hh):  # no activations kept
        hs = native_build.load().gru_forward(xp, state, cell.weight_hh, b_hh, False)[0]
    else:
        hs = GRUFn.apply(xp, state, cell.weight_hh, b_hh, mask, native)
    return hs, last_states(hs, mask)


# ----------------------------------------------------------------------------------------------
# the paper's variant


def _reset_before_forward_loop(xp: Tensor, h0: Tensor, w_hh: Tensor):
    """-> ``(hs, rz (T, B, 2H), rh = r h_{t-1}, ns)``, as C++ ``gru_rb_forward``."""
    T, B, G = xp.shape
    H = G // 3
    w_rz_t, w_n_t = w_hh[: 2 * H].t(), w_hh[2 * H :].t()
    rz = xp.new_empty(T, B, 2 * H)
    rh = xp.new_empty(T, B, H)
    ns = xp.new_empty(T, B, H)
    hs = xp.new_empty(T, B, H)
    h = h0
    for t in range(T):
        torch.sigmoid(torch.addmm(xp[t, :, : 2 * H], h, w_rz_t), out=rz[t])
        torch.mul(rz[t, :, :H], h, out=rh[t])
        torch.tanh(torch.addmm(xp[t, :, 2 * H :], rh[t], w_n_t), out=ns[t])
        torch.addcmul(ns[t], rz[t, :, H:], h - ns[t], out=hs[t])
        h = hs[t]
    return hs, rz, rh, ns


def _reset_before_backward_loop(d_hs, h0, w_hh, rz, ns, hs, mask):
    """-> ``(d_xp (T, B, 3H), dh0)``, as C++ ``gru_rb_backward``."""
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
    return d_xp, dh_prev


class GRUResetBeforeFn(torch.autograd.Function):
    """``hs (T, B, H) = GRUResetBeforeFn.apply(xp (T, B, 3H), h0 (B, H), w_hh (3H, H),
    mask (T, B, 1) | None, native)``."""

    @staticmethod
    def forward(ctx, xp, h0, w_hh, mask, native: bool):
        if native:
            hs, rz, rh, ns = native_build.load().gru_rb_forward(xp, h0, w_hh, True)
        else:
            hs, rz, rh, ns = _reset_before_forward_loop(xp, h0, w_hh)
        ctx.native = native
        ctx.save_for_backward(h0, w_hh, rz, rh, ns, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs):
        h0, w_hh, rz, rh, ns, hs, mask = ctx.saved_tensors
        d_hs = d_hs.contiguous()
        if ctx.native:
            d_xp, dh0 = native_build.load().gru_rb_backward(
                d_hs, h0, w_hh, rz, ns, hs, lengths_of(mask)
            )
        else:
            d_xp, dh0 = _reset_before_backward_loop(d_hs, h0, w_hh, rz, ns, hs, mask)
        # dW_hh = [dG_rz^T H_prev ; dG_n^T (r H_prev)], everything zero past each end
        h_prev = prev_states(h0, hs, mask)
        if mask is not None:
            rh = torch.where(mask, rh, 0)
        flat = d_xp.flatten(0, 1)  # (T*B, 3H)
        H = hs.shape[-1]
        dw_hh = torch.cat(
            [flat[:, : 2 * H].t() @ h_prev.flatten(0, 1), flat[:, 2 * H :].t() @ rh.flatten(0, 1)]
        )
        return d_xp, dh0, dw_hh, None, None


def gru_reset_before(
    cell: Cell,
    x: Tensor,
    state: Tensor,
    mask: Tensor | None,
    feedback: Tensor | None = None,
    native: bool = False,
) -> tuple[Tensor, Tensor]:
    """The paper GRU's kernel: ``x (B, T, F)`` -> ``(hs (T, B, H), h at each end)``."""
    bias = None if cell.bias_ih is None else cell.bias_ih + cell.bias_hh
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, bias)  # (T, B, 3H)
    if native and not recording(xp, state, cell.weight_hh):  # no activations kept
        hs = native_build.load().gru_rb_forward(xp, state, cell.weight_hh, False)[0]
    else:
        hs = GRUResetBeforeFn.apply(xp, state, cell.weight_hh, mask, native)
    return hs, last_states(hs, mask)
