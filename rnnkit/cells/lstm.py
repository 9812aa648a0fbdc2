"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000)."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State, uniform_init_


class LSTMCell(Cell):
    r"""LSTM cell with torch's gate order and parameters.

    .. math::
        \begin{aligned}
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)
        \end{aligned}

    Symbols: :math:`i, f, o` input, forget and output gates; :math:`g` the candidate
    (often written :math:`\tilde C_t`); :math:`c_t` the cell state; :math:`h_t` the output.

    Args:
        input_size: F. hidden_size: H. bias: add ``b_ih`` and ``b_hh``.
        forget_bias: added to the forget-gate chunk of ``bias_ih`` after the uniform init
            (1.0 is the common choice, Jozefowicz et al. 2015); 0 keeps torch's init exactly.

    Shape:
        x_t (B, F), state (h, c) each (B, H) -> out h_t (B, H), state (h_t, c_t).

    Attributes:
        weight_ih (4H, F), weight_hh (4H, H), bias_ih (4H), bias_hh (4H), chunks in the order
        (i, f, g, o) as in ``torch.nn.LSTMCell``. Initialised U(-1/sqrt(H), 1/sqrt(H)).
    """

    fused_mode = "LSTM"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, forget_bias: float = 0.0
    ) -> None:
        super().__init__(input_size, hidden_size, hidden_size)
        self.forget_bias = float(forget_bias)
        if forget_bias != 0.0 and not bias:
            raise ValueError("forget_bias needs bias=True")
        self._add_torch_weights(4, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)
        if self.forget_bias:
            with torch.no_grad():
                self.bias_ih[self.hidden_size : 2 * self.hidden_size] += self.forget_bias

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        h = self._zeros(batch_size, self.hidden_size, device, dtype)
        return h, torch.zeros_like(h)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        h, c = state
        gates = x_t @ self.weight_ih.T + h @ self.weight_hh.T  # (B, 4H)
        if self.bias_ih is not None:
            gates = gates + self.bias_ih + self.bias_hh
        i_t, f_t, g_t, o_t = gates.chunk(4, dim=-1)  # each (B, H)
        c_t = f_t.sigmoid() * c + i_t.sigmoid() * g_t.tanh()
        h_t = o_t.sigmoid() * c_t.tanh()
        return h_t, (h_t, c_t)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, forget_bias={self.forget_bias}"
