r"""The tapped recurrence, with hand-written BPTT: the one loop Elman and closed-loop NARX share.

.. math::
    h_t = \phi\Big(z_t + \sum_{k=1}^{K} h_{t-k} W_k^\top\Big), \qquad
    W = [W_1 \;\dots\; W_K] \in \mathbb{R}^{H \times K H}

- **Elman** is ``K = 1``: ``z = x W_ih^T + b``, ``W = W_hh``, history ``h_{-1} = h_0``.
- **NARX, closed loop, in state form**: with its linear output layer,
  ``y_{t-k} = W_hy h_{t-k} + b_y``, so the output delay line feeds back
  ``W_yh,k y_{t-k} = (W_yh,k W_hy) h_{t-k} + W_yh,k b_y``: a recurrence of order ``K`` on the
  hidden state with ``W_k = W_yh,k W_hy`` (:func:`.feedback._narx_state_form`). A step is one
  matmul of ``K H^2`` instead of two dependent ones of ``(K + 1) O H``, and the outputs of all
  steps become one matmul after the loop.

Forward: step ``t`` multiplies its new state by all ``K`` blocks at once,
``p_t = h_t [W_1; \dots; W_K]^\top`` ``(B, K H)``, whose block ``k`` is what step ``t + k`` adds;
only the last ``K`` of them are kept (a ring, ``p_t`` in slot ``t mod K``). Backward (lines
7-9 of the BPTT loop in :mod:`rnnkit.bptt`) mirrors it:
``da_t = (dL/dh_t + \sum_k q_{t+k}[k]) \odot \phi'``,
``q_t = da_t [W_1 \dots W_K]``, and ``dW = \sum_t da_t^\top [h_{t-1}; \dots; h_{t-K}]`` is one
matmul at the end. Every buffer is time-major and contiguous, so the matmuls read whole rows.

The loops run in Python (``bptt``) or C++ (``native``: ``tapped_forward``/``tapped_backward`` in
``rnnkit/csrc/recurrent_loops.cpp``); both are tested against the ``loop`` backend.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Cell
from rnnkit.layers.backends import native_build
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.backends.steps import last_states, lengths_of


def act_out(name: str, pre: Tensor, out: Tensor) -> Tensor:
    """``out = act(pre)`` for ``tanh``, ``relu``, ``sigmoid`` without a temporary."""
    if name == "relu":
        return torch.clamp_min(pre, 0.0, out=out)  # relu has no out=
    return getattr(torch, name)(pre, out=out)


def act_grad(name: str | None, out: Tensor) -> Tensor | None:
    """d act / d pre, written with the activation's output (``None`` for no activation)."""
    if name is None:
        return None
    if name == "tanh":
        return 1 - out * out
    if name == "sigmoid":
        return out * (1 - out)
    return (out > 0).to(out.dtype)  # relu


def stacked(w: Tensor) -> Tensor:
    """``[W_1 .. W_K] (H, K H)`` -> ``[W_1; ..; W_K] (K H, H)``: ``h_t`` times its transpose is
    every ``p_t`` block at once."""
    H = w.shape[0]
    return w.view(H, -1, H).transpose(0, 1).reshape(-1, H)


def _forward_loop(z: Tensor, history: Tensor | None, K: int, w: Tensor, act: str) -> Tensor:
    T, B, H = z.shape
    w_s_t = stacked(w).t()  # (H, K H)
    ring = z.new_zeros(K, B, K * H) if history is None else (history @ w_s_t)
    hs = torch.empty_like(z)
    for t in range(T):
        pre = z[t]
        for k in range(1, K + 1):
            pre = pre + ring[(t - k) % K, :, (k - 1) * H : k * H]
        act_out(act, pre, out=hs[t])
        if t < T - 1:  # nothing reads the last step's p
            torch.mm(hs[t], w_s_t, out=ring[t % K])
    return hs


def _backward_loop(d_hs: Tensor, hs: Tensor, w: Tensor, act: str, mask: Tensor | None):
    T, B, H = hs.shape
    K = w.shape[1] // H
    coef = act_grad(act, hs)  # (T, B, H)
    if mask is not None:
        coef = torch.where(mask, coef, 0)
    ring = hs.new_zeros(K, B, K * H)  # q_t in slot t mod K; block k goes to dL/dh_{t-k}
    d_a = torch.empty_like(hs)
    for t in range(T - 1, -1, -1):
        dh = d_hs[t]
        for k in range(1, K + 1):
            dh = dh + ring[(t + k) % K, :, (k - 1) * H : k * H]
        torch.mul(dh, coef[t], out=d_a[t])
        torch.mm(d_a[t], w, out=ring[t % K])
    return d_a, ring


def _history_grad(ring: Tensor, T: int, H: int) -> Tensor:
    """``dL/dh_{-j} = \\sum_{k >= j} q_{k-j}[k]`` as ``(K, B, H)``, oldest first, from the ring
    after the backward loop (``q_i`` for ``i < K`` is still in slot ``i``, zero if ``i >= T``)."""
    K = ring.shape[0]
    d_history = ring.new_zeros(K, ring.shape[1], H)
    for j in range(1, K + 1):
        for k in range(j, min(K, T - 1 + j) + 1):
            d_history[K - j] += ring[k - j, :, (k - 1) * H : k * H]
    return d_history


class TappedFn(torch.autograd.Function):
    """``hs (T, B, H) = TappedFn.apply(z (T, B, H), history (K, B, H) oldest first or None for
    zeros, w (H, K H), act, mask, native)``; ``mask (T, B, 1)`` marks valid steps (nothing past
    a sequence's end reaches a gradient); ``act`` is ``tanh``, ``relu`` or ``sigmoid``."""

    @staticmethod
    def forward(ctx, z, history, w, act: str, mask, native: bool):
        K = w.shape[1] // w.shape[0]
        if native:
            hs = native_build.load().tapped_forward(z, history, K, stacked(w), act)
        else:
            hs = _forward_loop(z, history, K, w, act)
        ctx.act, ctx.native = act, native
        ctx.save_for_backward(history, w, hs, mask)
        return hs

    @staticmethod
    @first_order_only
    def backward(ctx, d_hs):
        history, w, hs, mask = ctx.saved_tensors
        T, B, H = hs.shape
        K = w.shape[1] // H
        if ctx.native:
            d_a, ring = native_build.load().tapped_backward(
                d_hs.contiguous(), hs, w, ctx.act, lengths_of(mask)
            )
        else:
            d_a, ring = _backward_loop(d_hs, hs, w, ctx.act, mask)
        # [h_{t-1} .. h_{t-K}] of every step, (T, B, K H); d_a is zero past each end, but a
        # state there may have overflowed (0 * inf = NaN), so those windows are zeroed too
        line = torch.cat([hs.new_zeros(K, B, H) if history is None else history, hs[:-1]])
        windows = line  # (K + T - 1, B, H): for K = 1 the windows are the states themselves
        if K > 1:
            windows = line.unfold(0, K, 1).flip(-1).transpose(-1, -2).reshape(T, B, K * H)
        if mask is not None:
            windows = torch.where(mask, windows, 0)
        d_w = d_a.flatten(0, 1).t() @ windows.flatten(0, 1)
        d_history = None if history is None else _history_grad(ring, T, H)
        return d_a, d_history, d_w, None, None, None


def elman(
    cell: Cell,
    x: Tensor,
    state: Tensor,
    mask: Tensor | None,
    feedback: Tensor | None = None,
    native: bool = False,
) -> tuple[Tensor, Tensor]:
    """Elman's kernel (``K = 1``); ``native`` runs the loops in C++."""
    bias = None if cell.bias_ih is None else cell.bias_ih + cell.bias_hh
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, bias)  # (T, B, H)
    hs = TappedFn.apply(xp, state.unsqueeze(0), cell.weight_hh, cell.nonlinearity, mask, native)
    return hs, last_states(hs, mask)
