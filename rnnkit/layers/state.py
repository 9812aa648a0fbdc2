"""Small helpers for states that are a tensor or a (possibly nested) tuple of tensors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def map_state(fn: Callable[..., Tensor], *states: Any) -> Any:
    """Apply ``fn`` leaf-wise to one or more states of the same structure."""
    first = states[0]
    if isinstance(first, Tensor):
        return fn(*states)
    if isinstance(first, (tuple, list)):
        mapped = [map_state(fn, *parts) for parts in zip(*states, strict=True)]
        return tuple(mapped) if isinstance(first, tuple) else mapped
    raise TypeError(f"a state is a tensor or a tuple of tensors, got {type(first).__name__}")


def where_state(keep_new: Tensor, new: Any, old: Any) -> Any:
    """Take ``new`` where ``keep_new (B,)`` is true, else ``old``, for every state tensor."""

    def pick(n: Tensor, o: Tensor) -> Tensor:
        mask = keep_new.view(-1, *([1] * (n.dim() - 1)))  # (B, 1, ...)
        return torch.where(mask, n, o)

    return map_state(pick, new, old)


def select_batch(state: Any, index: Tensor) -> Any:
    """Index every state tensor along its batch dimension (dim 0)."""
    return map_state(lambda s: s.index_select(0, index), state)
