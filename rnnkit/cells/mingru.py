"""minGRU (Feng et al. 2024, "Were RNNs all we needed?")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import uniform_init_
from rnnkit.cells.linear import LinearRecurrentCell, chrono_log_timescales


class MinGRUCell(LinearRecurrentCell):
    r"""minGRU: a GRU whose gate and candidate read :math:`x_t` only, so the recurrence is
    linear in :math:`h` and trains in parallel over time (backend ``scan``).

    .. math::
        \begin{aligned}
        z_t &= \sigma(W_z x_t + b_z) \\
        \tilde h_t &= g(W_h x_t + b_h) \\
        h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t
        \end{aligned}

    i.e. :math:`a_t = 1 - z_t`, :math:`b_t = z_t \odot \tilde h_t` in
    :class:`rnnkit.cells.linear.LinearRecurrentCell`'s terms.

    Args:
        input_size: F. hidden_size: H. bias: add ``b_z`` and ``b_h``.
        candidate: :math:`g`: ``"identity"`` (the paper's sequential minGRU) or ``"g"`` (the
            positive map of its log-space version, :func:`rnnkit.cells.linear.positive_g`).
        chrono_init: ``None`` (every parameter uniform) or :math:`T_{max}`: the update gate's
            bias :math:`b_z = -\log u`, :math:`u \sim U(1, T_{max} - 1)`, so that unit keeps
            :math:`h` for about :math:`u` steps at first (chrono initialisation,
            :func:`rnnkit.cells.linear.chrono_log_timescales`); for dependencies over hundreds
            of steps (``configs/experiment/adding_mingru.yaml``).

    Shape:
        x_t (B, F), state h (B, H) -> out h_t (B, H), state h_t (B, H).

    Attributes:
        weight_ih (2H, F) ``[W_z; W_h]``, bias (2H) ``[b_z; b_h]``; U(-1/sqrt(H), 1/sqrt(H))
        (``b_z`` chrono with ``chrono_init``).
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
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(2 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)
        if self.chrono_init is not None:
            with torch.no_grad():  # a_t = 1 - z_t = sigma(-z_pre): keep-bias log u
                self.bias[: self.hidden_size] = -chrono_log_timescales(
                    self.hidden_size, self.chrono_init
                )

    def scan_coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z_pre, h_pre = F.linear(x, self.weight_ih, self.bias).chunk(2, dim=-1)
        z = z_pre.sigmoid()
        return 1 - z, z * self.candidate_activation(h_pre)
