r"""Perplexity of next-token scores over every token of every update, padding left out.

.. math::
    \text{ppl} = \exp\Big(-\frac{1}{N} \sum_{i:\, y_i \ne \text{ignore}} \log p_i(y_i)\Big)

with :math:`p_i` the softmax of the scores of token :math:`i` and :math:`N` the tokens that
count (torchmetrics' ``Perplexity(ignore_index=...)``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.metrics.base import Metric


class Perplexity(Metric):
    """Perplexity; see the module docstring.

    Args:
        ignore_index: the target id (padding) that never counts; ``None``: every token counts.

    ``update(preds, target)``: scores ``(B, T, V)`` (logits) and ids ``target (B, T)``.
    """

    def __init__(self, ignore_index: int | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.add_state("total_log_probs", torch.tensor(0.0))
        self.add_state("count", torch.tensor(0.0))

    def _update(self, preds: Tensor, target: Tensor) -> None:
        if preds.dim() != 3 or preds.shape[:2] != target.shape:
            raise ValueError(
                f"Perplexity: scores must be (B, T, V) and targets (B, T), got "
                f"{tuple(preds.shape)} and {tuple(target.shape)}"
            )
        target = target.reshape(-1)  # (N,)
        mask = torch.ones_like(target, dtype=torch.bool)
        if self.ignore_index is not None:
            mask = target != self.ignore_index
            target = target.masked_fill(~mask, 0)  # any valid id: its probability is dropped
        # softmax, then the log of the picked probability: torchmetrics' exact arithmetic
        probs = preds.reshape(-1, preds.shape[-1]).softmax(dim=1)  # (N, V)
        picked = probs.gather(1, target[:, None])[:, 0][mask]  # (N',)
        self.total_log_probs += -picked.log().sum()
        self.count += mask.sum()

    def _compute(self) -> Tensor:
        return torch.exp(self.total_log_probs / self.count)
