r"""Linear ARX: the least-squares baseline a NARX network must beat on the same lags."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.cells.base import check_positive


class LinearARX(nn.Module):
    r"""Linear autoregressive model with exogenous inputs, fitted by least squares.

    .. math::
        \hat y_t = \sum_{k=1}^{K} A_k \tilde y_{t-k} + \sum_{l=0}^{L} B_l u_{t-l} + c

    Symbols and lags as :class:`rnnkit.cells.NARXCell` (``K`` output delays, ``L`` input delays,
    so ``L + 1`` input taps with :math:`u_t` included; values before the start are 0);
    :math:`\tilde y` is the true output (open loop) or the model's own prediction (closed loop).
    The same ``forecast``/``one_step`` calls as the forecasters in
    :mod:`rnnkit.models.forecaster`.

    Args:
        input_size: I, exogenous inputs (0 allowed).
        output_size: O, targets.
        input_delays: L.
        output_delays: K.

    Attributes:
        weight (O, K*O + (L+1)*I + 1): buffer, columns ``[y_{t-1} .. y_{t-K}, u_t .. u_{t-L}, 1]``;
        zeros until :meth:`fit`.
    """

    def __init__(self, input_size: int, output_size: int, input_delays: int, output_delays: int):
        super().__init__()
        check_positive(
            output_size=output_size, input_delays=input_delays, output_delays=output_delays
        )
        if input_size < 0:
            raise ValueError(f"LinearARX: input_size must be >= 0, got {input_size}")
        self.input_size, self.output_size = input_size, output_size
        self.input_delays, self.output_delays = input_delays, output_delays
        width = output_delays * output_size + (input_delays + 1) * input_size + 1
        self.register_buffer("weight", torch.zeros(output_size, width))

    def _regressors(self, x: Tensor, y: Tensor, t: int) -> Tensor:
        """Row of regressors for step ``t`` from padded ``x``/``y`` (``t`` counts the padding)."""
        K, L = self.output_delays, self.input_delays
        ys = y[:, t - K : t].flip(1).flatten(1)  # (B, K*O), newest first
        xs = x[:, t - L : t + 1].flip(1).flatten(1)  # (B, (L+1)*I)
        return torch.cat([ys, xs, ys.new_ones(ys.shape[0], 1)], dim=1)

    def _pad(self, v: Tensor) -> Tensor:
        pad = max(self.input_delays, self.output_delays)
        return torch.cat([v.new_zeros(v.shape[0], pad, v.shape[2]), v], dim=1)

    @torch.no_grad()
    def fit(self, pieces: Sequence[tuple[np.ndarray, np.ndarray]]) -> LinearARX:
        """Least squares over every step of every ``(u (N, I), y (N, O))`` piece.

        Only steps whose lags all lie inside their piece are used (no zero-padded rows).
        """
        rows, targets = [], []
        start = max(self.input_delays, self.output_delays)
        for u, y in pieces:
            u = torch.as_tensor(np.asarray(u), dtype=torch.float64)[None]  # (1, N, I)
            y = torch.as_tensor(np.asarray(y), dtype=torch.float64)[None]  # (1, N, O)
            xp, yp = self._pad(u), self._pad(y)
            for t in range(start, u.shape[1]):
                rows.append(self._regressors(xp, yp, t + start)[0])
                targets.append(y[0, t])
        if not rows:
            raise ValueError(f"LinearARX.fit: no piece is longer than the lags ({start} steps)")
        a, b = torch.stack(rows).numpy(), torch.stack(targets).numpy()
        solution, *_ = np.linalg.lstsq(a, b, rcond=None)  # (width, O)
        self.weight.copy_(torch.as_tensor(solution.T, dtype=self.weight.dtype))
        return self

    def forward(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        return self.one_step(x, y, context)

    @torch.no_grad()
    def one_step(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        """Each step from the true past: ``(B, T - context, O)``."""
        pad = max(self.input_delays, self.output_delays)
        xp, yp = self._pad(x), self._pad(y)
        steps = [self._regressors(xp, yp, t + pad) for t in range(context, x.shape[1])]
        return torch.stack(steps, dim=1) @ self.weight.to(x.dtype).T  # (B, S, O)

    @torch.no_grad()
    def forecast(self, x: Tensor, y_context: Tensor) -> Tensor:
        """Free run after ``y_context (B, W, O)``, feeding back its own predictions."""
        pad = max(self.input_delays, self.output_delays)
        W, T = y_context.shape[1], x.shape[1]
        xp, history = self._pad(x), self._pad(y_context)
        weight = self.weight.to(x.dtype)
        for t in range(W, T):
            y_t = self._regressors(xp, history, t + pad) @ weight.T  # (B, O)
            history = torch.cat([history, y_t[:, None]], dim=1)
        return history[:, pad + W :]

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.output_size}, input_delays={self.input_delays}, "
            f"output_delays={self.output_delays}"
        )
