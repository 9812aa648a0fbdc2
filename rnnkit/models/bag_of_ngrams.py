"""``BagOfNgramsClassifier``: a recurrent text classifier with a linear bag-of-n-grams skip.

With a few hundred to a few thousand training texts a linear model on word counts is hard to beat
(Wang & Manning 2012); a recurrent network alone, learning its embeddings from scratch, scores
below it. This model is the sum of both, trained jointly: the linear part scores which words and
word pairs occur, the network adds what their order says.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.models.pooling import valid_mask
from rnnkit.models.sequence_model import SequenceModel

# odd 64-bit-safe multiplier of the bigram hash (Knuth's multiplicative hashing constant)
_HASH_MULTIPLIER = 2654435761


class BagOfNgramsClassifier(SequenceModel):
    r"""A pooled :class:`SequenceModel` plus a linear model on the text's n-grams.

    .. math::
        \hat y = \underbrace{W_1 \phi_1(x) + W_2 \phi_2(x) + c}_{\text{linear skip}}
        + \underbrace{\text{SequenceModel}(x)}_{\text{embedding, RNN, pooling, head}}

    :math:`\phi_1(x) \in \mathbb{R}^V` counts each vocabulary word of the text (or marks it 0/1
    with ``binary``), :math:`\phi_2(x) \in \mathbb{R}^K` counts (marks) its adjacent word pairs,
    each hashed into one of ``K = bigram_buckets`` rows (the hashing trick, Weinberger et al.
    2009, as fastText's bigrams, Joulin et al. 2017). Padding is never counted. Both parts are
    trained together on the task's loss; ``ngram_dropout`` drops each n-gram occurrence from
    :math:`\phi` with that probability while training (as word dropout does for the network).

    Args:
        bigram_buckets: K, rows of the hashed bigram table; 0 keeps unigrams only.
        binary: features are presence (0/1) rather than counts.
        ngram_dropout: probability of dropping an n-gram occurrence from the bag in training.
        **kwargs: the :class:`SequenceModel` (token inputs: ``vocab_size`` and ``pad_index``
            are required; a pooled ``pooling``).

    Shape:
        x (B, T) token ids (or (B, T, 1 + W) with character ids), lengths (B,) -> (B, C).
    """

    def __init__(
        self,
        bigram_buckets: int = 0,
        binary: bool = True,
        ngram_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        vocab_size, pad_index = kwargs.get("vocab_size"), kwargs.get("pad_index")
        if vocab_size is None or pad_index is None:
            raise ValueError("BagOfNgramsClassifier: needs token inputs (vocab_size, pad_index)")
        if self.per_step:
            raise ValueError("BagOfNgramsClassifier: scores whole texts; pooling must not be none")
        if bigram_buckets < 0 or not 0.0 <= ngram_dropout < 1.0:
            raise ValueError(
                "BagOfNgramsClassifier: bigram_buckets must be >= 0 and ngram_dropout in [0, 1)"
            )
        self.vocab_size, self.pad_index = int(vocab_size), int(pad_index)
        self.bigram_buckets, self.binary, self.ngram_dropout = (
            bigram_buckets,
            binary,
            ngram_dropout,
        )
        # one table: rows 0..V-1 the words, V..V+K-1 the bigram buckets; no row for padding
        self.ngram_weight = nn.EmbeddingBag(
            self.vocab_size + bigram_buckets, self.output_size, mode="sum", padding_idx=pad_index
        )
        nn.init.zeros_(self.ngram_weight.weight)  # the untrained skip adds nothing
        self.ngram_bias = nn.Parameter(torch.zeros(self.output_size))

    def ngram_ids(self, words: Tensor, lengths: Tensor | None) -> Tensor:
        """``(B, T + T - 1)`` ids of the table (padding where nothing is counted)."""
        B, T = words.shape
        valid = valid_mask(lengths, B, T, words.device)  # (B, T)
        ids = words.masked_fill(~valid, self.pad_index)
        if self.bigram_buckets:
            pair = words[:, :-1] * _HASH_MULTIPLIER + words[:, 1:]  # (B, T - 1)
            bigrams = self.vocab_size + pair.remainder(self.bigram_buckets)
            ids = torch.cat([ids, bigrams.masked_fill(~valid[:, 1:], self.pad_index)], dim=1)
        if self.training and self.ngram_dropout > 0:
            dropped = torch.rand(ids.shape, device=ids.device) < self.ngram_dropout
            ids = ids.masked_fill(dropped, self.pad_index)
        if self.binary:  # keep the first occurrence of each id: sort, mark repeats as padding
            ids, _ = ids.sort(dim=1)
            repeat = torch.zeros_like(ids, dtype=torch.bool)
            repeat[:, 1:] = ids[:, 1:] == ids[:, :-1]
            ids = ids.masked_fill(repeat, self.pad_index)
        return ids

    def linear_scores(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The skip alone: ``W phi(x) + c``, (B, C)."""
        words = x[..., 0] if x.dim() == 3 else x  # (B, T)
        return self.ngram_weight(self.ngram_ids(words, lengths)) + self.ngram_bias

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.linear_scores(x, lengths) + super().forward(x, lengths)  # (B, C)
