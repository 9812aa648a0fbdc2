r"""Hand-written BPTT for :class:`rnnkit.cells.MGUCell` (Zhou et al. 2016): the kernel of
``bptt`` (loops in Python) and ``native`` (the same loops in C++, ``rnnkit/csrc/mgu.cpp``).

As the other kernels of :mod:`.bptt`: ``xp = x W_{ih}^T + b`` for all steps as one matmul, a
forward loop with the two recurrent matmuls of a step,

.. math::
    f_t = \sigma(xp^f_t + h_{t-1} U_f^T), \quad
    n_t = \tanh(xp^h_t + (f_t \odot h_{t-1}) U_h^T), \quad
    h_t = h_{t-1} + f_t \odot (n_t - h_{t-1}),

and a backward loop over the step derivatives, whose coefficients are computed for all steps
at once (zero past each sequence's end, so padding never reaches a gradient):

.. math::
    \begin{aligned}
    \partial n^{pre}_t &= \delta_t \odot f_t (1 - n_t^2), \quad
    \partial (f h)_t = \partial n^{pre}_t U_h \\
    \partial f^{pre}_t &= (\delta_t \odot (n_t - h_{t-1}) + \partial (f h)_t \odot h_{t-1})
        \odot f_t (1 - f_t) \\
    \delta_{t-1} &= g_{t-1} + \delta_t \odot (1 - f_t) + \partial (f h)_t \odot f_t
        + \partial f^{pre}_t U_f
    \end{aligned}

with :math:`\delta_t` the gradient reaching :math:`h_t` and :math:`g_t` that of the output;
``dU_f`` and ``dU_h`` are one matmul each at the end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell
from rnnkit.layers.backends import native_build
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.backends.steps import last_states, lengths_of, prev_states, recording


def _forward_loop(xp: Tensor, h0: Tensor, w_hh: Tensor):
    """-> ``(hs, fs, fhs = f h_{t-1}, ns)``, as the C++ ``mgu_forward`` returns them."""
    T, B, G = xp.shape
    H = G // 2
    w_f_t, w_h_t = w_hh[:H].t(), w_hh[H:].t()
    hs, fs, fhs, ns = (xp.new_empty(T, B, H) for _ in range(4))
    h = h0
    for t in range(T):
        f = torch.sigmoid(torch.addmm(xp[t, :, :H], h, w_f_t), out=fs[t])
        torch.mul(f, h, out=fhs[t])
        torch.tanh(torch.addmm(xp[t, :, H:], fhs[t], w_h_t), out=ns[t])
        h = torch.addcmul(h, f, ns[t] - h, out=hs[t])
    return hs, fs, fhs, ns


def _backward_loop(d_hs, h0, w_hh, hs, fs, ns, mask):
    """-> ``(d_xp (T, B, 2H), dh0)``, as the C++ ``mgu_backward`` returns them."""
    T, B, H = hs.shape
    w_f, w_h = w_hh[:H], w_hh[H:]
    h_prev = prev_states(h0, hs, mask)
    k_n = fs * (1 - ns * ns)  # d n_pre / d h_t
    k_f = fs * (1 - fs)  # d f_pre / d f
    direct = ns - h_prev  # d h_t / d f, besides the path through n
    carry, gate = 1 - fs, fs
    if mask is not None:
        k_n, k_f, direct, carry, gate = (
            torch.where(mask, k, 0) for k in (k_n, k_f, direct, carry, gate)
        )
    d_xp = hs.new_empty(T, B, 2 * H)  # chunks (f, h)
    dh_prev = torch.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        dh = d_hs[t] + dh_prev
        dn = torch.mul(dh, k_n[t], out=d_xp[t, :, H:])
        d_fh = dn @ w_h  # (B, H)
        df = torch.addcmul(dh * direct[t], d_fh, h_prev[t])
        df_pre = torch.mul(df, k_f[t], out=d_xp[t, :, :H])
        dh_prev = torch.addmm(dh * carry[t], df_pre, w_f).addcmul_(d_fh, gate[t])
    return d_xp, dh_prev


class _MGUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, w_hh: Tensor, mask: Tensor | None, native: bool):
        if native:
            hs, fs, fhs, ns = native_build.load().mgu_forward(xp, h0, w_hh, True)
        else:
            hs, fs, fhs, ns = _forward_loop(xp, h0, w_hh)
        ctx.native = native
        ctx.save_for_backward(h0, w_hh, fs, fhs, ns, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs: Tensor):
        h0, w_hh, fs, fhs, ns, hs, mask = ctx.saved_tensors
        H = hs.shape[-1]
        d_hs = d_hs.contiguous()
        if ctx.native:
            d_xp, dh0 = native_build.load().mgu_backward(
                d_hs, h0, w_hh, hs, fs, ns, lengths_of(mask)
            )
        else:
            d_xp, dh0 = _backward_loop(d_hs, h0, w_hh, hs, fs, ns, mask)
        h_prev = prev_states(h0, hs, mask)
        if mask is not None:  # zero past each end (an overflowed state must not give 0 * inf)
            fhs = torch.where(mask, fhs, 0)
        flat = d_xp.flatten(0, 1)
        dw_hh = torch.cat(
            [flat[:, :H].t() @ h_prev.flatten(0, 1), flat[:, H:].t() @ fhs.flatten(0, 1)]
        )
        return d_xp, dh0, dw_hh, None, None


def mgu(
    cell: Cell,
    x: Tensor,
    state: Tensor,
    mask: Tensor | None,
    feedback: Tensor | None = None,
    native: bool = False,
):
    """The MGU kernel: ``x (B, T, F)`` -> ``(hs (T, B, H), final h)``; loops in C++ if
    ``native``."""
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, cell.bias)  # (T, B, 2H)
    if native and not recording(xp, state, cell.weight_hh):  # no activations kept
        hs = native_build.load().mgu_forward(xp, state, cell.weight_hh.contiguous(), False)[0]
    else:
        hs = _MGUFn.apply(xp, state, cell.weight_hh.contiguous(), mask, native)
    return hs, last_states(hs, mask)
