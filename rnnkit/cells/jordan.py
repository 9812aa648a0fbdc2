"""Jordan network (Jordan 1986, "Serial order: a parallel distributed processing approach")."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnkit.cells.base import ACTIVATIONS, Cell, State, check_activation


class JordanCell(Cell):
    r"""Jordan cell: the memory units are fed from the network's own previous output.

    .. math::
        \begin{aligned}
        m_t &= \mu \odot m_{t-1} + c \, y_{t-1}, \qquad
              c = 1 \text{, or } c = 1 - \mu \text{ with ``running_average``} \\
        h_t &= \phi(W_{ih} x_t + b_{ih} + W_{mh} m_t + b_{mh}) \\
        y_t &= g(W_{ho} h_t + b_{ho})
        \end{aligned}

    Symbols: :math:`x_t` input; :math:`y_{t-1}` the previous output fed back (the true one
    when teacher forced, else the cell's own prediction); :math:`m_t` the memory ("state")
    units, one per output; :math:`\mu \in [0, 1)` their self-connection (decay);
    :math:`h_t` the hidden layer; :math:`\phi` its nonlinearity; :math:`g` the output
    activation (identity by default). :math:`m_{-1} = y_{-1} = 0`.

    Args:
        input_size: F, features of ``x_t``.
        hidden_size: H, width of the hidden layer ``h_t``.
        output_size: O, features of ``y_t`` (and of the memory); defaults to ``hidden_size``.
        bias: add ``b_ih``, ``b_mh`` and ``b_ho``.
        nonlinearity: :math:`\phi`: ``"tanh"``, ``"relu"`` or ``"sigmoid"``.
        output_activation: :math:`g`: ``None`` (identity, for regression), ``"tanh"`` or
            ``"sigmoid"``.
        memory_decay: :math:`\mu`, in ``[0, 1)``. 0 makes the memory the previous output.
        learn_decay: learn one :math:`\mu` per memory unit, as
            :math:`\mu = \sigma(\text{decay_logit})` so it stays in ``(0, 1)``;
            ``memory_decay`` is then its starting value and must be in ``(0, 1)``.
        running_average: scale the new output by :math:`1 - \mu`, so the memory is an
            exponential running average of past outputs (Jordan 1986's state units).

    Shape:
        x_t (B, F), state ``(m, y)`` each (B, O) -> out y_t (B, O), state ``(m_t, y_t)``.

    Attributes:
        weight_ih (H, F), bias_ih (H), weight_mh (H, O), bias_mh (H), weight_ho (O, H),
        bias_ho (O); ``decay_logit`` (O) only with ``learn_decay``. Weights and biases are
        initialised U(-1/sqrt(H), 1/sqrt(H)) as torch's RNNs are.

    ``output_feedback = True``: :meth:`teacher_force` puts the true :math:`y_t` into the state
    (open loop, "series-parallel" training); without it the cell feeds back its own
    predictions (closed loop). Jordan's state units also connect to themselves with a fixed
    weight (:math:`\mu`); here that weight may be learned, and the output-to-memory weight is
    fixed to 1 (or :math:`1-\mu`): every learned interaction goes through :math:`W_{mh}`.
    """

    output_feedback = True
    kernel = "JORDAN"  # rnnkit.layers.backends.feedback runs this exact math

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int | None = None,
        bias: bool = True,
        nonlinearity: str = "tanh",
        output_activation: str | None = None,
        memory_decay: float = 0.0,
        learn_decay: bool = False,
        running_average: bool = False,
    ) -> None:
        output_size = hidden_size if output_size is None else output_size
        super().__init__(input_size, hidden_size, output_size)
        check_activation(nonlinearity)
        check_activation(output_activation, "output_activation", (None, "tanh", "sigmoid"))
        low_ok = memory_decay > 0.0 if learn_decay else memory_decay >= 0.0
        if not (low_ok and memory_decay < 1.0):
            interval = "(0, 1) with learn_decay=True" if learn_decay else "[0, 1)"
            raise ValueError(f"memory_decay must be in {interval}, got {memory_decay!r}")
        self.nonlinearity = nonlinearity
        self.output_activation = output_activation
        self.memory_decay = float(memory_decay)
        self.learn_decay = learn_decay
        self.running_average = running_average
        H, O = hidden_size, output_size
        self.weight_ih = nn.Parameter(torch.empty(H, input_size))
        self.weight_mh = nn.Parameter(torch.empty(H, O))
        self.weight_ho = nn.Parameter(torch.empty(O, H))
        self.bias_ih = nn.Parameter(torch.empty(H)) if bias else None
        self.bias_mh = nn.Parameter(torch.empty(H)) if bias else None
        self.bias_ho = nn.Parameter(torch.empty(O)) if bias else None
        self.decay_logit = nn.Parameter(torch.empty(O)) if learn_decay else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / self.hidden_size**0.5
        for name, weight in self.named_parameters():
            if name != "decay_logit":
                nn.init.uniform_(weight, -bound, bound)
        if self.decay_logit is not None:
            mu = self.memory_decay
            nn.init.constant_(self.decay_logit, math.log(mu / (1.0 - mu)))

    @property
    def decay(self) -> Tensor | float:
        """:math:`\\mu`: a float, or a (O,) tensor when learned."""
        if self.decay_logit is None:
            return self.memory_decay
        return self.decay_logit.sigmoid()

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        m = self._zeros(batch_size, self.output_size, device, dtype)
        return m, torch.zeros_like(m)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        m, y = state
        mu = self.decay
        m_t = mu * m + ((1 - mu) * y if self.running_average else y)  # (B, O)
        pre = x_t @ self.weight_ih.T + m_t @ self.weight_mh.T  # (B, H)
        if self.bias_ih is not None:
            pre = pre + self.bias_ih + self.bias_mh
        h_t = ACTIVATIONS[self.nonlinearity](pre)
        y_t = h_t @ self.weight_ho.T  # (B, O)
        if self.bias_ho is not None:
            y_t = y_t + self.bias_ho
        if self.output_activation is not None:
            y_t = ACTIVATIONS[self.output_activation](y_t)
        return y_t, (m_t, y_t)

    def teacher_force(self, state: State, y_t: Tensor) -> State:
        """Feed back the true output ``y_t (B, O)`` instead of the prediction (open loop)."""
        m_t, y_pred = state
        if y_t.shape != y_pred.shape:
            raise ValueError(
                f"JordanCell: feedback y_t must have shape (B, output_size) = "
                f"{tuple(y_pred.shape)}, got {tuple(y_t.shape)}"
            )
        return m_t, y_t

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, output_size={self.output_size}, "
            f"nonlinearity={self.nonlinearity!r}, output_activation={self.output_activation!r}, "
            f"memory_decay={self.memory_decay}, learn_decay={self.learn_decay}, "
            f"running_average={self.running_average}"
        )
