"""``SequenceModel``: input embedding or features -> recurrent stack -> pooled or per-step head.

The one architecture behind many-to-one classification/regression and per-step tagging.
Composition: the recurrent part comes from :func:`rnnkit.models.build_stack` (a cell factory)
or from any layer factory with the ``(x, lengths) -> (out, state)`` face (``SlidingWindow``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from rnnkit.models.builders import CellFactory, build_stack
from rnnkit.models.pooling import POOLING_MODES, Pooling

PER_STEP = "none"


class SequenceModel(nn.Module):
    r"""Read a batch of sequences and score each sequence (pooled) or each step.

    .. math::
        e_t = \text{Embed}(x_t) \text{ or } x_t, \quad
        h_{1..T} = \text{Encoder}(e_{1..T}), \quad
        \hat y = W\,\text{drop}(\text{Pool}(h_{1..T})) + b \;[+\, s(x)]
        \;\text{ or }\; \hat y_t = W\,\text{drop}(h_t) + b

    Args:
        output_size: C, scores per sequence (classes, or 1 for regression) or per step (tags).
        cell: cell factory for :func:`build_stack` (a Hydra ``_partial_``); or
        encoder: a layer factory called as ``encoder(input_size=...)`` returning a layer with
            the ``(x, lengths) -> (out, state)`` face and an ``output_size`` (for example
            ``SlidingWindow``). Exactly one of ``cell`` and ``encoder``.
        input_size: F, features per step of continuous inputs (``None`` for token inputs).
        vocab_size: tokens in the vocabulary; when given, inputs are token ids ``(B, T)``
            and go through an embedding of width ``embedding_dim``.
        pad_index: the padding token id (its embedding stays zero).
        embedding_dim: width of the token embedding (needed with ``vocab_size``).
        embedder: a word-representation factory, called as ``embedder(vocab_size=...,
            embedding_dim=..., pad_index=..., char_vocab_size=...)``, instead of the plain
            embedding (:class:`rnnkit.models.WordEmbedder`: character CNN/BiLSTM features,
            word dropout, pretrained vectors; ``configs/model/tagger.yaml``).
        char_vocab_size: characters of the data (``info["char_vocab_size"]``), for ``embedder``.
        skip: a factory of linear scores added to the pooled head, called as
            ``skip(vocab_size=..., output_size=..., pad_index=...)`` with ``(words, lengths) ->
            (B, C)`` (:class:`rnnkit.models.BagOfNgrams`: a bag-of-n-grams linear model,
            ``configs/model/bow_gru.yaml``); token inputs and pooled outputs only.
        skip_alone: with a ``skip``, the probability p that a training text is scored by the
            skip alone (drop-path on the network's branch, Larsson et al. 2017): the expected
            loss is :math:`(1-p)\,\ell(s + \hat y / (1-p)) + p\,\ell(s)`, so the skip learns to
            classify on its own and the network what it adds; evaluation sums both, the
            network's scores at their expected training scale.
        hidden_size: H of every cell (needed with ``cell``).
        num_layers, bidirectional, dropout, backend, residual, learn_init: passed to
            :func:`build_stack`; ``dropout`` also acts before the head.

    Widths have no default here: ``configs/model/*.yaml`` (or the caller) chooses them, so there
    is one source for each value.
        pooling: ``"last" | "mean" | "max" | "attention"`` for one output per sequence, or
            ``"none"`` for one output per step.

    Shape:
        x (B, T, F) floats, (B, T) token ids or (B, T, 1 + W) token and character ids,
        lengths (B,) -> (B, C) pooled or (B, T, C).
    """

    def __init__(
        self,
        output_size: int,
        cell: CellFactory | None = None,
        encoder: Callable[..., nn.Module] | None = None,
        input_size: int | None = None,
        vocab_size: int | None = None,
        pad_index: int | None = 0,
        embedding_dim: int | None = None,
        embedder: Callable[..., nn.Module] | None = None,
        char_vocab_size: int | None = None,
        skip: Callable[..., nn.Module] | None = None,
        skip_alone: float = 0.0,
        hidden_size: int | None = None,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        backend: str = "auto",
        residual: bool = False,
        learn_init: bool = False,
        pooling: str = "last",
    ) -> None:
        super().__init__()
        if (cell is None) == (encoder is None):
            raise ValueError("SequenceModel: give exactly one of `cell` and `encoder`")
        if pooling != PER_STEP and pooling not in POOLING_MODES:
            raise ValueError(
                f"SequenceModel: pooling must be one of {(*POOLING_MODES, PER_STEP)}, "
                f"got {pooling!r}"
            )
        if vocab_size is None and input_size is None:
            raise ValueError("SequenceModel: give `input_size` (features) or `vocab_size`")
        if vocab_size is not None and embedding_dim is None:
            raise ValueError("SequenceModel: token inputs (vocab_size) need `embedding_dim`")
        if cell is not None and hidden_size is None:
            raise ValueError("SequenceModel: a recurrent `cell` needs `hidden_size`")
        self.pooling_mode = pooling
        if vocab_size is not None and embedder is not None:
            self.embedding: nn.Module | None = embedder(
                vocab_size=vocab_size,
                embedding_dim=embedding_dim,
                pad_index=pad_index,
                char_vocab_size=char_vocab_size,
            )
            width = self.embedding.output_size
        elif vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
            width = embedding_dim
        else:
            self.embedding = None
            width = int(input_size)  # type: ignore[arg-type]
        if cell is not None:
            self.encoder = build_stack(
                cell,
                input_size=width,
                hidden_size=hidden_size,
                num_layers=num_layers,
                bidirectional=bidirectional,
                dropout=dropout,
                residual=residual,
                learn_init=learn_init,
                backend=backend,
            )
        else:
            if num_layers != 1 or bidirectional:
                raise ValueError(
                    "SequenceModel: num_layers and bidirectional apply to recurrent cells; an "
                    "`encoder` layer is used as given (set num_layers=1, bidirectional=false)"
                )
            self.encoder = encoder(input_size=width)  # type: ignore[misc]
        features = self.encoder.output_size
        self.pool = (
            Pooling(pooling, features, bidirectional=bidirectional)
            if pooling != PER_STEP
            else None
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, output_size)
        if skip is not None and (vocab_size is None or self.pool is None):
            raise ValueError("SequenceModel: a `skip` needs token inputs and a pooled output")
        if not 0.0 <= skip_alone < 1.0:
            raise ValueError(f"SequenceModel: skip_alone must be in [0, 1), got {skip_alone}")
        self.skip_alone = skip_alone
        self.skip = (
            skip(vocab_size=vocab_size, output_size=output_size, pad_index=pad_index)
            if skip is not None
            else None
        )
        self.output_size = output_size

    @property
    def per_step(self) -> bool:
        """True when the model scores every step (tagging) rather than every sequence."""
        return self.pool is None

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        # (B, T, 1 + W) inputs carry characters only an embedder reads
        words = x[..., 0] if self.embedding is not None and x.dim() == 3 else x  # (B, T)
        if isinstance(self.embedding, nn.Embedding):
            x = self.embedding(words)  # (B, T, E)
        elif self.embedding is not None:
            x = self.embedding(x)  # (B, T, E)
        out, _ = self.encoder(x, lengths)  # (B, T, H)
        if self.pool is not None:
            out = self.pool(out, lengths)  # (B, H)
        scores = self.head(self.dropout(out))  # (B, C) or (B, T, C)
        if self.skip is None:
            return scores
        if self.training and self.skip_alone > 0:
            kept = torch.rand(scores.shape[0], 1, device=scores.device) >= self.skip_alone
            scores = scores * kept / (1 - self.skip_alone)  # zero where the skip is alone
        return scores + self.skip(words, lengths)
