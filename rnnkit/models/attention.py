r"""Attention over an encoder's outputs: additive (Bahdanau) and multiplicative (Luong) scores.

Every attention module has the same two-call face, so the decoder never asks which one it has:

- ``prepare(memory) -> keys``: whatever can be computed once per source sentence (the
  projection :math:`W_k m_s` of every encoder output), reused at every decoder step;
- ``forward(query, keys, memory, mask) -> (context, weights)``: one decoder step.

.. math::
    \alpha_{t,s} = \frac{\exp e_{t,s}}{\sum_{s' : \text{mask}_{s'}} \exp e_{t,s'}}
    \;\text{for valid } s, \quad \alpha_{t,s} = 0 \text{ on padding}, \qquad
    c_t = \sum_s \alpha_{t,s}\, m_s

with the score :math:`e_{t,s}` of :class:`AdditiveAttention` or :class:`MultiplicativeAttention`.

Symbols: :math:`q_t` the decoder's query at step t, :math:`m_s` the encoder output (memory) at
source position s, :math:`\alpha_{t,s}` the attention weights, :math:`c_t` the context vector.

References: Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to
Align and Translate"; Luong, Pham & Manning 2015, "Effective Approaches to Attention-based
Neural Machine Translation".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells.base import check_positive

ATTENTION_NAMES = ("bahdanau", "dot", "general", "none")


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis that gives exactly zero weight where ``mask`` is false.

    Shape: scores (B, S), mask (B, S) bool with at least one true entry per row -> (B, S).
    """
    scores = scores.masked_fill(~mask, float("-inf"))  # exp(-inf) = 0 exactly
    return torch.softmax(scores, dim=-1)


class AdditiveAttention(nn.Module):
    r"""Bahdanau's additive ("concat") score.

    .. math::
        e_{t,s} = v^\top \tanh(W_q q_t + W_k m_s + b)

    Args:
        query_size: Q, width of the decoder query.
        key_size: K, width of an encoder output (2H for a bidirectional encoder).
        hidden_size: A, width of the hidden layer of the score network.

    Shape:
        ``prepare``: memory (B, S, K) -> keys (B, S, A).
        ``forward``: query (B, Q), keys (B, S, A), memory (B, S, K), mask (B, S)
        -> context (B, K), weights (B, S).

    Attributes:
        query_proj.weight (A, Q), key_proj.weight (A, K) and key_proj.bias (A) (the :math:`b`
        above), score.weight (1, A) (:math:`v`); ``torch.nn.Linear``'s initialisation.

    Note:
        Bahdanau et al. query with the previous decoder state :math:`s_{t-1}` and feed
        :math:`c_t` into the recurrent step; :class:`rnnkit.models.seq2seq.Seq2Seq` uses
        Luong's placement (query :math:`s_t`, context after the recurrent step) for every
        score, as OpenNMT does, so the scores can be compared on one architecture.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__()
        check_positive(query_size=query_size, key_size=key_size, hidden_size=hidden_size)
        self.query_size, self.key_size, self.hidden_size = query_size, key_size, hidden_size
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False)
        self.key_proj = nn.Linear(key_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        return self.key_proj(memory)  # (B, S, A)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        hidden = torch.tanh(self.query_proj(query).unsqueeze(1) + keys)  # (B, S, A)
        weights = masked_softmax(self.score(hidden).squeeze(-1), mask)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, K)
        return context, weights

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, hidden={self.hidden_size}"


class MultiplicativeAttention(nn.Module):
    r"""Luong's ``dot`` and ``general`` scores.

    .. math::
        e_{t,s} = q_t^\top m_s \quad (\text{dot}), \qquad
        e_{t,s} = q_t^\top W_a m_s \quad (\text{general})

    Args:
        query_size: Q, width of the decoder query.
        key_size: K, width of an encoder output; ``dot`` needs ``K == Q``.
        score: ``"dot"`` (no parameters) or ``"general"``.

    Shape:
        ``prepare``: memory (B, S, K) -> keys (B, S, Q) (:math:`W_a m_s`, or the memory itself).
        ``forward``: query (B, Q), keys (B, S, Q), memory (B, S, K), mask (B, S)
        -> context (B, K), weights (B, S).

    Attributes:
        key_proj.weight (Q, K) for ``general`` (:math:`W_a`, no bias as in the paper).
    """

    def __init__(self, query_size: int, key_size: int, score: str = "general") -> None:
        super().__init__()
        check_positive(query_size=query_size, key_size=key_size)
        if score not in ("dot", "general"):
            raise ValueError(f"score must be 'dot' or 'general', got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(
                f"dot attention needs query_size == key_size, got {query_size} and {key_size}; "
                "use score='general' (or 'bahdanau') when the encoder is wider than the decoder"
            )
        self.query_size, self.key_size, self.score_name = query_size, key_size, score
        self.key_proj = nn.Linear(key_size, query_size, bias=False) if score == "general" else None

    def prepare(self, memory: Tensor) -> Tensor:
        return memory if self.key_proj is None else self.key_proj(memory)  # (B, S, Q)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        scores = torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)  # (B, S)
        weights = masked_softmax(scores, mask)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, K)
        return context, weights

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, score={self.score_name}"


def build_attention(
    name: str, query_size: int, key_size: int, hidden_size: int | None = None
) -> nn.Module | None:
    """Attention by name: ``"bahdanau"``, ``"dot"``, ``"general"``, or ``"none"`` (``None``).

    Args:
        name: one of :data:`ATTENTION_NAMES`.
        query_size: width of the decoder's query (its top hidden state).
        key_size: width of an encoder output.
        hidden_size: width of the additive score's hidden layer (default ``query_size``).
    """
    if name == "none":
        return None
    if name == "bahdanau":
        return AdditiveAttention(query_size, key_size, hidden_size or query_size)
    if name in ("dot", "general"):
        return MultiplicativeAttention(query_size, key_size, score=name)
    raise ValueError(f"attention must be one of {list(ATTENTION_NAMES)}, got {name!r}")
