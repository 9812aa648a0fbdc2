r"""The ``scan`` backend: cells whose recurrence is linear in the state, solved over all steps.

For :math:`h_t = a_t \odot h_{t-1} + b_t` with :math:`a_t, b_t` from :math:`x_t` alone
(:class:`rnnkit.cells.linear.LinearRecurrentCell`: minGRU, minLSTM; Feng et al. 2024), the
coefficients of every step come from one matmul, and the steps compose associatively (Blelloch
1990): applying :math:`(a_1, b_1)` then :math:`(a_2, b_2)` is :math:`(a_2 a_1, a_2 b_1 + b_2)`.
:func:`scan` uses that in two levels of chunks of about :math:`\sqrt T` steps:

1. inside every chunk at once, the recurrence from a zero state, and the running products
   :math:`A_j = a_j \cdots a_1` (products of gates, no division and no logarithm: stable);
2. across chunks, step by step, the state entering each chunk;
3. :math:`h = h^{\text{local}} + A \odot h^{\text{entering}}`, all steps at once.

That is :math:`2\sqrt T` wide steps instead of :math:`T` narrow ones, for accelerators; on CPU
the plain sequential recurrence (``chunk=1``, one fused multiply-add over ``(B, H)`` a step) is
faster at every length measured, so it runs there (:func:`default_chunk`), as one C++ pass
over ``T`` (``rnnkit/csrc/scan.cpp``, built with the ``native`` backend's library; the loop of
``addcmul`` here without it). Either way the expensive part, the input projection, is one
matmul for all steps.

The backward of a linear recurrence is one too, run in reverse:
:math:`\delta_t = g_t + a_{t+1} \delta_{t+1}`, then :math:`\partial a_t = \delta_t h_{t-1}`,
:math:`\partial b_t = \delta_t`, :math:`\partial h_{-1} = a_0 \delta_0`
(:class:`_LinearRecurrenceFn`; the SRU kernel reuses it for its cell state).

Variable lengths: past a sequence's end :math:`a = 1, b = 0`, so its state is kept exactly and
the final state is the last step's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends import native_build

#: below this many steps the plain sequential recurrence is the faster solver on an accelerator
SEQUENTIAL_BELOW = 64


#: steps per block of :func:`unroll_scan`: longer sequences run block after block, so that the
#: coefficients and temporaries of a block stay in cache (measured at T = 4000)
BLOCK_STEPS = 512


def default_chunk(steps: int, device: torch.device) -> int:
    """The chunk length :func:`scan` uses: 1 (sequential) on CPU, where one element-wise op a
    step over ``(B, H)`` costs less than the chunked scan's extra passes over memory
    (measured up to T = 4000, docs/benchmarks.md), and for short sequences; else ~sqrt(T), so
    that an accelerator runs 2 sqrt(T) wide steps instead of T narrow ones."""
    return 1 if device.type == "cpu" or steps < SEQUENTIAL_BELOW else math.isqrt(steps)


def _native_ops(t: Tensor):
    """The C++ sequential loops, where they run (CPU, float32/64, library built), or ``None``."""
    if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64):
        return None
    return native_build.load()


@torch.no_grad()
def scan(a: Tensor, b: Tensor, h0: Tensor, chunk: int) -> Tensor:
    """``h_t = a_t * h_{t-1} + b_t`` for ``a, b (T, B, H)`` and ``h0 (B, H)`` -> ``(T, B, H)``.

    No autograd (see :func:`linear_recurrence`). ``chunk`` steps per chunk; 1 is sequential.
    """
    T = a.shape[0]
    if chunk <= 1 or chunk >= T:
        ops = _native_ops(b)
        if ops is not None:
            return ops.linear_recurrence(a.contiguous(), b.contiguous(), h0.contiguous())
        hs = torch.empty_like(b)
        h = h0
        for t in range(T):
            h = torch.addcmul(b[t], a[t], h, out=hs[t])
        return hs
    n = -(-T // chunk)
    pad = n * chunk - T  # identity steps (a = 1, b = 0) fill the last chunk
    if pad:
        a = torch.cat([a, a.new_ones(pad, *a.shape[1:])])
        b = torch.cat([b, b.new_zeros(pad, *b.shape[1:])])
    # (chunk, n, B, H): step j of every chunk is one contiguous slice
    a = a.view(n, chunk, *a.shape[1:]).transpose(0, 1).contiguous()
    b = b.view(n, chunk, *b.shape[1:]).transpose(0, 1).contiguous()
    local = torch.empty_like(b)  # 1. from a zero state, inside every chunk at once
    local[0] = b[0]
    for j in range(1, chunk):
        torch.addcmul(b[j], a[j], local[j - 1], out=local[j])
    decay = torch.cumprod(a, dim=0)  # A_j = a_j ... a_1 inside each chunk
    entering = torch.empty_like(b[0])  # 2. (n, B, H): the state entering each chunk
    h = h0
    for k in range(n):
        entering[k] = h
        h = torch.addcmul(local[-1, k], decay[-1, k], h)
    hs = torch.addcmul(local, decay, entering)  # 3. (chunk, n, B, H)
    return hs.transpose(0, 1).reshape(n * chunk, *hs.shape[2:])[:T]


@torch.no_grad()
def reverse_scan(a: Tensor, g: Tensor, chunk: int) -> Tensor:
    r""":math:`\delta_t = g_t + a_{t+1} \delta_{t+1}` (:math:`\delta_{T-1} = g_{T-1}`) for
    ``a, g (T, B, H)``: the transpose of :func:`scan`, no autograd."""
    T = a.shape[0]
    if chunk <= 1 or chunk >= T:  # in place of the flips and the shift of the chunked path
        ops = _native_ops(g)
        if ops is not None:
            return ops.reverse_linear_recurrence(a.contiguous(), g.contiguous())
        delta = torch.empty_like(g)
        d = delta[T - 1].copy_(g[T - 1])
        for t in range(T - 2, -1, -1):
            d = torch.addcmul(g[t], a[t + 1], d, out=delta[t])
        return delta
    a_next = torch.cat([a[1:], torch.zeros_like(a[:1])])
    return scan(a_next.flip(0), g.flip(0), torch.zeros_like(g[0]), chunk).flip(0)


class _LinearRecurrenceFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        hs = scan(a, b, h0, default_chunk(a.shape[0], a.device))
        ctx.save_for_backward(a, h0, hs)
        return hs

    @staticmethod
    def backward(ctx, d_hs: Tensor):
        a, h0, hs = ctx.saved_tensors
        delta = reverse_linear_recurrence(a, d_hs)
        h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]])
        return delta * h_prev, delta, a[0] * delta[0]


def linear_recurrence(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """Differentiable :func:`scan` (its backward is a reverse scan, itself differentiable)."""
    return _LinearRecurrenceFn.apply(a.contiguous(), b.contiguous(), h0.contiguous())


def reverse_linear_recurrence(a: Tensor, g: Tensor) -> Tensor:
    r"""The backward recurrence :math:`\delta_t = g_t + a_{t+1} \delta_{t+1}`
    (:math:`\delta_{T-1} = g_{T-1}`) for ``a, g (T, B, H)``: the gradient reaching every
    :math:`h_t` of :math:`h_t = a_t h_{t-1} + b_t` from the gradients ``g`` of the outputs.

    Differentiable when a graph is being built (a gradient of a gradient), as a forward
    recurrence over the flipped sequence; else the direct loop of :func:`reverse_scan`."""
    if torch.is_grad_enabled() and (a.requires_grad or g.requires_grad):
        a_next = torch.cat([a[1:], torch.zeros_like(a[:1])])
        return linear_recurrence(a_next.flip(0), g.flip(0), torch.zeros_like(g[0])).flip(0)
    return reverse_scan(a, g.contiguous(), default_chunk(a.shape[0], a.device))


def supports(cell: Cell, feedback: Tensor | None) -> bool:
    return feedback is None and callable(getattr(cell, "scan_coefficients", None))


def unroll_scan(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Run a linear-recurrence ``cell`` over ``x (B, T, F)``: ``(outputs (B, T, H), h_T)``."""
    if not supports(cell, feedback):
        raise ValueError(f"backend 'scan' cannot run {type(cell).__name__}")
    T = x.shape[1]
    valid = None
    if lengths is not None:
        steps = torch.arange(T, device=x.device)
        valid = (steps[:, None] < lengths.to(x.device))[..., None]  # (T, B, 1)
    outputs, h = [], state
    # blocks of steps: the coefficients and temporaries of one block stay in cache
    for start in range(0, T, BLOCK_STEPS):
        block = slice(start, start + BLOCK_STEPS)
        a, b = cell.scan_coefficients(x[:, block].transpose(0, 1))  # each (block, B, H)
        if valid is not None:
            a, b = torch.where(valid[block], a, 1), torch.where(valid[block], b, 0)
        hs = linear_recurrence(a, b, h)
        h = hs[-1]
        outputs.append(hs if valid is None else torch.where(valid[block], hs, 0))
    return torch.cat(outputs).transpose(0, 1), h
