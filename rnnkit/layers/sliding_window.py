"""``SlidingWindow``: the finite-response (time-delay, TDNN) predictor, a non-recurrent layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells.base import ACTIVATIONS, check_activation, check_positive, uniform_init_
from rnnkit.layers.validation import check_lengths, check_sequence


class SlidingWindow(nn.Module):
    r"""One-hidden-layer MLP over a causal window of the last ``window`` inputs.

    .. math::
        \begin{aligned}
        h_t &= \phi(W_{xh} [x_t; x_{t-1}; \dots; x_{t-N+1}] + b_h) \\
        y_t &= W_{hy} h_t + b_y
        \end{aligned}

    Symbols: :math:`N` the window (the system's width: what happens today affects only the
    next :math:`N` outputs), :math:`[\,;\,]` concatenation, newest first; inputs before the
    start are zeros, or the given ``state``. The "sliding predictor", a time-delay neural network
    (Waibel, Hanazawa, Hinton, Shikano & Lang 1989, "Phoneme recognition using time-delay
    neural networks"): a 1-D convolution over time, so it runs as one matmul over all windows
    (``unfold``), no loop.

    Args:
        input_size: F, features of ``x_t``.
        output_size: O, features of ``y_t``.
        window: N >= 1, inputs each output sees (``x_t`` included).
        hidden_size: H, width of the hidden layer.
        nonlinearity: :math:`\phi`: ``"tanh"``, ``"relu"`` or ``"sigmoid"``.

    Shape:
        x (B, T, F), lengths (B,) in [1, T], state (B, N-1, F) or None
        -> outputs (B, T, O), zero past each sequence's length, and the final state.

    The state is the input delay line: the last ``N - 1`` inputs up to and including each
    sequence's true end, oldest first (zeros, or the given state, where the sequence is
    shorter), i.e. exactly the context the next output needs. Feeding it back as ``state``
    with the continuation of the sequences gives the same outputs as one call on the whole
    sequences (the same contract as :class:`Recurrent`). With ``window=1`` it is (B, 0, F).

    Attributes:
        weight_xh (H, N*F): columns in blocks of F for :math:`x_t, x_{t-1}, \dots,
        x_{t-N+1}`; bias_h (H); weight_hy (O, H); bias_y (O). All initialised
        U(-1/sqrt(H), 1/sqrt(H)).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        window: int,
        hidden_size: int,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__()
        check_positive(
            input_size=input_size, output_size=output_size, window=window, hidden_size=hidden_size
        )
        check_activation(nonlinearity)
        self.input_size = input_size
        self.output_size = output_size
        self.window = window
        self.hidden_size = hidden_size
        self.nonlinearity = nonlinearity
        self.weight_xh = nn.Parameter(torch.empty(hidden_size, window * input_size))
        self.bias_h = nn.Parameter(torch.empty(hidden_size))
        self.weight_hy = nn.Parameter(torch.empty(output_size, hidden_size))
        self.bias_y = nn.Parameter(torch.empty(output_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> Tensor:
        """Zero history: ``(B, N-1, F)``."""
        dtype = self.weight_xh.dtype if dtype is None else dtype
        device = self.weight_xh.device if device is None else device
        return torch.zeros(
            batch_size, self.window - 1, self.input_size, device=device, dtype=dtype
        )

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        state: Tensor | None = None,
        feedback: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        who = "SlidingWindow"
        check_sequence(x, self.input_size, who)
        B, T, _ = x.shape
        lengths = check_lengths(lengths, B, T, who)
        if feedback is not None:
            raise ValueError(f"{who}: feedback= needs a cell with output feedback")
        N, Fin = self.window, self.input_size
        if state is None:
            state = self.initial_state(B, device=x.device, dtype=x.dtype)
        elif state.shape != (B, N - 1, Fin):
            raise ValueError(
                f"{who}: state must have shape (B, window-1, input_size) = {(B, N - 1, Fin)}, "
                f"got {tuple(state.shape)}"
            )
        padded = torch.cat([state, x], dim=1)  # (B, N-1+T, F)
        # every window at once; unfold lays each out oldest-first, weight_xh is newest-first
        windows = padded.unfold(1, N, 1).flip(-1).transpose(2, 3)  # (B, T, N, F)
        pre = windows.reshape(B, T, N * Fin) @ self.weight_xh.T + self.bias_h  # (B, T, H)
        hidden = ACTIVATIONS[self.nonlinearity](pre)
        outputs = hidden @ self.weight_hy.T + self.bias_y  # (B, T, O)
        if lengths is None:
            return outputs, padded[:, T:]  # (B, N-1, F)
        lengths = lengths.to(x.device)
        valid = torch.arange(T, device=x.device) < lengths[:, None]  # (B, T)
        outputs = torch.where(valid.unsqueeze(-1), outputs, outputs.new_zeros(()))
        # x[b, L_b - 1] sits at padded[b, L_b + N - 2]: the N-1 inputs ending there
        index = lengths[:, None] + torch.arange(N - 1, device=x.device)  # (B, N-1)
        final = padded.gather(1, index.unsqueeze(-1).expand(B, N - 1, Fin))  # (B, N-1, F)
        return outputs, final

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.output_size}, window={self.window}, "
            f"hidden_size={self.hidden_size}, nonlinearity={self.nonlinearity!r}"
        )
