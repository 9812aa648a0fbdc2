"""NARX: nonlinear autoregressive network with exogenous inputs (Lin, Horne, Tino & Giles 1996)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells.base import (
    ACTIVATIONS,
    Cell,
    State,
    check_activation,
    check_positive,
    uniform_init_,
)


class NARXCell(Cell):
    r"""NARX cell: a hidden layer over tapped delay lines of the last inputs and outputs.

    .. math::
        \begin{aligned}
        a_t &= W_{xh} [x_t; x_{t-1}; \dots; x_{t-L}] + W_{yh} [y_{t-1}; \dots; y_{t-K}] + b_h \\
        y_t &= W_{hy} \phi(a_t) + b_y
        \end{aligned}

    Symbols: :math:`x_t` exogenous input; :math:`y_{t-k}` past outputs (true ones when
    teacher forced, else the cell's own predictions); :math:`L` input delays (so
    :math:`L + 1` input taps, :math:`x_t` included), :math:`K` output delays; :math:`[\,;\,]`
    concatenation, newest first; :math:`\phi` the hidden nonlinearity. Every delayed value
    before the start is 0.

    Args:
        input_size: F, features of ``x_t``.
        output_size: O, features of ``y_t``.
        hidden_size: H, width of the hidden layer.
        input_delays: L >= 1, past inputs in the input delay line.
        output_delays: K >= 1, past outputs in the output delay line.
        bias: add ``b_h`` and ``b_y``.
        nonlinearity: :math:`\phi`: ``"tanh"``, ``"relu"`` or ``"sigmoid"``.

    Shape:
        x_t (B, F), state ``(x_taps (B, L, F), y_taps (B, K, O))`` with index 0 the newest
        (:math:`x_{t-1}`, :math:`y_{t-1}`) -> out y_t (B, O), the delay lines shifted by one.

    Attributes:
        weight_xh (H, (L+1)*F): columns in blocks of F for :math:`x_t, x_{t-1}, \dots,
        x_{t-L}`; weight_yh (H, K*O): blocks of O for :math:`y_{t-1}, \dots, y_{t-K}`;
        bias_h (H); weight_hy (O, H); bias_y (O). All initialised U(-1/sqrt(H), 1/sqrt(H)).

    ``output_feedback = True``: :meth:`teacher_force` writes the true :math:`y_t` into the
    newest output tap (open loop, "series-parallel"); otherwise the prediction stays there
    (closed loop, "parallel"). The output layer is linear, as in the paper's regression use.
    References: Lin, Horne, Tino & Giles, "Learning long-term dependencies in NARX
    recurrent neural networks", IEEE TNN 1996; Narendra & Parthasarathy 1990 (series-parallel and
    parallel identification).
    """

    output_feedback = True
    kernel = "NARX"  # rnnkit.layers.backends.feedback runs this exact math

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int,
        input_delays: int = 1,
        output_delays: int = 1,
        bias: bool = True,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__(input_size, hidden_size, output_size)
        check_positive(input_delays=input_delays, output_delays=output_delays)
        check_activation(nonlinearity)
        self.input_delays = input_delays
        self.output_delays = output_delays
        self.nonlinearity = nonlinearity
        H = hidden_size
        self.weight_xh = nn.Parameter(torch.empty(H, (input_delays + 1) * input_size))
        self.weight_yh = nn.Parameter(torch.empty(H, output_delays * output_size))
        self.weight_hy = nn.Parameter(torch.empty(output_size, H))
        self.bias_h = nn.Parameter(torch.empty(H)) if bias else None
        self.bias_y = nn.Parameter(torch.empty(output_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        x_taps = self._zeros(batch_size, self.input_delays * self.input_size, device, dtype)
        y_taps = self._zeros(batch_size, self.output_delays * self.output_size, device, dtype)
        return (
            x_taps.view(batch_size, self.input_delays, self.input_size),  # (B, L, F)
            y_taps.view(batch_size, self.output_delays, self.output_size),  # (B, K, O)
        )

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        x_taps, y_taps = state
        x_window = torch.cat([x_t.unsqueeze(1), x_taps], dim=1)  # (B, L+1, F), newest first
        a_t = x_window.flatten(1) @ self.weight_xh.T + y_taps.flatten(1) @ self.weight_yh.T
        if self.bias_h is not None:
            a_t = a_t + self.bias_h  # (B, H)
        y_t = ACTIVATIONS[self.nonlinearity](a_t) @ self.weight_hy.T  # (B, O)
        if self.bias_y is not None:
            y_t = y_t + self.bias_y
        # shift both delay lines by one: the oldest tap falls off the end
        new_x_taps = x_window[:, : self.input_delays]  # (B, L, F)
        new_y_taps = torch.cat([y_t.unsqueeze(1), y_taps[:, :-1]], dim=1)  # (B, K, O)
        return y_t, (new_x_taps, new_y_taps)

    def teacher_force(self, state: State, y_t: Tensor) -> State:
        """Put the true output ``y_t (B, O)`` in the newest output tap (open loop)."""
        x_taps, y_taps = state
        if y_t.shape != y_taps[:, 0].shape:
            raise ValueError(
                f"NARXCell: feedback y_t must have shape (B, output_size) = "
                f"{tuple(y_taps[:, 0].shape)}, got {tuple(y_t.shape)}"
            )
        return x_taps, torch.cat([y_t.unsqueeze(1), y_taps[:, 1:]], dim=1)  # (B, K, O)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, output_size={self.output_size}, hidden_size={self.hidden_size}, "
            f"input_delays={self.input_delays}, output_delays={self.output_delays}, "
            f"nonlinearity={self.nonlinearity!r}"
        )
