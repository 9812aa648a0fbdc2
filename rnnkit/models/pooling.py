"""Many-to-one pooling: reduce ``(B, T, H)`` step outputs to ``(B, H)`` over valid steps only.

Padding never changes a result: every mode reads only ``t < lengths[b]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

POOLING_MODES = ("last", "mean", "max", "attention")


def valid_mask(lengths: Tensor | None, batch_size: int, steps: int, device) -> Tensor:
    """``(B, T)`` bool, true at ``t < lengths[b]`` (all true without lengths)."""
    if lengths is None:
        return torch.ones(batch_size, steps, dtype=torch.bool, device=device)
    t = torch.arange(steps, device=device)
    return t[None, :] < lengths.to(device)[:, None]  # (B, T)


class Pooling(nn.Module):
    r"""Summarise a sequence of step outputs in one vector.

    .. math::
        \text{last}: h_{L}, \quad
        \text{mean}: \tfrac{1}{L}\sum_{t \le L} h_t, \quad
        \text{max}: \max_{t \le L} h_t, \quad
        \text{attention}: \sum_{t \le L} \alpha_t h_t,\;
        \alpha = \operatorname{softmax}_{t \le L}(v^\top \tanh(W h_t))

    For a bidirectional encoder, ``last`` takes the forward half at the sequence's last valid
    step and the backward half at step 0 (where the backward direction ends), as torch's
    ``h_n`` does.

    Args:
        mode: ``"last" | "mean" | "max" | "attention"``.
        input_size: H, width of the step outputs (used by ``attention``).
        bidirectional: the step outputs are ``[forward; backward]`` halves (used by ``last``).

    Shape:
        out (B, T, H), lengths (B,) or None -> (B, H).
    """

    def __init__(self, mode: str, input_size: int, bidirectional: bool = False) -> None:
        super().__init__()
        if mode not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {mode!r}")
        self.mode = mode
        self.input_size = input_size
        self.bidirectional = bidirectional
        if mode == "attention":
            self.proj = nn.Linear(input_size, input_size)
            self.score = nn.Linear(input_size, 1, bias=False)

    def forward(self, out: Tensor, lengths: Tensor | None = None) -> Tensor:
        B, T, H = out.shape
        mask = valid_mask(lengths, B, T, out.device)  # (B, T)
        if self.mode == "last":
            last = (mask.sum(1) - 1).clamp(min=0)  # (B,)
            index = last.view(B, 1, 1).expand(B, 1, H)
            pooled = out.gather(1, index).squeeze(1)  # (B, H)
            if self.bidirectional:
                half = H // 2
                pooled = torch.cat([pooled[:, :half], out[:, 0, half:]], dim=-1)  # (B, H)
            return pooled
        if self.mode == "mean":
            summed = (out * mask.unsqueeze(-1)).sum(1)  # (B, H)
            return summed / mask.sum(1, keepdim=True).clamp(min=1).to(out.dtype)
        if self.mode == "max":
            filled = out.masked_fill(~mask.unsqueeze(-1), float("-inf"))  # (B, T, H)
            return filled.max(dim=1).values
        scores = self.score(torch.tanh(self.proj(out))).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        alpha = scores.softmax(dim=1)  # (B, T)
        return torch.einsum("bt,bth->bh", alpha, out)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, input_size={self.input_size}"
