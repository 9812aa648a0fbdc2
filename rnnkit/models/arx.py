r"""Linear ARX: the least-squares baseline a NARX network must beat on the same lags."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.cells.base import check_positive


class LinearARX(nn.Module):
    r"""Linear autoregressive model with exogenous inputs, fitted by least squares (or least
    absolute deviations).

    .. math::
        \hat y_t = \sum_{k \in \mathcal K} A_k \tilde y_{t-k} + \sum_{l=0}^{L} B_l u_{t-l} + c
                 = \Theta\, r_t, \qquad
        r_t = [\tilde y_{t-k}\ (k \in \mathcal K); u_t; \dots; u_{t-L}; 1]

    (without the intercept, ``intercept=False``: no :math:`c` and no trailing 1 in :math:`r_t`).

    Symbols and lags as :class:`rnnkit.cells.NARXCell` (``K`` output delays, ``L`` input delays,
    so ``L + 1`` input taps with :math:`u_t` included; values before the start are 0), and the
    output lags :math:`\mathcal K = \{1, \dots, K\} \cup S` with ``S`` the optional seasonal
    lags (e.g. :math:`\{m, m + 1\}` for period :math:`m`: the multiplicative seasonal AR of
    Box & Jenkins 1970, without the :math:`m + 1` delays in between);
    :math:`\tilde y` is the true output (open loop) or the model's own prediction (closed loop).
    The same ``forecast``/``one_step`` calls as the forecasters in
    :mod:`rnnkit.models.forecaster`. :meth:`fit` solves
    :math:`\min_\Theta \sum_t \lVert y_t - \Theta r_t \rVert^2` over the training rows (or
    the absolute errors, ``loss="mae"``).

    Args:
        input_size: I, exogenous inputs (0 allowed).
        output_size: O, targets.
        input_delays: L.
        output_delays: K.
        trainable: :math:`\Theta` is a parameter (trained by gradient descent after
            :meth:`fit`) instead of a buffer set by :meth:`fit` only.
        seasonal_lags: S, output lags read besides ``1 .. K`` (each > 0).
        intercept: fit the constant :math:`c`.

    Attributes:
        output_lags: :math:`\mathcal K`, ascending (also the buffer ``lags``, and ``intercept``
            a bool buffer: a checkpoint carries the structure, which :meth:`set_structure` may
            have changed after construction, and loading adopts it before the weights).
        weight (O, |K|*O + (L+1)*I + 1): :math:`\Theta`, columns in the order of :math:`r_t`
        (the last, 1, only with the intercept); zeros until :meth:`fit`.
        residual_std (O,): buffer, the root mean square of the least-squares residuals (1
        until :meth:`fit`): the size of what a nonlinear correction has left to explain.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        input_delays: int,
        output_delays: int,
        trainable: bool = False,
        seasonal_lags: Sequence[int] = (),
        intercept: bool = True,
    ):
        super().__init__()
        check_positive(
            output_size=output_size, input_delays=input_delays, output_delays=output_delays
        )
        if input_size < 0:
            raise ValueError(f"LinearARX: input_size must be >= 0, got {input_size}")
        self.input_size, self.output_size = input_size, output_size
        self.input_delays, self.output_delays = input_delays, output_delays
        _register_weight(self, torch.zeros(output_size, 0), trainable)
        self.register_buffer("residual_std", torch.ones(output_size))
        self.register_buffer("lags", torch.zeros(0, dtype=torch.long))
        self.register_buffer("intercept", torch.tensor(True))
        self.set_structure(seasonal_lags, intercept)

    def set_structure(self, seasonal_lags: Sequence[int], intercept: bool) -> None:
        """Read the output lags ``1 .. K`` and ``seasonal_lags``, with or without the intercept;
        the weights restart at zero (unfitted)."""
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in seasonal_lags):
            raise ValueError(
                f"LinearARX: seasonal_lags must be positive integers, got {list(seasonal_lags)}"
            )
        self.output_lags = sorted(set(range(1, self.output_delays + 1)) | set(seasonal_lags))
        I, O = self.input_size, self.output_size
        width = len(self.output_lags) * O + (self.input_delays + 1) * I + int(intercept)
        weight = self.weight.new_zeros(O, width)
        if isinstance(self.weight, nn.Parameter):
            self.weight.data = weight  # the same parameter: an optimizer made before still has it
        else:
            self.weight = weight
        self.residual_std.fill_(1.0)
        self.has_intercept = bool(intercept)  # read at every step: no tensor to sync on
        self.lags = torch.tensor(self.output_lags, device=self.lags.device)
        self.intercept.fill_(self.has_intercept)

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        # adopt the saved structure first, so the saved weight fits; a checkpoint written
        # before the structure was saved (no such keys) keeps the one built from the config
        lags, intercept = state_dict.get(prefix + "lags"), state_dict.get(prefix + "intercept")
        if lags is not None and intercept is not None:
            self.set_structure(lags.tolist(), bool(intercept))
        super()._load_from_state_dict(state_dict, prefix, *args)
        missing_keys = args[2]
        for key in (prefix + "lags", prefix + "intercept"):
            if key not in state_dict and key in missing_keys:
                missing_keys.remove(key)

    @property
    def memory(self) -> int:
        """Past rows one prediction reads: ``max(L, max K)``."""
        return max(self.input_delays, self.output_lags[-1])

    @property
    def seasonal_lags(self) -> list[int]:
        """The output lags beyond ``1 .. K``."""
        return [k for k in self.output_lags if k > self.output_delays]

    def regressors(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        r"""Rows :math:`r_t` for every step ``t`` in ``[context, T)``: ``(B, T - context, width)``.

        ``x (B, T, I)``, ``y (B, T, O)``; only ``y[:, :T-1]`` is read (never the row predicted).
        """
        L, p = self.input_delays, self.memory
        T = x.shape[1]
        xp, yp = _pad_front(x, p), _pad_front(y, p)  # row t of the series is row t + p
        # steps t in [context, T): y rows t - k (k in the lags) and x rows [t-L, t], newest first
        ys = torch.cat([yp[:, context + p - k : T + p - k] for k in self.output_lags], dim=-1)
        # ys (B, S, |K|*O): blocks of O per lag, lags ascending
        xs = xp[:, context + p - L : T + p].unfold(1, L + 1, 1).flip(-1)  # (B, S, I, L+1)
        xs = xs.transpose(-1, -2).flatten(2)  # (B, S, (L+1)*I)
        ones = [ys.new_ones(*ys.shape[:2], 1)] if self.has_intercept else []
        return torch.cat([ys, xs, *ones], dim=-1)

    @torch.no_grad()
    def fit(self, pieces: Sequence[tuple[np.ndarray, np.ndarray]], loss: str = "mse") -> LinearARX:
        """Least squares (``loss="mse"``) or least absolute deviations (``"mae"``) over every
        step of every ``(u (N, I), y (N, O))`` piece.

        Only steps whose lags all lie inside their piece are used (no zero-padded rows).
        """
        rows, targets = [], []
        for u, y in pieces:
            u = torch.as_tensor(np.asarray(u), dtype=torch.float64)[None]  # (1, N, I)
            y = torch.as_tensor(np.asarray(y), dtype=torch.float64)[None]  # (1, N, O)
            if y.shape[1] > self.memory:
                rows.append(self.regressors(u, y, self.memory)[0])
                targets.append(y[0, self.memory :])
        if not rows:
            raise ValueError(
                f"LinearARX.fit: no piece is longer than the lags ({self.memory} steps)"
            )
        _fit_linear(self, torch.cat(rows), torch.cat(targets), loss)
        return self

    def forward(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        return self.one_step(x, y, context)

    def one_step(self, x: Tensor, y: Tensor, context: int) -> Tensor:
        """Each step from the true past: ``(B, T - context, O)``."""
        return self.regressors(x, y, context) @ self.weight.to(x.dtype).T

    def forecast(self, x: Tensor, y_context: Tensor) -> Tensor:
        """Free run after ``y_context (B, W, O)``, feeding back its own predictions."""
        return closed_loop(self.one_step, x, y_context, self.memory)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.output_size}, input_delays={self.input_delays}, "
            f"output_delays={self.output_delays}"
            + (f", output_lags={self.output_lags}" if self.seasonal_lags else "")
            + ("" if self.has_intercept else ", intercept=False")
        )


def _register_weight(module: nn.Module, weight: Tensor, trainable: bool) -> None:
    if trainable:
        module.weight = nn.Parameter(weight)
    else:
        module.register_buffer("weight", weight)


FIT_LOSSES = ("mse", "mae")


def _fit_linear(module: nn.Module, rows: Tensor, targets: Tensor, loss: str = "mse") -> None:
    r"""Set ``module.weight (C, width)`` to the solution of ``rows @ W.T = targets``
    (``(N, width)``, ``(N, C)``) and ``module.residual_std (C,)`` to its residuals' RMS.

    ``loss="mse"``: least squares. ``"mae"``: least absolute deviations (the conditional median,
    which MAE and MASE reward: on a count series of mostly zeros it is 0 where the mean is not),
    by iteratively reweighted least squares, weights :math:`1 / \max(|r_i|, \epsilon)` from the
    last residuals (Schlossmacher 1973), started from the least-squares solution.
    """
    if loss not in FIT_LOSSES:
        raise ValueError(f"linear fit: loss must be one of {list(FIT_LOSSES)}, got {loss!r}")
    a, b = rows.numpy(), targets.numpy()
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)  # (width, C)
    if loss == "mae":
        solution = np.stack(
            [_least_absolute(a, b[:, c], solution[:, c]) for c in range(b.shape[1])], axis=1
        )
    rms = np.sqrt(np.mean((b - a @ solution) ** 2, axis=0))
    module.weight.copy_(torch.as_tensor(solution.T, dtype=module.weight.dtype))
    module.residual_std.copy_(torch.as_tensor(np.maximum(rms, 1e-8)))


def _least_absolute(a: np.ndarray, b: np.ndarray, start: np.ndarray, steps: int = 100):
    r"""IRLS for :math:`\min_w \sum_i |b_i - a_i w|` from ``start``: ``(N, D), (N,) -> (D,)``."""
    eps = 1e-6 * max(float(np.abs(b).mean()), 1e-12)
    w = start
    for _ in range(steps):
        weight = np.sqrt(1.0 / np.maximum(np.abs(b - a @ w), eps))  # (N,)
        new, *_ = np.linalg.lstsq(a * weight[:, None], b * weight, rcond=None)
        if np.allclose(new, w, rtol=1e-9, atol=1e-12):
            return new
        w = new
    return w


def _pad_front(v: Tensor, rows: int) -> Tensor:
    """``rows`` zero rows before the first: ``(B, T, F) -> (B, rows + T, F)``."""
    return torch.cat([v.new_zeros(v.shape[0], rows, v.shape[2]), v], dim=1)


def closed_loop(
    one_step: Callable[[Tensor, Tensor, int], Tensor],
    x: Tensor,
    y_context: Tensor,
    memory: int,
) -> Tensor:
    r"""Free run of a finite-memory one-step model, its own predictions fed back.

    For a model whose prediction of :math:`y_t` reads :math:`y_{t-1}, \dots, y_{t-p}` and
    :math:`u_t, \dots, u_{t-p}` only (``p = memory``; values before the start are 0), each step
    is ``one_step`` on the last ``p + 1`` rows with the predictions so far in place of the
    unknown outputs:

    .. math::
        \hat y_t = f(u_{t-p..t}, \tilde y_{t-p..t-1}), \qquad
        \tilde y_s = y_s \ (s < W), \quad \tilde y_s = \hat y_s \ (s \ge W)

    Args:
        one_step: ``(x (B, p+1, I), y (B, p+1, O), p) -> (B, 1, O)``; its last ``y`` row is
            never read.
        x: ``(B, T, I)`` inputs over context and forecast.
        y_context: ``(B, W, O)`` the known outputs.
        memory: p.

    Returns:
        ``(B, T - W, O)``; differentiable (closed-loop training backpropagates through it).
    """
    W, T = y_context.shape[1], x.shape[1]
    if T == W:
        return y_context[:, :0]
    xp = _pad_front(x, memory)  # row t is row t + p
    history = list(_pad_front(y_context, memory).unbind(1))  # rows before t, each (B, O)
    unknown = y_context.new_zeros(y_context.shape[0], 1, y_context.shape[2])  # never read
    for t in range(W, T):
        past = torch.stack(history[t : t + memory], dim=1)  # rows [t - p, t), (B, p, O)
        window = torch.cat([past, unknown], dim=1)  # (B, p + 1, O)
        history.append(one_step(xp[:, t : t + memory + 1], window, memory)[:, 0])
    return torch.stack(history[memory + W :], dim=1)


class DirectARX(nn.Module):
    r"""Direct multi-step linear AR(X): the next ``H`` steps linear in of the last ``K`` rows.

    .. math::
        (\hat y_t; \dots; \hat y_{t+H-1}) = \Theta\, [y_{t-1}; \dots; y_{t-K};
        u_{t-1}; \dots; u_{t-K}; 1]

    Each of the ``H * O`` outputs has its own least-squares row of :math:`\Theta` (the direct
    strategy of multi-step estimation; Chevillon, "Direct multi-step estimation and
    forecasting", J. Economic Surveys 2007), so no prediction is fed back inside a block.

    Args:
        input_size: I, exogenous inputs (0 allowed).
        output_size: O, targets.
        delays: K, past rows read (the last ``K`` of the window).
        horizon: H, steps emitted at once.
        trainable: :math:`\Theta` is a parameter instead of a buffer set by :meth:`fit`.

    Shape:
        x (N, W, I), y (N, W, O) with ``W >= K`` -> (N, H, O).

    Attributes:
        weight (H*O, K*(O+I) + 1): :math:`\Theta`; residual_std (H*O,): as
        :class:`LinearARX`'s, one per output.
    """

    def __init__(
        self, input_size: int, output_size: int, delays: int, horizon: int, trainable=False
    ):
        super().__init__()
        check_positive(output_size=output_size, delays=delays, horizon=horizon)
        self.input_size, self.output_size = input_size, output_size
        self.delays, self.horizon = delays, horizon
        width = delays * (output_size + input_size) + 1
        _register_weight(self, torch.zeros(horizon * output_size, width), trainable)
        self.register_buffer("residual_std", torch.ones(horizon * output_size))

    def _regressors(self, x: Tensor, y: Tensor) -> Tensor:
        """Regressors ``[y_{t-1} .. y_{t-K}, u_{t-1} .. u_{t-K}, 1]`` of windows ending at t."""
        K = self.delays
        ys, xs = y[:, -K:].flip(1).flatten(1), x[:, -K:].flip(1).flatten(1)
        return torch.cat([ys, xs, ys.new_ones(ys.shape[0], 1)], dim=1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        out = self._regressors(x, y) @ self.weight.to(x.dtype).T  # (N, H*O)
        return out.view(-1, self.horizon, self.output_size)

    @torch.no_grad()
    def fit(self, pieces: Sequence[tuple[np.ndarray, np.ndarray]], loss: str = "mse") -> DirectARX:
        """Least squares (or absolute deviations, ``loss="mae"``) over every window (``K``
        rows, then ``H``) of each ``(u, y)`` piece."""
        K, H = self.delays, self.horizon
        rows, targets = [], []
        for u, y in pieces:
            u = torch.as_tensor(np.asarray(u), dtype=torch.float64)  # (N, I)
            y = torch.as_tensor(np.asarray(y), dtype=torch.float64)  # (N, O)
            if len(y) < K + H:
                continue
            xs = u[: len(u) - H].unfold(0, K, 1).transpose(1, 2)  # (S, K, I): rows [t-K, t)
            ys = y[: len(y) - H].unfold(0, K, 1).transpose(1, 2)  # (S, K, O)
            rows.append(self._regressors(xs, ys))
            targets.append(y[K:].unfold(0, H, 1).transpose(1, 2).flatten(1))  # (S, H*O)
        if not rows:
            raise ValueError(f"DirectARX.fit: no piece has delays + horizon = {K + H} rows")
        _fit_linear(self, torch.cat(rows), torch.cat(targets), loss)
        return self
