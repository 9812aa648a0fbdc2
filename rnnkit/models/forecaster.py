r"""Forecasters: an encoder with a multi-step head, and NARX run open or closed loop.

Every forecaster takes aligned, batch-first windows: ``x (B, T, I)`` exogenous inputs and
``y (B, T, O)`` targets, row ``t`` of both at time ``t``; the first ``context`` rows are the known
past (the real initial conditions) and the rest are forecast. Each has three calls:

- ``forecast(x, y_context) -> (B, T - W, O)``: free run from the context ``y_context (B, W, O)``
  over every remaining step of ``x``; the model's own predictions stand in for the unknown
  outputs (closed loop).
- ``one_step(x, y, context) -> (B, T - context, O)``: each step predicted from the *true* past
  (open loop, one step ahead).
- ``forward(x, y, context)``: what training fits (see each class).

References: Waibel et al. 1989 (the time-delay sliding predictor); Lin, Horne, Tino & Giles,
"Learning long-term dependencies in NARX recurrent neural networks", IEEE TNN 1996 (NARX);
Narendra & Parthasarathy, "Identification and control of dynamical systems using neural
networks", IEEE TNN 1990 (series-parallel vs parallel).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.cells.base import Cell, check_positive
from rnnkit.layers.sliding_window import SlidingWindow
from rnnkit.models.arx import DirectARX, LinearARX, closed_loop
from rnnkit.models.builders import build_stack


def _check_windows(x: Tensor, y: Tensor, context: int, who: str) -> None:
    if x.dim() != 3 or y.dim() != 3 or x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"{who}: expected x (B, T, I) and y (B, T, O) with the same B and T, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not 1 <= context < x.shape[1]:
        raise ValueError(f"{who}: context must be in [1, T={x.shape[1]}), got {context}")


class _LinearSkip(nn.Module):
    """The optional linear skip of a forecaster: ``linear(x, y) + alpha * sigma * network``.

    ``alpha`` (``correction_scale``) is learned and starts at 0, so an untrained model is its
    least-squares linear part; ``sigma`` is that fit's residual RMS (``linear.residual_std``),
    which puts the network's correction on the scale of what the linear part leaves.
    """

    linear: nn.Module | None

    def _add_linear_skip(self, linear: nn.Module | None) -> None:
        self.linear = linear
        if linear is not None:
            self.correction_scale = nn.Parameter(torch.zeros(()))  # alpha
            self.register_buffer("linear_fitted", torch.tensor(False))

    @torch.no_grad()
    def fit_linear(self, pieces: Sequence[tuple[np.ndarray, np.ndarray]], loss="mse") -> None:
        """Initialise the linear skip on ``(u (N, I), y (N, O))`` pieces: least squares, or
        least absolute deviations with ``loss="mae"`` (the training loss's own optimum).

        Once: a model restored from a checkpoint keeps its trained skip.
        """
        if self.linear is not None and not self.linear_fitted:
            self.linear.fit(pieces, loss)
            self.linear_fitted.fill_(True)


class Forecaster(_LinearSkip):
    r"""Direct multi-step forecaster: an encoder reads the context, a head emits ``H`` steps.

    .. math::
        e = \text{encoder}([y_{t-W}; u_{t-W}], \dots, [y_{t-1}; u_{t-1}])_{\text{last}}, \qquad
        (\hat y_t, \dots, \hat y_{t+H-1}) = \underbrace{\Theta\, r_t}_{\text{direct ARX
        (optional)}} + \alpha \sigma \odot (W_{\text{head}}\, e + b)

    Symbols: :math:`W` the window (context rows), :math:`H` the horizon, :math:`y` targets,
    :math:`u` exogenous inputs, :math:`[\,;\,]` concatenation. The encoder is any layer with the
    ``(x, lengths) -> (outputs, state)`` face: a recurrent stack from
    :func:`rnnkit.models.build_stack` or the :class:`rnnkit.layers.SlidingWindow` baseline.
    The ``H`` steps of a block come at once (direct strategy); free run over more than ``H``
    steps feeds each block back (recursive strategy). With a ``linear`` skip
    (:class:`rnnkit.models.arx.DirectARX` on the last ``K`` rows, :math:`r_t` its regressors),
    the network learns a correction scaled by :math:`\alpha`, learned and starting at 0 (ReZero,
    Bachlechner et al. 2020), and by :math:`\sigma`, the RMS of the least-squares residuals of
    each output: the untrained model is the direct linear forecast, after :meth:`fit_linear`
    the least-squares one. Without it, :math:`\alpha \sigma = 1` and no :math:`\Theta r_t`
    term.

    Args:
        encoder: reads ``(B, W, O + I)``; its ``output_size`` feeds the head.
        input_size: I, exogenous inputs (0 for a pure autoregressive series).
        output_size: O, targets.
        window: W, context rows the encoder reads.
        horizon: H, steps emitted at once.
        head: maps the encoder's last output to ``H * O``; ``None`` when the encoder already
            emits ``H * O`` features.
        linear: the direct linear skip (its ``horizon`` = H, ``delays`` <= W); ``None``: none.

    Shape:
        forward: x (B, W + H, I), y (B, W + H, O), context = W -> (B, H, O).
    """

    def __init__(
        self,
        encoder: nn.Module,
        input_size: int,
        output_size: int,
        window: int,
        horizon: int,
        head: nn.Module | None = None,
        linear: DirectARX | None = None,
    ) -> None:
        super().__init__()
        check_positive(output_size=output_size, window=window, horizon=horizon)
        if linear is not None and (linear.horizon != horizon or linear.delays > window):
            raise ValueError(
                f"Forecaster: the linear skip must emit horizon = {horizon} steps from at most "
                f"window = {window} rows, got {linear.horizon} steps from {linear.delays}"
            )
        if encoder.input_size != output_size + input_size:
            raise ValueError(
                f"Forecaster: encoder reads {encoder.input_size} features per step, expected "
                f"output_size + input_size = {output_size} + {input_size}"
            )
        self.encoder = encoder
        self.head = head if head is not None else nn.Identity()
        self.input_size, self.output_size = input_size, output_size
        self.window, self.horizon = window, horizon
        self._add_linear_skip(linear)

    def _block(self, x: Tensor, y: Tensor) -> Tensor:
        """``H`` steps after windows ``x (N, W, I)``, ``y (N, W, O)`` -> ``(N, H, O)``."""
        out, _ = self.encoder(torch.cat([y, x], dim=-1))  # (N, W, E)
        out = self.head(out[:, -1]).view(-1, self.horizon, self.output_size)  # (N, H, O)
        if self.linear is None:
            return out
        scale = self.correction_scale * self.linear.residual_std.to(x.dtype)  # (H*O,)
        return self.linear(x, y) + scale.view(self.horizon, self.output_size) * out

    def forward(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        """Training target: the free-run forecast of the steps after ``context``."""
        _check_windows(x, y, context, "Forecaster")
        return self.forecast(x, y[:, :context])

    def forecast(self, x: Tensor, y_context: Tensor) -> Tensor:
        """Free run: blocks of ``H`` steps, each fed back as context for the next."""
        W, T = y_context.shape[1], x.shape[1]
        if W < self.window:
            raise ValueError(f"Forecaster: needs {self.window} context rows, got {W}")
        history = y_context
        while history.shape[1] < T:
            t = history.shape[1]
            block = self._block(x[:, t - self.window : t], history[:, t - self.window :])
            history = torch.cat([history, block], dim=1)  # (B, t + H, O)
        return history[:, W:T]

    def one_step(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        """One step ahead from the true past: the first step of a block at every position."""
        _check_windows(x, y, context, "Forecaster")
        if context < self.window:
            raise ValueError(f"Forecaster: needs {self.window} context rows, got {context}")
        B, T, _ = y.shape
        S = T - context
        # all windows [t - W, t) for t in [context, T) at once
        xs = x[:, context - self.window : T - 1].unfold(1, self.window, 1)  # (B, S, I, W)
        ys = y[:, context - self.window : T - 1].unfold(1, self.window, 1)  # (B, S, O, W)
        xs = xs.permute(0, 1, 3, 2).reshape(B * S, self.window, -1)  # (B*S, W, I)
        ys = ys.permute(0, 1, 3, 2).reshape(B * S, self.window, -1)  # (B*S, W, O)
        return self._block(xs, ys)[:, 0].view(B, S, self.output_size)  # (B, S, O)


class NARXForecaster(_LinearSkip):
    r"""NARX network as a forecaster: open loop (series-parallel) or closed loop (parallel).

    .. math::
        \hat y_t = \underbrace{\Theta\, r_t}_{\text{linear ARX (optional)}}
                  + \alpha \sigma\, f(u_t, \dots, u_{t-L}, \tilde y_{t-1}, \dots, \tilde y_{t-K}),
        \qquad
        \tilde y = \begin{cases} y & \text{open loop (true past outputs fed back)} \\
        \hat y & \text{closed loop (own predictions fed back)} \end{cases}

    :math:`f` is the NARX cell; with a ``linear`` skip, :math:`\Theta r_t` is a
    :class:`rnnkit.models.LinearARX` on the same delays, plus its seasonal lags if it has any
    (:math:`r_t` its regressors; the context must then cover them) and the
    network learns a correction to it, scaled by a learned :math:`\alpha` that starts at 0
    (ReZero, Bachlechner et al. 2020), so the untrained model *is* the linear ARX, and after
    :meth:`fit_linear` the least-squares one: training starts from the linear fit. The
    correction is in units of :math:`\sigma`, the RMS of the least-squares residuals
    (``linear.residual_std``): an optimizer step moves it relative to what is left to explain,
    not to the series' scale, so a nearly linear series is not swamped by it. Without the skip,
    :math:`\hat y_t = f(\cdot)` (Lin et al. 1996).

    The context rows are always run open loop, so the delay lines start from real initial
    conditions (give at least ``max(L, K)`` context rows); after them, ``forecast`` runs closed
    loop and ``one_step`` open loop. With no exogenous input (``input_size = 0``) the cell reads a
    constant 1 (a pure NAR model).

    Args:
        layer: a one-layer stack of :class:`rnnkit.cells.NARXCell` (``build_stack``).
        input_size: I, exogenous inputs (0 allowed).
        output_size: O, targets.
        closed_loop_training: ``forward`` (training) runs closed loop, backpropagating through
            the fed-back predictions (BPTT), instead of open loop.
        linear: the linear ARX skip, on the cell's delays; ``None``: none.

    Shape:
        forward: x (B, T, I), y (B, T, O), context -> (B, T - context, O).
    """

    def __init__(
        self,
        layer: nn.Module,
        input_size: int,
        output_size: int,
        closed_loop_training: bool = False,
        linear: LinearARX | None = None,
    ) -> None:
        super().__init__()
        if layer.output_size != output_size or layer.input_size != max(input_size, 1):
            raise ValueError(
                f"NARXForecaster: layer maps {layer.input_size} -> {layer.output_size} features, "
                f"expected max(input_size, 1) = {max(input_size, 1)} -> output_size = "
                f"{output_size}"
            )
        self.layer = layer
        self.input_size, self.output_size = input_size, output_size
        self.closed_loop_training = closed_loop_training
        if linear is not None:
            cell = layer.layers[0].cell
            delays = (cell.input_delays, cell.output_delays)
            if (linear.input_delays, linear.output_delays) != delays or (
                linear.input_size,
                linear.output_size,
            ) != (input_size, output_size):
                raise ValueError(
                    "NARXForecaster: the linear skip must have the cell's sizes and delays "
                    f"(input_delays, output_delays) = {delays}"
                )
        self._add_linear_skip(linear)

    def _inputs(self, x: Tensor) -> Tensor:
        if self.input_size == 0:
            return x.new_ones(x.shape[0], x.shape[1], 1)  # (B, T, 1)
        return x

    def forward(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        _check_windows(x, y, context, "NARXForecaster")
        if self.closed_loop_training:
            return self.forecast(x, y[:, :context])
        return self.one_step(x, y, context)

    def forecast(self, x: Tensor, y_context: Tensor) -> Tensor:
        """Open loop over the context, then closed loop over the rest of ``x``."""
        if self.linear is not None:  # the sum is fed back: step by step
            return closed_loop(self.one_step, x, y_context, self.linear.memory)
        x = self._inputs(x)
        W = y_context.shape[1]
        _, state = self.layer(x[:, :W], feedback=y_context)
        out, _ = self.layer(x[:, W:], state=state)  # (B, T - W, O)
        return out

    def one_step(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        """Open loop over every step: the true outputs fill the delay lines."""
        _check_windows(x, y, context, "NARXForecaster")
        out, _ = self.layer(self._inputs(x), feedback=y)  # (B, T, O)
        if self.linear is None:
            return out[:, context:]
        if context < self.linear.memory:
            raise ValueError(
                f"NARXForecaster: the linear skip reads {self.linear.memory} past rows "
                f"(lags {self.linear.output_lags}), got a context of {context} (data.window)"
            )
        scale = self.correction_scale * self.linear.residual_std.to(x.dtype)  # (O,)
        return self.linear.one_step(x, y, context) + scale * out[:, context:]


def rnn_forecaster(
    cell: Callable[..., Cell],
    input_size: int,
    output_size: int,
    window: int,
    horizon: int,
    hidden_size: int,
    num_layers: int = 1,
    dropout: float = 0.0,
    linear_delays: int = 0,
    train_linear: bool = False,
    backend: str = "auto",
) -> Forecaster:
    """A recurrent encoder (any cell, via :func:`build_stack`) with a linear multi-step head.

    Args:
        cell: cell factory, e.g. ``functools.partial(GRUCell)``.
        input_size: I, exogenous inputs (the encoder reads ``O + I`` features per step).
        output_size: O, targets.
        window: W, context rows.
        horizon: H, steps forecast at once.
        hidden_size, num_layers, dropout, backend: of the stack.
        linear_delays: K > 0: a direct linear skip on the last K rows (:class:`DirectARX`),
            the network learns a correction; 0: none.
        train_linear: the skip's weights train too (else they stay at the least-squares fit).
    """
    encoder = build_stack(
        cell,
        output_size + input_size,
        hidden_size,
        num_layers=num_layers,
        dropout=dropout,
        backend=backend,
    )
    head = nn.Linear(encoder.output_size, horizon * output_size)
    linear = None
    if linear_delays:
        linear = DirectARX(input_size, output_size, linear_delays, horizon, train_linear)
    return Forecaster(encoder, input_size, output_size, window, horizon, head, linear)


def sliding_window_forecaster(
    input_size: int,
    output_size: int,
    window: int,
    horizon: int,
    hidden_size: int,
    nonlinearity: str = "tanh",
) -> Forecaster:
    """The finite-response baseline: an MLP over the last ``window`` rows emits ``H`` steps."""
    encoder = SlidingWindow(
        output_size + input_size,
        horizon * output_size,
        window,
        hidden_size,
        nonlinearity=nonlinearity,
    )
    return Forecaster(encoder, input_size, output_size, window, horizon)


def narx_forecaster(
    cell: Callable[..., Cell],
    input_size: int,
    output_size: int,
    hidden_size: int,
    closed_loop_training: bool = False,
    linear_skip: bool = True,
    train_linear: bool = False,
    backend: str = "auto",
    seasonal_lags: Sequence[int] = (),
) -> NARXForecaster:
    """A NARX forecaster: one layer of ``cell`` (a ``NARXCell`` partial with its delays).

    Args:
        cell: factory called as ``cell(input_size=..., output_size=..., hidden_size=...)``;
            give it the delays, e.g. ``partial(NARXCell, input_delays=10, output_delays=10)``.
        input_size: I, exogenous inputs (0: the cell reads a constant 1).
        output_size: O, targets.
        hidden_size: H of the cell.
        closed_loop_training: train closed loop instead of open loop.
        linear_skip: add a linear ARX on the cell's delays, the network learns a correction
            (``False``: the network alone).
        train_linear: the skip's weights train too (else they stay at the least-squares fit).
        seasonal_lags: output lags the linear skip reads besides the cell's ``1 .. K``, e.g.
            ``[m, m + 1]`` for a season of ``m`` rows; needs ``linear_skip``.
    """
    if seasonal_lags and not linear_skip:
        raise ValueError(
            "narx_forecaster: seasonal_lags are lags of the linear skip (linear_skip)"
        )

    def sized_cell(**sizes) -> Cell:
        return cell(output_size=output_size, **sizes)

    layer = build_stack(sized_cell, max(input_size, 1), hidden_size, num_layers=1, backend=backend)
    linear = None
    if linear_skip:
        built = layer.layers[0].cell
        linear = LinearARX(
            input_size,
            output_size,
            built.input_delays,
            built.output_delays,
            trainable=train_linear,
            seasonal_lags=list(seasonal_lags),
        )
    return NARXForecaster(layer, input_size, output_size, closed_loop_training, linear)
