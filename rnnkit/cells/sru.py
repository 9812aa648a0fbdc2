"""Simple recurrent unit (Lei et al. 2018, "Simple recurrent units for highly parallelizable
recurrence"), version 2 as in the ``sru`` package 2.6.0."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnkit.cells.base import Cell, State


class SRUCell(Cell):
    r"""SRU cell: every matrix product reads ``x_t`` only; the recurrence is element-wise.

    .. math::
        \begin{aligned}
        \tilde x_t, u^f_t, u^r_t\ (, s_t) &= W x_t \quad \text{(chunks of one matmul)} \\
        f_t &= \sigma(u^f_t + v_f \odot c_{t-1} + b_f) \\
        r_t &= \sigma(u^r_t + v_r \odot c_{t-1} + b_r) \\
        c_t &= f_t \odot c_{t-1} + (1 - f_t) \odot \tilde x_t \\
        h_t &= r_t \odot c_t + (1 - r_t) \odot s_t
        \end{aligned}

    The highway (skip) term is :math:`s_t = \alpha x_t` when ``input_size == hidden_size``
    (:math:`\alpha = \sqrt{1 + 2 e^{b_0}}` with ``rescale``, :math:`b_0` the initial
    ``highway_bias``; else 1) and a fourth chunk of :math:`W x_t` otherwise; without
    ``has_skip_term``, :math:`h_t = r_t \odot c_t`. This is the ``sru`` package's ``SRUCell``
    (v2: the :math:`v \odot c_{t-1}` terms, no output activation) without its options for
    dropout, layer norm, projections and custom modules; :mod:`tests.cells.test_sru` checks
    the numbers against it after copying the weights.

    Since :math:`W x_t` does not depend on the state, a layer computes it for all steps as one
    matmul and only the element-wise recurrence of :math:`c` runs step by step (the ``bptt``
    kernel of :mod:`rnnkit.layers.backends.sru`).

    Args:
        input_size: F. hidden_size: H. has_skip_term: add the highway term :math:`s_t`.
        rescale: scale the highway term by :math:`\alpha` (see above).
        highway_bias: initial value of :math:`b_r` (the ``sru`` package's name).

    Shape:
        x_t (B, F), state c (B, H) -> out h_t (B, H), state c_t (B, H).

    Attributes:
        weight_ih (kH, F) with chunks ``(W_x, W_f, W_r[, W_s])``, k = 3 or 4; weight_c (2H)
        ``[v_f; v_r]``; bias (2H) ``[b_f; b_r]``; highway_scale :math:`\alpha` (a float).
        Initialised as the ``sru`` package: ``W ~ U(-sqrt(3/F), sqrt(3/F))`` with its gate
        chunks times sqrt(1/2) (and ``W_s`` times :math:`\alpha`), ``v ~ U(-sqrt(3/2),
        sqrt(3/2))``, ``b_f = 0``, ``b_r = highway_bias``.
    """

    kernel = "SRU"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        has_skip_term: bool = True,
        rescale: bool = True,
        highway_bias: float = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, hidden_size)
        self.has_skip_term = has_skip_term
        self.highway_bias = float(highway_bias)
        # the skip term is x_t itself when the widths agree, else a learned projection
        self.projected_skip = has_skip_term and input_size != hidden_size
        rescaled = rescale and has_skip_term
        self.highway_scale = math.sqrt(1 + 2 * math.exp(highway_bias)) if rescaled else 1.0
        chunks = 4 if self.projected_skip else 3
        self.weight_ih = nn.Parameter(torch.empty(chunks * hidden_size, input_size))
        self.weight_c = nn.Parameter(torch.empty(2 * hidden_size))
        self.bias = nn.Parameter(torch.empty(2 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        H = self.hidden_size
        bound = math.sqrt(3.0 / self.input_size)  # E[w] = 0, Var[w] = 1 / F
        with torch.no_grad():
            self.weight_ih.uniform_(-bound, bound)
            self.weight_ih[H : 3 * H] *= math.sqrt(0.5)
            if self.projected_skip:
                self.weight_ih[3 * H :] *= self.highway_scale
            self.weight_c.uniform_(-math.sqrt(1.5), math.sqrt(1.5))  # Var = 1/2
            self.bias.zero_()
            self.bias[H:] = self.highway_bias

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        return self._zeros(batch_size, self.hidden_size, device, dtype)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        c = state
        H = self.hidden_size
        u = x_t @ self.weight_ih.T  # (B, kH)
        v_f, v_r = self.weight_c.chunk(2)
        b_f, b_r = self.bias.chunk(2)
        f_t = (u[:, H : 2 * H] + v_f * c + b_f).sigmoid()
        r_t = (u[:, 2 * H : 3 * H] + v_r * c + b_r).sigmoid()
        c_t = f_t * c + (1 - f_t) * u[:, :H]
        h_t = r_t * c_t
        if self.has_skip_term:
            skip = u[:, 3 * H :] if self.projected_skip else self.highway_scale * x_t
            h_t = h_t + (1 - r_t) * skip
        return h_t, c_t

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, has_skip_term={self.has_skip_term}, "
            f"highway_scale={self.highway_scale:.4g}"
        )
