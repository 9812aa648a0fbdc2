"""Minimal gated unit (Zhou et al. 2016, "Minimal gated unit for recurrent neural networks")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells.base import Cell, State, uniform_init_


class MGUCell(Cell):
    r"""MGU cell: a GRU whose reset and update gates are one forget gate.

    .. math::
        \begin{aligned}
        f_t &= \sigma(W_f x_t + U_f h_{t-1} + b_f) \\
        \tilde h_t &= \tanh(W_h x_t + U_h (f_t \odot h_{t-1}) + b_h) \\
        h_t &= (1 - f_t) \odot h_{t-1} + f_t \odot \tilde h_t
        \end{aligned}

    Two recurrent matmuls of ``H x H`` a step (an LSTM does one of ``4H x H``), but the second
    needs the first's gate, so they cannot be one matmul.

    Args:
        input_size: F. hidden_size: H. bias: add ``b_f`` and ``b_h``.

    Shape:
        x_t (B, F), state h (B, H) -> out h_t (B, H), state h_t (B, H).

    Attributes:
        weight_ih (2H, F) ``[W_f; W_h]``, weight_hh (2H, H) ``[U_f; U_h]``, bias (2H)
        ``[b_f; b_h]``. Initialised U(-1/sqrt(H), 1/sqrt(H)) as torch's cells.
    """

    kernel = "MGU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(2 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        return self._zeros(batch_size, self.hidden_size, device, dtype)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        h = state
        H = self.hidden_size
        xp = x_t @ self.weight_ih.T  # (B, 2H)
        if self.bias is not None:
            xp = xp + self.bias
        x_f, x_h = xp.chunk(2, dim=-1)
        f_t = (x_f + h @ self.weight_hh[:H].T).sigmoid()
        candidate = (x_h + (f_t * h) @ self.weight_hh[H:].T).tanh()
        h_t = h + f_t * (candidate - h)
        return h_t, h_t

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias is not None}"
