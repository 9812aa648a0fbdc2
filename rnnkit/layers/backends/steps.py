"""Which steps of a padded batch are real, and the states at them: the helpers every backend
shares.

A batch is padded after each sequence's end: step ``t`` of sequence ``b`` is real iff
``t < lengths[b]``. The time-major kernels (``bptt``, ``native``) carry this as a mask
``(T, B, 1)``; the step-by-step backends (``loop``, ``compiled``) read it one step ``(B,)`` at a
time; the C++ loops take the lengths back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnkit.layers.state import map_state

#: steps per block when a Python backward computes its coefficients blockwise: a block's
#: coefficients stay in cache for long T
BLOCK = 32


def step_mask(lengths: Tensor | None, steps: int, device: torch.device) -> Tensor | None:
    """``(T, B, 1)``, true at real steps, from ``lengths (B,)``; ``None`` for no lengths."""
    if lengths is None:
        return None
    return (torch.arange(steps, device=device)[:, None] < lengths.to(device))[..., None]


def per_step(mask: Tensor | None, steps: int) -> list[Tensor | None] | tuple[Tensor, ...]:
    """The mask as one ``(B,)`` tensor per step (all ``None`` without a mask), unbound once."""
    return [None] * steps if mask is None else mask[..., 0].unbind(0)


def lengths_of(mask: Tensor | None) -> Tensor | None:
    """``lengths (B,)`` int64 back from a ``(T, B, 1)`` mask, as the C++ loops take them."""
    return None if mask is None else mask[..., 0].sum(0)


def last_valid_step(mask: Tensor | None, steps: int) -> Tensor | int:
    """Index of each sequence's last step, ``(B,)``, from a ``(T, B, 1)`` validity mask (all
    ``steps - 1`` when there is none)."""
    return steps - 1 if mask is None else mask[:, :, 0].sum(0) - 1


def last_states(states: Any, mask: Tensor | None) -> Any:
    """Each sequence's state at its last valid step, from states of every step ``(T, B, ...)``."""
    if mask is None:
        return map_state(lambda s: s[-1], states)
    last = last_valid_step(mask, mask.shape[0])
    batch = torch.arange(len(last), device=last.device)
    return map_state(lambda s: s[last, batch], states)


def prev_states(s0: Tensor, ss: Tensor, mask: Tensor | None) -> Tensor:
    """``(s_{-1}, s_0, ..., s_{T-2})`` as ``(T, B, H)``; zero past each end when masked (a
    state there may have overflowed, and ``0 * inf`` would reach a weight gradient as NaN)."""
    prev = torch.cat([s0.unsqueeze(0), ss[:-1]])
    return prev if mask is None else torch.where(mask, prev, 0)


def recording(*tensors: Tensor) -> bool:
    """Autograd will need this op's activations: a loop may skip storing them otherwise."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
