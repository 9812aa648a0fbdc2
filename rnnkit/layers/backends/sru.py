r"""Hand-written BPTT for :class:`rnnkit.cells.SRUCell` (Lei et al. 2018): the kernel of
``bptt`` (Python) and ``native`` (C++, ``rnnkit/csrc/sru.cpp``).

Every matrix product of SRU reads the input only, so ``U = x W^T`` is one matmul for all
steps. Of the rest only the cell state is sequential,

.. math::
    c_t = f_t \odot c_{t-1} + (1 - f_t) \odot \tilde x_t, \quad
    f_t = \sigma(p_t + v_f \odot c_{t-1}), \quad p_t = u^f_t + b_f,

a loop of four element-wise ops a step (:class:`_CellStateFn`); the reset gate and the output
(:math:`r_t = \sigma(u^r_t + v_r \odot c_{t-1} + b_r)`,
:math:`h_t = r_t \odot c_t + (1 - r_t) \odot s_t`) are then computed for all steps at once, and
autograd differentiates them. The backward of the cell state is a *linear* recurrence in
reverse, :math:`\delta_{t-1} = g_{t-1} + \delta_t \odot \partial c_t / \partial c_{t-1}`, with
:math:`\partial c_t / \partial c_{t-1} = f_t + k_t \odot v_f` and
:math:`k_t = \partial c_t / \partial p_t = (c_{t-1} - \tilde x_t) \odot f_t (1 - f_t)`, so it
runs as the scan of :mod:`.scan`, not as a loop.

Under ``native`` nothing after the matmul is a torch op: one C++ pass over ``T`` computes
``f, r, c, h`` of every step (:class:`_NativeSRUFn`), and one pass in reverse every gradient,
``d U`` (the matmul's output, all chunks), ``dv``, ``db``, ``dc_0`` and the skip term's ``dx``,
recomputing ``f`` and ``r`` from ``U`` and ``c_{t-1}`` instead of storing them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell
from rnnkit.layers.backends import native_build
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.backends.scan import reverse_linear_recurrence
from rnnkit.layers.backends.steps import last_states, lengths_of, prev_states


class _CellStateFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cand: Tensor, p: Tensor, v_f: Tensor, c0: Tensor, mask: Tensor | None):
        fs, cs = torch.empty_like(cand), torch.empty_like(cand)  # (T, B, H)
        c = c0
        for t in range(cand.shape[0]):
            f = torch.sigmoid(torch.addcmul(p[t], v_f, c), out=fs[t])
            c = torch.addcmul(cand[t], f, c - cand[t], out=cs[t])
        ctx.save_for_backward(cand, v_f, c0, fs, cs, mask)
        return cs

    @staticmethod
    @first_order_only
    def backward(ctx, d_cs: Tensor):
        cand, v_f, c0, fs, cs, mask = ctx.saved_tensors
        c_prev = prev_states(c0, cs, mask)
        k = (c_prev - cand) * fs * (1 - fs)  # d c_t / d p_t
        carry = fs + k * v_f  # d c_t / d c_{t-1}
        keep = 1 - fs  # d c_t / d cand_t
        if mask is not None:
            k, carry, keep = (torch.where(mask, x, 0) for x in (k, carry, keep))
        delta = reverse_linear_recurrence(carry, d_cs)  # gradient reaching every c_t
        dp = delta * k
        return delta * keep, dp, (dp * c_prev).sum((0, 1)), carry[0] * delta[0], None


class _NativeSRUFn(torch.autograd.Function):
    """``hs, cs (T, B, H) = apply(u (T, B, kH), x (B, T, H) | None, scale, v (2H), b (2H),
    c0 (B, H), mask)``; ``x`` is the input when it is the skip term."""

    @staticmethod
    def forward(ctx, u, x, scale: float, v, bias, c0, mask):
        ctx.set_materialize_grads(False)  # d_cs is None unless a cell state reaches the loss
        hs, cs = native_build.load().sru_forward(u, x, scale, v, bias, c0)
        ctx.scale = scale
        ctx.save_for_backward(u, x, v, bias, c0, cs, mask)
        return hs, cs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs, d_cs):
        u, x, v, bias, c0, cs, mask = ctx.saved_tensors
        d_hs = torch.zeros_like(cs) if d_hs is None else d_hs.contiguous()
        d_cs = None if d_cs is None else d_cs.contiguous()
        d_u, d_x, d_v, d_b, dc0 = native_build.load().sru_backward(
            d_hs, d_cs, u, x, ctx.scale, v, bias, c0, cs, lengths_of(mask)
        )
        return d_u, d_x if x is not None else None, None, d_v, d_b, dc0, None


def sru(
    cell: Cell,
    x: Tensor,
    state: Tensor,
    mask: Tensor | None,
    feedback: Tensor | None = None,
    native: bool = False,
):
    """The SRU kernel: ``x (B, T, F)`` -> ``(hs (T, B, H), final c)``; in C++ if ``native``."""
    xt = x.transpose(0, 1)  # (T, B, F)
    if native:
        u = F.linear(xt, cell.weight_ih).contiguous()  # (T, B, kH)
        identity_skip = cell.has_skip_term and not cell.projected_skip
        skip_x = x.contiguous() if identity_skip else None
        hs, cs = _NativeSRUFn.apply(
            u, skip_x, cell.highway_scale, cell.weight_c, cell.bias, state, mask
        )
        return hs, last_states(cs, mask)
    # split, not slices: the backward of split is one cat, that of each slice a zero fill
    cand, u_f, u_r, *projection = F.linear(xt, cell.weight_ih).split(cell.hidden_size, dim=-1)
    v_f, v_r = cell.weight_c.chunk(2)
    b_f, b_r = cell.bias.chunk(2)
    cs = _CellStateFn.apply(cand.contiguous(), u_f + b_f, v_f, state, mask)
    r = torch.addcmul(u_r + b_r, v_r, prev_states(state, cs, None)).sigmoid()
    hs = r * cs
    if cell.has_skip_term:
        skip = projection[0] if cell.projected_skip else cell.highway_scale * xt
        hs = hs + (1 - r) * skip
    return hs, last_states(cs, mask)
