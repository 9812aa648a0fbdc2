r"""``bptt`` kernels for output-feedback cells (Jordan, NARX): their recurrence runs through
their own outputs, so teacher forcing changes everything.

- **Open loop** (``feedback=`` true outputs, "series-parallel" training): the fed-back values
  are known in advance, so nothing recurrent is left but Jordan's linear memory
  :math:`m_t = \mu m_{t-1} + c\,y_{t-1}` (a loop of two elementwise ops, or nothing when
  :math:`\mu = 0`). Every hidden layer and output of all ``T`` steps is then one matmul each
  (NARX's delay lines one matmul over windows, a matmul a tap, or one ``conv1d``): the unroll
  is as parallel as a feed-forward network.
- **Closed loop** (own predictions): a real nonlinear recurrence. The input projection of all
  steps is precomputed (NARX: the whole input delay line at once) and the loop does only the
  feedback part; the backward is hand-written BPTT; both loops run in Python (``bptt``) or
  C++ (``native``). NARX with outputs wider than its hidden layer runs in *state form* where
  that is less work (:func:`state_form_pays`): its linear output layer lets the delay line of
  outputs be rewritten as one of hidden states (:func:`_narx_state_form`, :mod:`.tapped`), one
  matmul a step instead of two.

Each kernel returns ``(outputs (T, B, O), final state)``, as
:func:`rnnkit.layers.backends.bptt.unroll_with_kernel` expects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import ACTIVATIONS, Cell, State
from rnnkit.layers.backends import native_build
from rnnkit.layers.backends.first_order import first_order_only
from rnnkit.layers.backends.steps import last_states, last_valid_step
from rnnkit.layers.backends.tapped import TappedFn, act_grad, act_out
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)
_logged_forms: set = set()

# ----------------------------------------------------------------------------------------------
# Jordan


class _JordanClosedFn(torch.autograd.Function):
    """Closed-loop Jordan: m_t = mu m + c y, h = phi(xp_t + m W_mh^T), y = g(h W_ho^T + b)."""

    @staticmethod
    def forward(ctx, xp, m0, y0, w_mh, w_ho, b_ho, mu, c, act, out_act, mask, native):
        # Jordan's default memory is just the previous output: skip the decay arithmetic
        plain = not bool(mu.any()) and bool((c == 1).all())
        loop = _jordan_closed_native if native else _jordan_closed_loop
        ys, ms, hs = loop(xp, m0, y0, w_mh, w_ho, b_ho, mu, c, plain, act, out_act)
        ctx.act, ctx.out_act, ctx.native = act, out_act, native
        ctx.save_for_backward(m0, y0, w_mh, w_ho, mu, c, ms, hs, ys, mask)
        return ys, ms  # ms is None for the plain memory m_t = y_{t-1}: nothing to store

    @staticmethod
    @first_order_only
    def backward(ctx, d_ys, d_ms):
        m0, y0, w_mh, w_ho, mu, c, ms, hs, ys, mask = ctx.saved_tensors
        if ms is None:  # plain memory: m_t = y_{t-1}
            ms = torch.cat([y0.unsqueeze(0), ys[:-1]])
        k_h = act_grad(ctx.act, hs)  # (T, B, H)
        k_y = act_grad(ctx.out_act, ys)  # (T, B, O) or None
        if mask is not None:
            k_h = torch.where(mask, k_h, 0)
            if k_y is None:
                k_y = mask.to(ys.dtype).expand_as(ys)
            else:
                k_y = torch.where(mask, k_y, 0)
        if d_ys is None:
            d_ys = torch.zeros_like(ys)
        loop = _jordan_closed_backward_native if ctx.native else _jordan_closed_backward_loop
        d_ypre, d_pre, d_m_all, dm = loop(
            d_ys.contiguous(), d_ms, k_h, k_y, w_mh, w_ho, mu, c, mask is not None
        )
        m_prev = torch.cat([m0.unsqueeze(0), ms[:-1]])
        y_prev = torch.cat([y0.unsqueeze(0), ys[:-1]])
        hs_, ms_ = hs, ms
        if mask is not None:
            m_prev, y_prev = torch.where(mask, m_prev, 0), torch.where(mask, y_prev, 0)
            hs_, ms_ = torch.where(mask, hs, 0), torch.where(mask, ms, 0)
        dw_ho = d_ypre.flatten(0, 1).t() @ hs_.flatten(0, 1)
        db_ho = d_ypre.sum((0, 1))
        dw_mh = d_pre.flatten(0, 1).t() @ ms_.flatten(0, 1)
        dmu = (d_m_all * m_prev).sum((0, 1))
        dc = (d_m_all * y_prev).sum((0, 1))
        return (d_pre, dm * mu, dm * c, dw_mh, dw_ho, db_ho, dmu, dc, None, None, None, None)


def _jordan_closed_backward_loop(d_ys, d_ms, k_h, k_y, w_mh, w_ho, mu, c, masked: bool):
    """The closed-loop backward loop in Python: ``(d_ypre, d_pre, d_m_all, dm)``, with ``dm``
    the gradient reaching ``m_t`` from step ``t + 1`` (C++ ``jordan_closed_backward``)."""
    T = k_h.shape[0]
    d_ypre = torch.empty_like(d_ys)
    d_pre = torch.empty_like(k_h)
    d_m_all = torch.empty_like(d_ys)
    dm = d_ys.new_zeros(d_ys.shape[1:])
    for t in range(T - 1, -1, -1):
        dy = d_ys[t] if t == T - 1 else torch.addcmul(d_ys[t], c, dm)
        if k_y is not None:
            dy = dy * k_y[t]
        d_ypre[t] = dy
        torch.mul(dy @ w_ho, k_h[t], out=d_pre[t])
        dm = torch.addmm(dm * mu, d_pre[t], w_mh)
        if d_ms is not None and (masked or t == T - 1):
            dm = dm + d_ms[t]
        d_m_all[t] = dm
    return d_ypre, d_pre, d_m_all, dm


def _jordan_closed_backward_native(d_ys, d_ms, k_h, k_y, w_mh, w_ho, mu, c, masked: bool):
    """The same loop in C++ (``native`` backend)."""
    return native_build.load().jordan_closed_backward(
        d_ys, d_ms, k_h.contiguous(), k_y, w_mh, w_ho, mu, c, masked
    )


def _jordan_closed_loop(xp, m0, y0, w_mh, w_ho, b_ho, mu, c, plain, act, out_act):
    """The closed-loop forward in Python: ``(ys, ms, hs)``; ``ms`` is None when plain."""
    T, B, H = xp.shape
    O = w_ho.shape[0]
    ys = xp.new_empty(T, B, O)
    ms = None if plain else xp.new_empty(T, B, O)
    hs = torch.empty_like(xp)
    w_mh_t, w_ho_t = w_mh.t(), w_ho.t()
    m, y = m0, y0
    for t in range(T):
        if not plain:
            m = torch.addcmul(c * y, mu, m, out=ms[t])
        act_out(act, torch.addmm(xp[t], y if plain else m, w_mh_t), out=hs[t])
        torch.addmm(b_ho, hs[t], w_ho_t, out=ys[t])
        if out_act is not None:
            act_out(out_act, ys[t], out=ys[t])
        y = ys[t]
    return ys, ms, hs


def _jordan_closed_native(xp, m0, y0, w_mh, w_ho, b_ho, mu, c, plain, act, out_act):
    """The same loop in C++ (``native`` backend)."""
    ys, ms, hs = native_build.load().jordan_closed_forward(
        xp, m0, y0, w_mh, w_ho, b_ho, mu, c, plain, act, out_act or "none"
    )
    return ys, None if plain else ms, hs


def _narx_closed_native(xp, y_taps0, w_yh, w_hy, b_y, act):
    """The same loop in C++ (``native`` backend)."""
    return native_build.load().narx_closed_forward(xp, y_taps0, w_yh, w_hy, b_y, act)


def jordan(
    cell: Cell,
    x: Tensor,
    state: State,
    mask: Tensor | None,
    feedback: Tensor | None,
    native: bool = False,
):
    """Jordan's kernel; ``native`` runs the closed loop's forward in C++."""
    m0, y0 = state
    O = cell.output_size
    bias = None if cell.bias_ih is None else cell.bias_ih + cell.bias_mh
    xp = F.linear(x.transpose(0, 1), cell.weight_ih, bias)  # (T, B, H)
    mu = cell.decay
    if not isinstance(mu, Tensor):
        mu = xp.new_full((O,), mu)
    c = 1 - mu if cell.running_average else torch.ones_like(mu)
    if feedback is None:
        b_ho = cell.bias_ho if cell.bias_ho is not None else xp.new_zeros(O)
        ys, ms = _JordanClosedFn.apply(
            xp, m0, y0, cell.weight_mh, cell.weight_ho, b_ho, mu, c,
            cell.nonlinearity, cell.output_activation, mask, native,
        )  # fmt: skip
        if ms is not None:
            return ys, last_states((ms, ys), mask)
        # plain memory: the last m is the output one step before the last (y0 at step 0)
        before_last = last_valid_step(mask, x.shape[1]) - 1
        m_last = _last_taps(y0.unsqueeze(1), ys.transpose(0, 1), 1, before_last)[:, 0]
        return ys, (m_last, last_states(ys, mask))
    fed = feedback.transpose(0, 1)  # (T, B, O)
    y_prev = torch.cat([y0.unsqueeze(0), fed[:-1]])  # (T, B, O): what step t feeds back
    if cell.decay_logit is None and cell.memory_decay == 0.0:
        ms = y_prev  # m_t = y_{t-1}
    else:
        m, steps = m0, []
        for t in range(x.shape[1]):
            m = torch.addcmul(c * y_prev[t], mu, m)
            steps.append(m)
        ms = torch.stack(steps)  # (T, B, O)
    # one matmul over all (T*B) rows; a batched matmul against an expanded weight would
    # materialise a (T, H, O) weight gradient in the backward
    hs = ACTIVATIONS[cell.nonlinearity](xp + F.linear(ms, cell.weight_mh))  # (T, B, H)
    ys = F.linear(hs, cell.weight_ho, cell.bias_ho)  # (T, B, O)
    if cell.output_activation is not None:
        ys = ACTIVATIONS[cell.output_activation](ys)
    return ys, last_states((ms, fed), mask)


# ----------------------------------------------------------------------------------------------
# NARX


def _last_taps(history: Tensor, seq: Tensor, count: int, last: Tensor | int) -> Tensor:
    """A delay line's contents after each sequence's last step, ``(B, count, D)`` newest first:
    ``seq[last], seq[last - 1], ...``, reaching into ``history (B, W, D)`` (newest first) before
    the start. ``seq`` is ``(B, T, D)``; ``last`` is ``(B,)`` or one index for all."""
    B = seq.shape[0]
    if isinstance(last, int):  # one end for all: only the last `count` steps matter
        start = max(0, last + 1 - count)
        seq, last = seq[:, start : last + 1], last - start
    line = torch.cat([history.flip(1), seq], dim=1)  # (B, W + T, D), oldest first
    batch = torch.arange(B, device=seq.device)
    newest = history.shape[1] + torch.as_tensor(last, device=seq.device).expand(B)  # (B,)
    steps = newest[:, None] - torch.arange(count, device=seq.device)  # (B, count)
    return line[batch[:, None], steps]


#: delay lines of at most this many taps are multiplied as unfolded windows (one matmul over
#: ``T * B`` rows, copying the input ``n`` times); longer ones as one ``conv1d``
WINDOW_TAPS = 4
#: values at least this wide are multiplied tap by tap instead (no window copy)
SHIFTED_MIN_WIDTH = 128


def _delay_line_linear(history: Tensor, seq: Tensor, weight: Tensor, bias: Tensor | None):
    """A linear layer over a sliding delay line -> ``(T, B, H)`` contiguous, time-major.

    ``history (B, W, D)`` holds the values before ``seq (B, S, D)``, newest first;
    ``weight (H, n * D)`` has one ``(H, D)`` block ``W_k`` per tap, newest first. Output ``t``
    (of ``T = W + S - n + 1``) is ``b + sum_k W_k v_{t + n - 1 - k}`` over the line
    ``v = [history reversed, seq]``. Three ways, by shape (one thread, B = 32-256, H = 128-512):

    - wide values (``D >= SHIFTED_MIN_WIDTH``): the line time-major, one ``addmm`` per tap on
      its shifted ``(T * B, D)`` view: no copy of the windows (1.3-1.5x faster than them);
    - few taps of narrow values: the windows unfolded (one copy of ``n * D`` a row, oldest tap
      first with the weight's blocks reordered to match) and one matmul: half the time of a
      ``conv1d``, whose CPU kernel (im2col, then a matmul per sequence) is slow for short kernels;
    - many taps (NARX's forecasting shape has 11): one ``conv1d``; unfolding would copy the
      input ``n`` times (3.6x slower for n = 11 at T = 500).
    """
    D = history.shape[2]
    H, n = weight.shape[0], weight.shape[1] // D
    if D >= SHIFTED_MIN_WIDTH:
        line = torch.cat([history.flip(1).transpose(0, 1), seq.transpose(0, 1)])  # (W + S, B, D)
        T, B = line.shape[0] - n + 1, line.shape[1]
        rows = line.view(-1, D)  # tap k reads rows (n - 1 - k) B .. (n - 1 - k) B + T B
        out = None
        for k in range(n):
            v_k, w_k = rows[(n - 1 - k) * B :][: T * B], weight[:, k * D : (k + 1) * D].t()
            if out is not None:
                out = torch.addmm(out, v_k, w_k)
            else:
                out = v_k @ w_k if bias is None else torch.addmm(bias, v_k, w_k)
        return out.view(T, B, H)
    line = torch.cat([history.flip(1), seq], dim=1)  # (B, W + S, D), oldest first
    if n <= WINDOW_TAPS:
        windows = line.unfold(1, n, 1).permute(1, 0, 3, 2)  # (T, B, n, D), oldest tap first
        oldest_first = weight.view(H, n, D).flip(1).reshape(H, n * D)
        # one 2-D product: a 3-D view (a window copy is one at B = 1) would run as a bmm
        out = F.linear(windows.reshape(-1, n * D), oldest_first, bias)
        return out.view(*windows.shape[:2], H)
    kernel = weight.view(H, n, D).flip(1).transpose(1, 2)  # (H, D, n), oldest first
    return _time_major(F.conv1d(line.transpose(1, 2), kernel, bias))


def _time_major(channels_first: Tensor) -> Tensor:
    """``(B, H, T)`` -> ``(T, B, H)`` contiguous: the loops read each step's ``(B, H)`` rows."""
    return channels_first.permute(2, 0, 1).contiguous()


def state_form_pays(B: int, T: int, H: int, K: int, O: int) -> bool:
    """Whether closed-loop NARX runs faster in state form. Per row, the two products of a step
    cost ``(K + 1) O H`` multiply-adds; the state form's one product costs ``K H^2`` and the
    outputs, one matmul after the loop, ``O H``: it saves ``K H (O - H)`` a row, at the price
    of the weight product ``W_yh,k W_hy`` (``K O H^2``) once per call. So for outputs wider
    than the hidden layer it pays when ``B T (O - H) >= O H``.

    At ``O = H`` the work is equal and the shape decides: one product a step instead of two
    dependent ones, and the outputs as one large matmul, won from ``H = 512`` or ``B H = 2^15``
    on (one thread, T = 100, inference: B = 1 / 8 / 32 / 256 at H = 512 9.1 / 19.2 / 48 / 327
    ms against 11.8 / 22.5 / 53 / 343; B = 256, H = 128 36 against 42) and lost below (B = 1
    to 128 at H = 128 and 256, by 0-50%; training within 7% either way at H = 512).
    """
    if O == H:
        return H >= 512 or B * H >= 2**15
    return B * T * (O - H) >= O * H


class _NARXClosedFn(torch.autograd.Function):
    """Closed-loop NARX: a_t = xp_t + [y_{t-1} .. y_{t-K}] W_yh^T, y_t = phi(a_t) W_hy^T + b_y.

    The outputs live in one buffer ``R (B, T+K, O)`` in *reverse* time order, with the initial
    delay line at the end, so the delay line of every step is a plain slice
    ``R[:, T-t : T-t+K]`` (newest first, as ``weight_yh``'s blocks are): no shifting, no cat.
    The backward accumulates ``dy`` in the same layout: step ``t`` sends ``da_t W_yh`` to the
    ``K`` outputs it read with one strided add.
    """

    @staticmethod
    def forward(ctx, xp, y_taps0, w_yh, w_hy, b_y, act, mask, native):
        loop = _narx_closed_native if native else _narx_closed_loop
        r, hs = loop(xp, y_taps0, w_yh, w_hy, b_y, act)
        ctx.act, ctx.native = act, native
        ctx.save_for_backward(w_yh, w_hy, r, hs, mask)
        T = xp.shape[0]
        return r[:, :T].flip(1).transpose(0, 1)  # (T, B, O)

    @staticmethod
    @first_order_only
    def backward(ctx, d_ys):
        w_yh, w_hy, r, hs, mask = ctx.saved_tensors
        T, B, H = hs.shape
        K, O = r.shape[1] - T, r.shape[2]
        k_h = act_grad(ctx.act, hs)  # (T, B, H)
        if mask is not None:
            k_h = torch.where(mask, k_h, 0)
        dr = r.new_zeros(B, T + K, O)
        dr[:, :T] = d_ys.flip(0).transpose(0, 1)
        if ctx.native:
            d_a = native_build.load().narx_closed_backward(dr, k_h.contiguous(), w_yh, w_hy)
        else:
            d_a = _narx_closed_backward_loop(dr, k_h, w_yh, w_hy)
        d_y = dr[:, :T].flip(1).transpose(0, 1)  # (T, B, O)
        taps = r.unfold(1, K, 1)[:, 1 : T + 1].flip(1)  # (B, T, O, K): windows of steps 0..T-1
        taps = taps.transpose(-1, -2).transpose(0, 1).flatten(2)  # (T, B, K*O)
        hs_ = hs
        if mask is not None:
            taps, hs_ = torch.where(mask, taps, 0), torch.where(mask, hs, 0)
            d_y = torch.where(mask, d_y, 0)
        dw_hy = d_y.flatten(0, 1).t() @ hs_.flatten(0, 1)
        db_y = d_y.sum((0, 1))
        dw_yh = d_a.flatten(0, 1).t() @ taps.flatten(0, 1)
        return d_a, dr[:, T:], dw_yh, dw_hy, db_y, None, None, None


def _narx_closed_backward_loop(dr: Tensor, k_h: Tensor, w_yh: Tensor, w_hy: Tensor) -> Tensor:
    """The closed-loop backward loop in Python: ``d_a (T, B, H)``; ``dr (B, T+K, O)`` collects
    what each step sends back to the outputs it read (C++ ``narx_closed_backward``)."""
    T, B, _ = k_h.shape
    K, O = dr.shape[1] - T, dr.shape[2]
    d_a = torch.empty_like(k_h)
    for t in range(T - 1, -1, -1):
        torch.mul(dr[:, T - 1 - t] @ w_hy, k_h[t], out=d_a[t])  # (B, H)
        dr[:, T - t : T - t + K] += (d_a[t] @ w_yh).view(B, K, O)
    return d_a


def _narx_closed_loop(xp, y_taps0, w_yh, w_hy, b_y, act):
    """The closed-loop forward in Python: ``(r (B, T+K, O), hs (T, B, H))``."""
    T, B, H = xp.shape
    K, O = y_taps0.shape[1], y_taps0.shape[2]
    r = xp.new_empty(B, T + K, O)
    r[:, T:] = y_taps0
    hs = torch.empty_like(xp)
    w_yh_t, w_hy_t = w_yh.t(), w_hy.t()
    for t in range(T):
        taps = r[:, T - t : T - t + K].flatten(1)  # (B, K*O), y_{t-1} first
        h = act_out(act, torch.addmm(xp[t], taps, w_yh_t), out=hs[t])
        torch.addmm(b_y, h, w_hy_t, out=r[:, T - 1 - t])
    return r, hs


def narx(
    cell: Cell,
    x: Tensor,
    state: State,
    mask: Tensor | None,
    feedback: Tensor | None,
    native: bool = False,
):
    """NARX's kernel; ``native`` runs the closed loop's forward in C++."""
    x_taps, y_taps = state  # (B, L, F), (B, K, O)
    L, K, O = cell.input_delays, cell.output_delays, cell.output_size
    last = last_valid_step(mask, x.shape[1])
    x_final = _last_taps(x_taps, x, L, last)  # x_last .. x_{last-L+1}
    b_y = cell.bias_y if cell.bias_y is not None else x.new_zeros(O)
    state_form = feedback is None and state_form_pays(*x.shape[:2], cell.hidden_size, K, O)
    if feedback is None and (state_form, K, O) not in _logged_forms:
        _logged_forms.add((state_form, K, O))
        log.info(
            "NARX closed loop (K=%d, O=%d, H=%d) at B*T=%d: %s (state_form_pays)", K, O,
            cell.hidden_size, x.shape[0] * x.shape[1],
            "state form" if state_form else "two products a step",
        )  # fmt: skip
    if state_form:
        ys = _narx_state_form(cell, x, x_taps, y_taps, b_y, mask, native)
        return ys, (x_final, _last_taps(y_taps, ys.transpose(0, 1), K, last))
    xp = _delay_line_linear(x_taps, x, cell.weight_xh, cell.bias_h)  # (T, B, H)
    if feedback is not None:  # step t reads f_{t-1} .. f_{t-K}
        a = xp.add_(_delay_line_linear(y_taps, feedback[:, :-1], cell.weight_yh, None))
        ys = F.linear(ACTIVATIONS[cell.nonlinearity](a), cell.weight_hy, cell.bias_y)
        return ys, (x_final, _last_taps(y_taps, feedback, K, last))  # (T, B, O)
    ys = _NARXClosedFn.apply(
        xp, y_taps, cell.weight_yh, cell.weight_hy, b_y, cell.nonlinearity, mask, native
    )  # (T, B, O)
    return ys, (x_final, _last_taps(y_taps, ys.transpose(0, 1), K, last))


def _narx_state_form(
    cell: Cell, x: Tensor, x_taps: Tensor, y_taps: Tensor, b_y: Tensor, mask, native: bool
) -> Tensor:
    r"""Closed-loop NARX as a recurrence of order K on the hidden state (:mod:`.tapped`).

    With ``y_j = W_hy h_j + b_y`` for ``j >= 0``,
    ``a_t = xp_t + e_t + \sum_{k <= t} (W_yh,k W_hy) h_{t-k}``, where
    ``e_t = \sum_{k <= t} W_yh,k b_y + \sum_{k > t} W_yh,k y_{t-k}`` holds the output bias and
    the initial delay line: ``e_t = \sum_k W_yh,k b_y`` from step K on, which rides in the
    input delay line's bias. -> ys (T, B, O)
    """
    B, T = x.shape[:2]
    H, K, O = cell.hidden_size, y_taps.shape[1], y_taps.shape[2]
    w_yh = cell.weight_yh.view(H, K, O)  # blocks W_yh,1 .. W_yh,K
    w = (w_yh @ cell.weight_hy).reshape(H, K * H)  # [W_1 .. W_K], W_k = W_yh,k W_hy
    e_tail = w_yh.sum(1) @ b_y  # (H,)
    bias = e_tail if cell.bias_h is None else cell.bias_h + e_tail
    z = _delay_line_linear(x_taps, x, cell.weight_xh, bias)  # (T, B, H), new
    # the first steps read the initial delay line: [y_{t-1} .. y_{t-K}], b_y standing for y_j
    head = min(T, K)
    line = torch.cat([y_taps.flip(1), b_y.expand(B, head - 1, O)], dim=1)  # oldest first
    windows = line.unfold(1, K, 1).flip(-1).transpose(-1, -2).reshape(B, head, K * O)
    z[:head] += F.linear(windows.transpose(0, 1), cell.weight_yh) - e_tail
    hs = TappedFn.apply(z, None, w, cell.nonlinearity, mask, native)  # (T, B, H)
    if mask is not None:  # a state past the end may have overflowed: keep it out of dW_hy
        hs = torch.where(mask, hs, 0)
    return F.linear(hs, cell.weight_hy, b_y)
