r"""Backpropagation through time written out by hand, for the Elman network (Werbos 1990).

.. math::
    \begin{aligned}
    h_t &= \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h) \\
    z_t &= \operatorname{softmax}(W_{hz} h_t + b_z) \\
    E &= -\sum_t y_t^\top \log z_t
    \end{aligned}

:func:`elman_bptt` runs the forward pass, then the 11-line BPTT loop backwards in time:

.. code-block:: text

    1: for t from T downto 1 do
    2:   do_t    <- g'(o_t) . dL(z_t; y_t)/dz_t        (softmax + cross-entropy: z_t - y_t)
    3:   db_o    <- db_o + do_t
    4:   dW_oh   <- dW_oh + do_t h_t^T
    5:   dh_t    <- dh_t + W_oh^T do_t                 (dh_t holds what step t+1 sent back)
    6:   dz_t    <- e'(z_t) . dh_t                     (tanh' = 1 - h_t^2; z_t here = pre-act.)
    7:   dW_hv   <- dW_hv + dz_t v_t^T
    8:   db_h    <- db_h + dz_t
    9:   dW_hh   <- dW_hh + dz_t h_{t-1}^T
    10:  dh_{t-1} <- W_hh^T dz_t
    11: end for

The loop's names map to ours as ``W_hv -> weight_xh``, ``W_oh -> weight_hz``,
``b_o -> bias_z``, ``v_t -> x_t``; the return ``[dW_hv, dW_hh, dW_oh, db_h, db_o, dh_0]`` is
:class:`BPTTResult`. It is a teaching reference, tested against autograd; train real models
with autograd.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn


class ElmanParams(NamedTuple):
    """Parameters of the Elman network of :func:`elman_bptt` (or their gradients, same shapes)."""

    weight_xh: Tensor  # (H, F)
    weight_hh: Tensor  # (H, H)
    bias_h: Tensor  # (H,)
    weight_hz: Tensor  # (C, H)
    bias_z: Tensor  # (C,)


class BPTTResult(NamedTuple):
    """What :func:`elman_bptt` returns: the summed loss and the gradient of everything."""

    loss: Tensor  # ()
    grads: ElmanParams
    grad_h0: Tensor  # like h0


def elman_bptt(params: ElmanParams, x: Tensor, targets: Tensor, h0: Tensor) -> BPTTResult:
    """Loss and gradients of the Elman network by hand-written BPTT.

    Args:
        params: the weights (a :class:`ElmanParams`, or any 5-tuple in its order).
        x: inputs, (T, F) for one sequence or (B, T, F) for a batch.
        targets: class indices (T,) / (B, T), or target distributions (T, C) / (B, T, C)
            (rows summing to one, e.g. one-hot).
        h0: initial hidden state, (H,) or (B, H).

    Returns:
        :class:`BPTTResult`: the cross-entropy summed over steps (and sequences), the
        gradients of every parameter, and the gradient with respect to ``h0``.
    """
    W_xh, W_hh, b_h, W_hz, b_z = params
    single = x.dim() == 2
    if single:  # one sequence: give it a batch of one
        x, targets, h0 = x.unsqueeze(0), targets.unsqueeze(0), h0.unsqueeze(0)
    if x.dim() != 3 or x.shape[-1] != W_xh.shape[1]:
        raise ValueError(
            f"elman_bptt: x must be (T, F) or (B, T, F) with F={W_xh.shape[1]}, "
            f"got {tuple(x.shape)}"
        )
    B, T, _ = x.shape
    C = W_hz.shape[0]
    if not targets.is_floating_point():
        targets = nn.functional.one_hot(targets, C).to(x.dtype)  # (B, T, C)
    if targets.shape != (B, T, C):
        raise ValueError(
            f"elman_bptt: targets must be class indices (B, T) or distributions (B, T, C) = "
            f"{(B, T, C)}, got {tuple(targets.shape)}"
        )

    # forward pass, keeping every h_t and z_t for the way back
    hs = [h0]  # hs[t] = h_{t-1} in the loop's 1-based time
    zs = []
    loss = x.new_zeros(())
    for t in range(T):
        h_t = torch.tanh(x[:, t] @ W_xh.T + hs[-1] @ W_hh.T + b_h)  # (B, H)
        log_z = torch.log_softmax(h_t @ W_hz.T + b_z, dim=-1)  # (B, C)
        loss = loss - (targets[:, t] * log_z).sum()
        hs.append(h_t)
        zs.append(log_z.exp())

    # backward pass: the loop above, batched (outer products summed over the batch)
    dW_xh, dW_hh, db_h = torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b_h)
    dW_hz, db_z = torch.zeros_like(W_hz), torch.zeros_like(b_z)
    dh = torch.zeros_like(hs[0])  # gradient flowing back into h_t from step t+1
    for t in reversed(range(T)):
        h_t, h_prev, x_t = hs[t + 1], hs[t], x[:, t]
        do_t = zs[t] - targets[:, t]  # line 2   (B, C)
        db_z += do_t.sum(0)  # line 3
        dW_hz += do_t.T @ h_t  # line 4   (C, H)
        dh = dh + do_t @ W_hz  # line 5   (B, H)
        dz_t = (1 - h_t * h_t) * dh  # line 6
        dW_xh += dz_t.T @ x_t  # line 7   (H, F)
        db_h += dz_t.sum(0)  # line 8
        dW_hh += dz_t.T @ h_prev  # line 9   (H, H)
        dh = dz_t @ W_hh  # line 10  (B, H)
    grad_h0 = dh.squeeze(0) if single else dh
    return BPTTResult(loss, ElmanParams(dW_xh, dW_hh, db_h, dW_hz, db_z), grad_h0)


def elman_bptt_modules(
    cell: nn.Module, head: nn.Linear, x: Tensor, targets: Tensor, h0: Tensor | None = None
) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """:func:`elman_bptt` for an :class:`~rnnkit.cells.ElmanCell` (tanh) plus a linear head.

    Args:
        cell: a tanh ``ElmanCell`` (or ``torch.nn.RNNCell``): ``weight_ih``, ``weight_hh``,
            ``bias_ih``/``bias_hh`` (their sum is ``b_h``, so both get ``db_h``).
        head: ``nn.Linear(H, C)`` giving the logits.
        x, targets, h0: as in :func:`elman_bptt` (``h0`` defaults to zeros).

    Returns:
        ``(loss, grads, grad_h0)`` with ``grads`` keyed like ``named_parameters()`` of
        ``nn.ModuleDict({"cell": cell, "head": head})``: ``"cell.weight_ih"``, ...,
        ``"head.bias"``.
    """
    if getattr(cell, "nonlinearity", "tanh") != "tanh":
        raise ValueError(f"elman_bptt: needs a tanh cell, got nonlinearity={cell.nonlinearity!r}")
    H = cell.weight_hh.shape[0]
    W = cell.weight_hh
    b_h = _or_zeros(cell.bias_ih, H, W) + _or_zeros(cell.bias_hh, H, W)
    b_z = _or_zeros(head.bias, head.out_features, W)
    params = ElmanParams(cell.weight_ih, cell.weight_hh, b_h, head.weight, b_z)
    params = ElmanParams(*(p.detach() for p in params))
    if h0 is None:
        h0 = x.new_zeros((*x.shape[:-2], H))
    loss, g, grad_h0 = elman_bptt(params, x, targets, h0)
    grads = {"cell.weight_ih": g.weight_xh, "cell.weight_hh": g.weight_hh}
    if cell.bias_ih is not None:
        grads.update({"cell.bias_ih": g.bias_h, "cell.bias_hh": g.bias_h.clone()})
    grads["head.weight"] = g.weight_hz
    if head.bias is not None:
        grads["head.bias"] = g.bias_z
    return loss, grads, grad_h0


def _or_zeros(p: Tensor | None, size: int, like: Tensor) -> Tensor:
    return like.new_zeros(size) if p is None else p
