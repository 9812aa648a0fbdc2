r"""Hand-written BPTT for :class:`rnnkit.cells.MGUCell` (Zhou et al. 2016), a ``bptt`` kernel.

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
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.backends.steps import last_states, prev_states


class _MGUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, w_hh: Tensor, mask: Tensor | None):
        T, B, G = xp.shape
        H = G // 2
        w_f_t, w_h_t = w_hh[:H].t(), w_hh[H:].t()
        fs, fh, ns, hs = (xp.new_empty(T, B, H) for _ in range(4))
        h = h0
        for t in range(T):
            f = torch.sigmoid(torch.addmm(xp[t, :, :H], h, w_f_t), out=fs[t])
            torch.mul(f, h, out=fh[t])
            torch.tanh(torch.addmm(xp[t, :, H:], fh[t], w_h_t), out=ns[t])
            h = torch.addcmul(h, f, ns[t] - h, out=hs[t])
        ctx.save_for_backward(h0, w_hh, fs, fh, ns, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs: Tensor):
        h0, w_hh, fs, fh, ns, hs, mask = ctx.saved_tensors
        T, B, H = hs.shape
        w_f, w_h = w_hh[:H], w_hh[H:]
        h_prev = prev_states(h0, hs, mask)
        k_n = fs * (1 - ns * ns)  # d n_pre / d h_t
        k_f = fs * (1 - fs)  # d f_pre / d f
        direct = ns - h_prev  # d h_t / d f, besides the path through n
        carry, gate = 1 - fs, fs
        if mask is not None:
            k_n, k_f, direct, carry, gate, fh = (
                torch.where(mask, k, 0) for k in (k_n, k_f, direct, carry, gate, fh)
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
        flat = d_xp.flatten(0, 1)
        dw_hh = torch.cat(
            [flat[:, :H].t() @ h_prev.flatten(0, 1), flat[:, H:].t() @ fh.flatten(0, 1)]
        )
        return d_xp, dh_prev, dw_hh, None


def mgu(
    cell: Cell,
    x: Tensor,
    state: Tensor,
    mask: Tensor | None,
    feedback: Tensor | None = None,
    native: bool = False,
):
    """The ``bptt`` kernel of ``MGU``: ``x (B, T, F)`` -> ``(hs (T, B, H), final h)``.

    Its loop is Python only (not in :data:`.bptt.NATIVE_KERNELS`), so ``native`` is never set.
    """
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, cell.bias)  # (T, B, 2H)
    hs = _MGUFn.apply(xp, state, cell.weight_hh, mask)
    return hs, last_states(hs, mask)
