"""Elman network (Elman 1990, "Finding structure in time"): the simple recurrent cell."""

from __future__ import annotations

from torch import Tensor

from rnnkit.cells.base import ACTIVATIONS, Cell, State, check_activation, uniform_init_


class ElmanCell(Cell):
    r"""Elman cell: the hidden layer sees the input and its own previous value.

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    Symbols: :math:`x_t` input at step t, :math:`h_t` hidden state (Elman's context
    units hold its previous value; their weights to the hidden layer are learned),
    :math:`\phi` tanh or ReLU.

    Args:
        input_size: F, features of ``x_t``.
        hidden_size: H, features of ``h_t``.
        bias: add ``b_ih`` and ``b_hh``.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Shape:
        x_t (B, F), state h (B, H) -> out h_t (B, H), state h_t (B, H).

    Attributes:
        weight_ih (H, F), weight_hh (H, H), bias_ih (H), bias_hh (H): named and shaped as in
        ``torch.nn.RNNCell``, so ``state_dict`` moves between the two unchanged. Initialised
        U(-1/sqrt(H), 1/sqrt(H)) as torch does.
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"
    ) -> None:
        super().__init__(input_size, hidden_size, hidden_size)
        check_activation(nonlinearity, choices=("tanh", "relu"))  # torch's RNN_TANH / RNN_RELU
        self.nonlinearity = nonlinearity
        self.fused_mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self._add_torch_weights(1, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        return self._zeros(batch_size, self.hidden_size, device, dtype)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        h = state
        pre = x_t @ self.weight_ih.T + h @ self.weight_hh.T  # (B, H)
        if self.bias_ih is not None:
            pre = pre + self.bias_ih + self.bias_hh
        h_t = ACTIVATIONS[self.nonlinearity](pre)
        return h_t, h_t

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"
