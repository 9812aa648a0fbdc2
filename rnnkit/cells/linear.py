"""Cells whose recurrence is linear in the state: ``h_t = a_t * h_{t-1} + b_t`` element-wise,
with ``a_t`` and ``b_t`` functions of ``x_t`` only, so a layer may run all steps as one scan."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State, check_activation

#: candidate activations: ``g`` is Feng et al.'s (2024) positive map, which keeps ``h``
#: positive so their log-space scan applies; the associative scan here needs neither
CANDIDATES = ("identity", "g")


def chrono_log_timescales(hidden_size: int, max_timescale: int) -> Tensor:
    r"""Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp
    time?"): :math:`\log u`, :math:`u \sim U(1, T_{max} - 1)`, one per unit, ``(H,)``. A
    gate that keeps :math:`h` with probability :math:`u / (1 + u)` (its bias :math:`\log u`)
    holds it for about :math:`u` steps, so at initialisation the units remember over every
    time scale up to :math:`T_{max}` and gradients reach that far back from the first step;
    with a bias near 0 they remember one or two steps, and the gate must first learn a bias
    near :math:`-\log T` before any long-range gradient arrives.
    """
    if isinstance(max_timescale, bool) or not isinstance(max_timescale, int) or max_timescale < 3:
        raise ValueError(f"chrono_init must be an integer >= 3 (steps), got {max_timescale!r}")
    return torch.empty(hidden_size).uniform_(1, max_timescale - 1).log()


def positive_g(x: Tensor) -> Tensor:
    r""":math:`g(x) = x + 1/2` for :math:`x \ge 0`, :math:`\sigma(x)` otherwise (continuous,
    positive, linear growth)."""
    return torch.where(x >= 0, x + 0.5, x.sigmoid())


class LinearRecurrentCell(Cell):
    r"""Base of cells with :math:`h_t = a_t \odot h_{t-1} + b_t`, :math:`a_t, b_t` from
    :math:`x_t` alone (:meth:`scan_coefficients`).

    ``forward`` is the sequential mode (one step). The parallel mode is the layer backend
    ``scan`` (:mod:`rnnkit.layers.backends.scan`), which computes the coefficients of all
    steps at once and solves the recurrence with an associative scan over time; both give the
    same numbers (``tests/cells/test_min_rnn.py``).

    Shape:
        x_t (B, F), state h (B, H) -> out h_t (B, H), state h_t (B, H).
    """

    kernel = "LINEAR_SCAN"

    def __init__(
        self, input_size: int, hidden_size: int, candidate: str, chrono_init: int | None, bias
    ) -> None:
        super().__init__(input_size, hidden_size, hidden_size)
        check_activation(candidate, "candidate", CANDIDATES)
        if chrono_init is not None:
            chrono_log_timescales(1, chrono_init)  # checks the value
            if not bias:
                raise ValueError("chrono_init sets the gate biases: it needs bias=True")
        self.candidate = candidate
        self.chrono_init = chrono_init

    def candidate_activation(self, pre: Tensor) -> Tensor:
        return positive_g(pre) if self.candidate == "g" else pre

    def scan_coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x (..., F)`` -> ``(a, b)`` each ``(..., H)``, any leading dimensions."""
        raise NotImplementedError

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        return self._zeros(batch_size, self.hidden_size, device, dtype)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        a_t, b_t = self.scan_coefficients(x_t)
        h_t = a_t * state + b_t
        return h_t, h_t

    def extra_repr(self) -> str:
        chrono = "" if self.chrono_init is None else f", chrono_init={self.chrono_init}"
        return f"{self.input_size}, {self.hidden_size}, candidate={self.candidate!r}{chrono}"
