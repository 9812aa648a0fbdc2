"""Linear-chain conditional random field over per-step tag scores (Lafferty et al. 2001).

Used by :class:`rnnkit.tasks.TaggingTask` as its loss and decoder when ``crf=True``; it makes
tag *sequences* consistent (an ``I-PER`` right after ``B-BRAND`` costs a learned transition).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CRF(nn.Module):
    r"""Score tag sequences with emissions plus transitions; train by NLL, decode by Viterbi.

    .. math::
        s(x, y) = \pi^{start}_{y_1} + \sum_{t=1}^{L} E_{t, y_t}
                  + \sum_{t=2}^{L} A_{y_{t-1}, y_t} + \pi^{end}_{y_L}, \qquad
        -\log p(y \mid x) = \log \sum_{y'} e^{s(x, y')} - s(x, y)

    Symbols: :math:`E (T, C)` emissions from the model, :math:`A (C, C)` transitions
    (``transitions[i, j]``: from tag i to tag j), :math:`\pi` start/end scores, :math:`L` the
    sequence's length; steps past ``L`` are ignored.

    Args:
        num_tags: C.

    Shape:
        emissions (B, T, C), tags (B, T) (any value at padded steps), mask (B, T) bool with
        the valid steps first.
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-0.1, 0.1) as in pytorch-crf."""
        for p in (self.start_transitions, self.end_transitions, self.transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """:math:`s(x, y)` per sequence, ``(B,)``."""
        B, T, _ = emissions.shape
        maskf = mask.to(emissions.dtype)
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T)
        total = self.start_transitions[tags[:, 0]] + (emit * maskf).sum(1)
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        total = total + (trans * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).clamp(min=0).unsqueeze(1)).squeeze(1)  # (B,)
        return total + self.end_transitions[last]

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """:math:`\\log Z(x)` per sequence by the forward algorithm, ``(B,)``."""
        alpha = self.start_transitions + emissions[:, 0]  # (B, C)
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(
                alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1), dim=1
            )  # (B, C)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood of ``tags`` over the batch."""
        tags = tags.masked_fill(~mask, 0)
        return (self.log_partition(emissions, mask) - self.score(emissions, tags, mask)).mean()

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Viterbi: the highest-scoring tag sequence of each sequence (its valid steps only)."""
        B, T, C = emissions.shape
        score = self.start_transitions + emissions[:, 0]  # (B, C)
        history = []
        for t in range(1, T):
            cand = score.unsqueeze(2) + self.transitions  # (B, C_prev, C)
            best, index = cand.max(dim=1)  # (B, C)
            nxt = best + emissions[:, t]
            valid = mask[:, t].unsqueeze(1)
            score = torch.where(valid, nxt, score)
            # at padded steps point every tag at itself so backtracking passes through
            keep = torch.arange(C, device=emissions.device).expand(B, C)
            history.append(torch.where(valid, index, keep))
        score = score + self.end_transitions
        best_last = score.argmax(dim=1)  # (B,)
        lengths = mask.sum(1).tolist()
        paths = []
        for b in range(B):
            tag = int(best_last[b])
            path = [tag]
            for t in range(T - 2, -1, -1):
                tag = int(history[t][b, tag])
                path.append(tag)
            path.reverse()
            paths.append(path[: lengths[b]])
        return paths

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"
