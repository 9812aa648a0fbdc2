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
        r""":math:`\log Z(x)` per sequence by the forward algorithm, ``(B,)``.

        Each step is a matrix product in the exp domain, shifted for stability:
        :math:`\alpha'_j = m + M_j + \log \sum_i e^{\alpha_i - m} e^{A_{ij} - M_j} + E_{t,j}`
        with :math:`m = \max_i \alpha_i` per sequence and :math:`M_j = \max_i A_{ij}`; one
        ``(B, C) @ (C, C)`` product instead of a ``(B, C, C)`` log-sum-exp (and its backward),
        several times faster for the tag sets of POS tagging (C = 50-170).
        """
        col_max = self.transitions.amax(0)  # (C,)
        expA = (self.transitions - col_max).exp()  # (C, C), entries in (0, 1]
        # unbind once: indexing emissions[:, t] per step would make every step's backward
        # fill a whole (B, T, C) gradient of zeros (the larger part of the NLL's time)
        steps, valid = emissions.unbind(1), mask.unsqueeze(2).unbind(1)  # T x (B, C), (B, 1)
        alpha = self.start_transitions + steps[0]  # (B, C)
        for t in range(1, len(steps)):
            m = alpha.amax(1, keepdim=True).detach()  # (B, 1); any shift is exact
            nxt = ((alpha - m).exp() @ expA).log() + m + col_max + steps[t]  # (B, C)
            alpha = torch.where(valid[t], nxt, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def check(self, emissions: Tensor, tags: Tensor | None = None, mask: Tensor | None = None):
        """Refuse inputs the algorithms would silently get wrong, as pytorch-crf does.

        Raises:
            ValueError: emissions not ``(B, T, num_tags)``; tags or mask of another ``(B, T)``;
                a mask that is not bool, whose first step is off (an empty sequence), or with a
                valid step after a padded one; a tag outside ``[0, num_tags)`` at a valid step.
        """
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(
                f"CRF: emissions must be (batch, steps, num_tags={self.num_tags}), "
                f"got {tuple(emissions.shape)}"
            )
        if emissions.shape[1] == 0:
            raise ValueError("CRF: emissions have no steps")
        for name, value in (("tags", tags), ("mask", mask)):
            if value is not None and value.shape != emissions.shape[:2]:
                raise ValueError(
                    f"CRF: {name} must be (batch, steps) = {tuple(emissions.shape[:2])} like the "
                    f"emissions, got {tuple(value.shape)}"
                )
        if mask is None:
            return
        if mask.dtype != torch.bool:
            raise ValueError(f"CRF: mask must be bool, got {mask.dtype}")
        if not bool(mask[:, 0].all()):
            raise ValueError("CRF: the first step of every sequence must be on in the mask")
        if bool((mask[:, 1:] & ~mask[:, :-1]).any()):
            raise ValueError("CRF: the mask must have the valid steps first (no gaps)")
        if tags is not None:
            bad = mask & ((tags < 0) | (tags >= self.num_tags))
            if bool(bad.any()):
                b, t = (int(i) for i in bad.nonzero()[0])
                raise ValueError(
                    f"CRF: tag {int(tags[b, t])} at sequence {b}, step {t} is outside "
                    f"[0, {self.num_tags})"
                )

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor, reduction: str = "mean"):
        """Negative log-likelihood of ``tags``: its batch mean, or ``(B,)`` (``"none"``)."""
        self.check(emissions, tags, mask)
        tags = tags.masked_fill(~mask, 0)
        nll = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)  # (B,)
        return nll.mean() if reduction == "mean" else nll

    def viterbi(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Viterbi: the highest-scoring tag of every step, ``(B, T)`` (padded steps repeat the
        last valid tag). Backtracking runs on whole batches, one gather per step."""
        self.check(emissions, mask=mask)
        B, T, C = emissions.shape
        steps, valid = emissions.unbind(1), mask.unsqueeze(2).unbind(1)  # T x (B, C), (B, 1)
        score = self.start_transitions + steps[0]  # (B, C)
        keep = torch.arange(C, device=emissions.device).expand(B, C)
        into = self.transitions.t().contiguous()  # into[j, i] = A[i, j]: max over the last dim
        history = []
        for t in range(1, T):
            best, index = (score.unsqueeze(1) + into).max(dim=2)  # (B, C): best previous tag
            score = torch.where(valid[t], best + steps[t], score)
            # at padded steps point every tag at itself so backtracking passes through
            history.append(torch.where(valid[t], index, keep))
        tag = (score + self.end_transitions).argmax(dim=1)  # (B,)
        path = [tag]
        for index in reversed(history):
            tag = index.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        return torch.stack(path[::-1], 1)  # (B, T)

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """The best tag sequence of each sequence (its valid steps only)."""
        paths = self.viterbi(emissions, mask).tolist()
        return [path[:n] for path, n in zip(paths, mask.sum(1).tolist(), strict=True)]

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"
