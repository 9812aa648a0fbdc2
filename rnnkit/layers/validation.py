"""Argument checks shared by the layers: one clear ``ValueError`` instead of a deep stack trace."""

from __future__ import annotations

import torch
from torch import Tensor


def check_sequence(x: Tensor, input_size: int, who: str) -> None:
    """``x`` must be batch-first ``(B, T, input_size)`` with ``T >= 1``."""
    if x.dim() != 3:
        raise ValueError(f"{who}: expected x of shape (B, T, {input_size}), got {tuple(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(
            f"{who}: expected input width input_size={input_size}, got x of shape {tuple(x.shape)}"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{who}: x has zero time steps (shape {tuple(x.shape)})")


def check_lengths(lengths: Tensor | None, batch_size: int, steps: int, who: str) -> Tensor | None:
    """``lengths`` must be ``(B,)`` integers in ``[1, T]``; returns it as a long tensor."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.shape[0] != batch_size:
        raise ValueError(
            f"{who}: lengths must have shape (B,) = ({batch_size},), got {tuple(lengths.shape)}"
        )
    if lengths.is_floating_point():
        raise ValueError(f"{who}: lengths must be integers, got dtype {lengths.dtype}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1:
        raise ValueError(f"{who}: every length must be >= 1, got a length of {lo}")
    if hi > steps:
        raise ValueError(f"{who}: a length of {hi} is longer than the sequence (T={steps} steps)")
    return lengths.long()
