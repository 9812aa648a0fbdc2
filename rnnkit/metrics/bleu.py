r"""Corpus BLEU (Papineni, Roukos, Ward & Zhu 2002, "BLEU: a method for automatic evaluation
of machine translation"), without smoothing.

Over every update's sentences, with :math:`p_n` the clipped n-gram precision (each n-gram of a
hypothesis counts at most as often as in the reference where it occurs most), :math:`c` the
hypotheses' length and :math:`r` the sum of the reference lengths closest to each hypothesis
(the first such reference on a tie):

.. math::
    \text{BLEU} = \text{BP} \cdot \exp\Big(\sum_{n=1}^{N} \tfrac{1}{N} \log p_n\Big), \qquad
    \text{BP} = \begin{cases} 1 & c > r \\ e^{1 - r/c} & c \le r \end{cases}

and 0 when some order has no match. Sentences are split on whitespace. This is torchmetrics'
``BLEUScore(n_gram=N)`` (``smooth=False``, uniform weights), with the counts summed on the
host per update instead of one tensor operation per n-gram.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

from rnnkit.metrics.base import Metric


def ngram_counts(tokens: Sequence[str], n_gram: int) -> Counter:
    """How often each n-gram of order 1 to ``n_gram`` occurs in ``tokens``."""
    return Counter(
        tuple(tokens[j : j + n]) for n in range(1, n_gram + 1) for j in range(len(tokens) - n + 1)
    )


class BLEUScore(Metric):
    """Corpus BLEU-``n_gram``; see the module docstring.

    ``update(preds, target)``: hypotheses ``[str]`` and, for each, its references ``[[str]]``.
    """

    def __init__(self, n_gram: int = 4) -> None:
        super().__init__()
        if n_gram < 1:
            raise ValueError(f"BLEUScore: n_gram must be >= 1, got {n_gram}")
        self.n_gram = n_gram
        self.add_state("preds_len", torch.tensor(0.0))
        self.add_state("target_len", torch.tensor(0.0))
        self.add_state("numerator", torch.zeros(n_gram))  # clipped matches per order
        self.add_state("denominator", torch.zeros(n_gram))  # hypothesis n-grams per order

    def _update(self, preds: Sequence[str], target: Sequence[Sequence[str]]) -> None:
        if len(preds) != len(target):
            raise ValueError(f"BLEUScore: {len(preds)} hypotheses for {len(target)} references")
        N = self.n_gram
        lengths = [0, 0]  # hypotheses, closest references
        numerator, denominator = [0] * N, [0] * N
        for line, references in zip(preds, target, strict=True):
            pred = line.split()
            refs = [ref.split() for ref in references]
            lengths[0] += len(pred)
            lengths[1] += len(min(refs, key=lambda ref: abs(len(pred) - len(ref))))
            counts = ngram_counts(pred, N)
            reference_counts: Counter = Counter()
            for ref in refs:
                reference_counts |= ngram_counts(ref, N)  # the most of each n-gram in any one
            for gram, count in (counts & reference_counts).items():
                numerator[len(gram) - 1] += count
            for gram, count in counts.items():
                denominator[len(gram) - 1] += count
        device = self.numerator.device
        self.preds_len += lengths[0]
        self.target_len += lengths[1]
        self.numerator += torch.tensor(numerator, dtype=self.numerator.dtype).to(device)
        self.denominator += torch.tensor(denominator, dtype=self.denominator.dtype).to(device)

    def _compute(self) -> Tensor:
        if self.numerator.min() == 0:
            return torch.zeros((), device=self.numerator.device)
        log_precision = torch.log(self.numerator / self.denominator) / self.n_gram  # (N,)
        geometric_mean = torch.exp(log_precision.sum())
        if self.preds_len > self.target_len:
            return geometric_mean
        return torch.exp(1 - self.target_len / self.preds_len) * geometric_mean
