"""minLSTM (Feng et al. 2024, "Were RNNs all we needed?")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import uniform_init_
from rnnkit.cells.linear import LinearRecurrentCell, chrono_log_timescales


class MinLSTMCell(LinearRecurrentCell):
    r"""minLSTM: an LSTM whose gates read :math:`x_t` only, normalised so that the forget and
    input gates sum to one (no cell state, no output gate); linear in :math:`h`.

    .. math::
        \begin{aligned}
        f_t &= \sigma(W_f x_t + b_f), \quad i_t = \sigma(W_i x_t + b_i) \\
        f'_t &= \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t} \\
        \tilde h_t &= g(W_h x_t + b_h) \\
        h_t &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t
        \end{aligned}

    The normalised gates are computed as :math:`f'_t = \sigma(\log f_t - \log i_t)` with
    :math:`\log \sigma(u) = -\mathrm{softplus}(-u)`, which stays exact where both gates
    underflow. :math:`a_t = f'_t`, :math:`b_t = i'_t \odot \tilde h_t`.

    Args:
        input_size: F. hidden_size: H. bias: add ``b_f``, ``b_i`` and ``b_h``.
        candidate: :math:`g`, as in :class:`rnnkit.cells.MinGRUCell`.
        chrono_init: ``None`` or :math:`T_{max}`: :math:`b_f = \log u`, :math:`b_i = -\log u`,
            :math:`u \sim U(1, T_{max} - 1)`, so :math:`f'_t \approx u / (1 + u)` at first
            (chrono initialisation, as in :class:`rnnkit.cells.MinGRUCell`).

    Shape:
        x_t (B, F), state h (B, H) -> out h_t (B, H), state h_t (B, H).

    Attributes:
        weight_ih (3H, F) ``[W_f; W_i; W_h]``, bias (3H); U(-1/sqrt(H), 1/sqrt(H)).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        candidate: str = "identity",
        chrono_init: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, candidate, chrono_init, bias)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)
        if self.chrono_init is not None:
            H = self.hidden_size
            log_u = chrono_log_timescales(H, self.chrono_init)
            with torch.no_grad():
                self.bias[:H], self.bias[H : 2 * H] = log_u, -log_u

    def scan_coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f_pre, i_pre, h_pre = F.linear(x, self.weight_ih, self.bias).chunk(3, dim=-1)
        log_ratio = F.softplus(-i_pre) - F.softplus(-f_pre)  # log f - log i
        return log_ratio.sigmoid(), (-log_ratio).sigmoid() * self.candidate_activation(h_pre)
