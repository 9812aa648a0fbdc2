"""``BagOfNgrams``: a linear model on the words and word pairs of a text, as a skip for a
recurrent classifier.

With a few hundred to a few thousand training texts a linear model on word indicators is hard to
beat (Wang & Manning 2012); a recurrent network alone, learning its embeddings from scratch, scores
below it. :class:`rnnkit.models.SequenceModel` with ``skip=BagOfNgrams`` is the sum of both,
trained jointly: the linear part scores which words and pairs occur, the network adds what their
order says (``configs/model/bow_gru.yaml``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.models.pooling import valid_mask

# odd multiplier of the bigram hash (Knuth's multiplicative hashing constant)
_HASH_MULTIPLIER = 2654435761


class BagOfNgrams(nn.Module):
    r"""Linear scores of a text's word and (hashed) word-pair indicators.

    .. math::
        s(x) = W_1\,\phi_1(x) + W_2\,\phi_2(x) + c \in \mathbb{R}^C

    :math:`\phi_1(x) \in \mathbb{R}^V` marks (0/1, or counts without ``binary``) each vocabulary
    word of the text; :math:`\phi_2(x) \in \mathbb{R}^K` marks its adjacent word pairs, each
    hashed into one of ``K = bigram_buckets`` rows (the hashing trick, Weinberger et al. 2009, as
    in fastText's bigrams, Joulin et al. 2017). Padding is never counted. :math:`W` starts at
    zero, so the untrained skip adds nothing. ``ngram_dropout`` drops each n-gram occurrence from
    :math:`\phi` with that probability while training.

    Args:
        vocab_size: V, words of the vocabulary.
        output_size: C, classes (or 1 for regression).
        pad_index: the padding word id (never counted).
        bigram_buckets: K, rows of the hashed pair table; 0 keeps words only.
        binary: presence (0/1) of each n-gram rather than its count.
        ngram_dropout: probability of dropping an n-gram occurrence in training.

    Shape:
        words (B, T) ids, lengths (B,) -> (B, C).
    """

    def __init__(
        self,
        vocab_size: int,
        output_size: int,
        pad_index: int,
        bigram_buckets: int = 0,
        binary: bool = True,
        ngram_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if bigram_buckets < 0 or not 0.0 <= ngram_dropout < 1.0:
            raise ValueError(
                "BagOfNgrams: bigram_buckets must be >= 0 and ngram_dropout in [0, 1), got "
                f"{bigram_buckets} and {ngram_dropout}"
            )
        self.vocab_size, self.pad_index = vocab_size, pad_index
        self.bigram_buckets, self.binary, self.ngram_dropout = (
            bigram_buckets,
            binary,
            ngram_dropout,
        )
        # one table: rows 0..V-1 the words, V..V+K-1 the pair buckets; the padding row unused
        self.weight = nn.EmbeddingBag(
            vocab_size + bigram_buckets, output_size, mode="sum", padding_idx=pad_index
        )
        nn.init.zeros_(self.weight.weight)
        self.bias = nn.Parameter(torch.zeros(output_size))

    def ngram_ids(self, words: Tensor, lengths: Tensor | None) -> Tensor:
        """``(B, 2T - 1)`` table rows of the counted n-grams (``pad_index`` where none)."""
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
        if self.binary:  # keep one occurrence of each row: sort, turn repeats into padding
            ids, _ = ids.sort(dim=1)
            repeat = torch.zeros_like(ids, dtype=torch.bool)
            repeat[:, 1:] = ids[:, 1:] == ids[:, :-1]
            ids = ids.masked_fill(repeat, self.pad_index)
        return ids

    def forward(self, words: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.weight(self.ngram_ids(words, lengths)) + self.bias  # (B, C)
