"""LSTM with peephole connections (Gers & Schmidhuber 2000, "Recurrent nets that time and
count"), written as a user would: a scriptable step, no hand-written kernel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import ScriptedStepCell, State, uniform_init_


def peephole_lstm_step(
    xp_t: Tensor, state: list[Tensor], params: list[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    """One step from the projected input ``xp_t (B, 4H)``; ``state = [h, c]``,
    ``params = [weight_hh (4H, H), peephole (3, H)]`` -> ``(h_t, [h_t, c_t])``."""
    h, c = state[0], state[1]
    weight_hh, peephole = params[0], params[1]
    i, f, g, o = torch.addmm(xp_t, h, weight_hh.t()).chunk(4, dim=-1)
    i = torch.sigmoid(i + peephole[0] * c)
    f = torch.sigmoid(f + peephole[1] * c)
    c_t = f * c + i * torch.tanh(g)
    h_t = torch.sigmoid(o + peephole[2] * c_t) * torch.tanh(c_t)
    return h_t, [h_t, c_t]


class PeepholeLSTMCell(ScriptedStepCell):
    r"""LSTM whose gates also see the cell state: :math:`i, f` read :math:`c_{t-1}`, :math:`o`
    reads :math:`c_t` (element-wise weights :math:`p`).

    .. math::
        \begin{aligned}
        (a^i, a^f, a^g, a^o) &= W_{ih} x_t + b + W_{hh} h_{t-1} \\
        i_t &= \sigma(a^i + p_i \odot c_{t-1}), \quad f_t = \sigma(a^f + p_f \odot c_{t-1}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot \tanh(a^g) \\
        h_t &= \sigma(a^o + p_o \odot c_t) \odot \tanh(c_t)
        \end{aligned}

    A "user-style" cell: its math is one TorchScript-compatible function of the projected
    input (:func:`peephole_lstm_step`), so a layer hoists :math:`W_{ih} x_t + b` out of the
    time loop and runs the loop in TorchScript (the ``scripted`` backend, which ``auto``
    picks for it); see CONTRIBUTING.md, "Cells you write yourself".

    Args:
        input_size: F. hidden_size: H.

    Shape:
        x_t (B, F), state (h, c) each (B, H) -> out h_t (B, H), state (h_t, c_t).

    Attributes:
        weight_ih (4H, F), weight_hh (4H, H), bias (4H), chunks (i, f, g, o) as torch's LSTM;
        peephole (3, H) rows ``(p_i, p_f, p_o)``. All U(-1/sqrt(H), 1/sqrt(H)).
    """

    step_function = staticmethod(peephole_lstm_step)

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.peephole = nn.Parameter(torch.empty(3, hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        h = self._zeros(batch_size, self.hidden_size, device, dtype)
        return h, torch.zeros_like(h)

    def project_input(self, x: Tensor) -> Tensor:
        """``x (..., F)`` -> ``(..., 4H)``: the part of every gate that reads only the input."""
        return F.linear(x, self.weight_ih, self.bias)

    def step_parameters(self) -> list[Tensor]:
        return [self.weight_hh, self.peephole]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"
