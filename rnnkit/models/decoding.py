r"""Batched decoding for :class:`rnnkit.models.seq2seq.Seq2Seq`: greedy and beam search.

Both read the model only through ``encode(src, src_lengths, copy_ids) -> EncoderOutput``,
``initial_feed(B, like)`` and ``decode_step(y_prev, state, feed, enc)``, plus its
``bos_index``, ``eos_index`` and ``pad_index``. Both stop a hypothesis at ``<eos>`` (which is
kept as its last token) and stop the batch when every hypothesis has stopped or after
``max_length`` steps; both forbid ``<eos>`` before ``min_length`` tokens (OpenNMT's
``min_length``: at least that many tokens before ``<eos>``).

Beam search (after the tf-seq2seq / GNMT beam search of Wu et al. 2016) keeps ``beam_size``
hypotheses per example and ranks them by the length-normalised log-probability

.. math::
    \text{score}(Y) = \frac{\log p(Y \mid X)}{\text{lp}(Y)}, \qquad
    \text{lp}(Y) = \left(\frac{5 + |Y|}{6}\right)^{\alpha}

where :math:`|Y|` counts the tokens up to and including ``<eos>`` and :math:`\alpha` is
``length_penalty`` (0: plain log-probability, which favours short outputs; larger values favour
longer ones). A finished hypothesis stays in its beam with its score frozen (its only
continuation is ``<pad>`` at log-probability 0), so with ``beam_size=1`` beam search is exactly
greedy decoding. Beam search can return its ``nbest`` final hypotheses per example, ranked by
that score.

:func:`replace_unknown` is the ``<unk>`` fallback of Luong et al. 2015 ("Addressing the rare
word problem in neural machine translation"; OpenNMT's ``replace_unk``): a produced ``<unk>``
becomes the source token with the highest attention weight at that step.

Every result is a :class:`Hypotheses`: tokens (B, T) after ``<bos>``, ending with ``<eos>`` when
one was produced, padded with ``<pad>``; lengths (B,) count the tokens including ``<eos>``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.layers.state import select_batch


class Hypotheses(NamedTuple):
    """Decoded outputs, batch B, T decoding steps.

    tokens (B, T) long, padded with ``<pad>``; lengths (B,) tokens up to and including
    ``<eos>``; scores (B,) total log-probability (no length penalty); attention (B, T, S)
    weights of every produced token, or None for a model without attention.
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor
    attention: Tensor | None


def _check(max_length: int, beam_size: int = 1, min_length: int = 0, nbest: int = 1) -> None:
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer, got {beam_size!r}")
    if not isinstance(min_length, int) or not 0 <= min_length < max_length:
        raise ValueError(
            f"min_length must be an integer in [0, max_length={max_length}), got {min_length!r}"
        )
    if not isinstance(nbest, int) or not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest must be an integer in [1, beam_size={beam_size}], got {nbest!r}")


def forbid_eos(logp: Tensor, step: int, min_length: int, eos_index: int) -> Tensor:
    """``logp`` (..., V) with ``<eos>`` at -inf while fewer than ``min_length`` tokens exist."""
    if step >= min_length:
        return logp
    return logp.index_fill(-1, torch.tensor([eos_index], device=logp.device), float("-inf"))


def replace_unknown(tokens: Tensor, attention: Tensor, source: Tensor, unk_index: int) -> Tensor:
    """Every ``<unk>`` of ``tokens`` replaced by the most-attended ``source`` id at its step.

    Shape: tokens (N, T), attention (N, T, S), source (N, S) -> (N, T). ``source`` is in the
    numbering of ``tokens`` (the extended one of :mod:`rnnkit.data.extended_vocab`, so an
    unseen source character is rendered as itself). An ``<unk>`` whose attention row is all
    zero (a hard-attention model emitting past the source's end) stays ``<unk>``.
    """
    attended = source.gather(1, attention.argmax(-1))  # (N, T)
    replace = (tokens == unk_index) & (attention.sum(-1) > 0)
    return torch.where(replace, attended, tokens)


@torch.no_grad()
def greedy_decode(
    model,
    src: Tensor,
    src_lengths: Tensor,
    max_length: int = 100,
    min_length: int = 0,
    copy_ids: Tensor | None = None,
) -> Hypotheses:
    r"""Pick :math:`\arg\max_y p(y \mid y_{<t}, x)` at every step.

    Shape: src (B, S), src_lengths (B,), copy_ids (B, S) or None (the source in the extended
    numbering, for a copy model) -> :class:`Hypotheses` with T <= max_length.
    """
    _check(max_length, min_length=min_length)
    enc = model.encode(src, src_lengths, copy_ids)
    B = src.shape[0]
    state, feed = enc.state, model.initial_feed(B, enc.memory)
    y = torch.full((B,), model.bos_index, dtype=torch.long, device=src.device)
    finished = torch.zeros(B, dtype=torch.bool, device=src.device)
    lengths = torch.zeros(B, dtype=torch.long, device=src.device)
    scores = torch.zeros(B, device=src.device)
    tokens, weights = [], []
    for step in range(max_length):
        logits, state, feed, w_t = model.decode_step(y, state, feed, enc)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
        logp = forbid_eos(logp, step, min_length, model.eos_index)
        y = logp.argmax(-1)
        y = torch.where(finished, torch.full_like(y, model.pad_index), y)
        scores = scores + torch.where(finished, 0.0, logp.gather(1, y[:, None]).squeeze(1))
        lengths = lengths + (~finished).long()
        tokens.append(y)
        weights.append(w_t)
        finished = finished | (y == model.eos_index)
        if bool(finished.all()):
            break
    attention = None if weights[0] is None else torch.stack(weights, dim=1)  # (B, T, S)
    return Hypotheses(torch.stack(tokens, dim=1), lengths, scores, attention)


def length_penalty_factor(lengths: Tensor, alpha: float) -> Tensor:
    r""":math:`\text{lp} = ((5 + |Y|) / 6)^\alpha` (GNMT, Wu et al. 2016)."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model,
    src: Tensor,
    src_lengths: Tensor,
    beam_size: int = 5,
    max_length: int = 100,
    length_penalty: float = 0.0,
    min_length: int = 0,
    nbest: int = 1,
    copy_ids: Tensor | None = None,
) -> Hypotheses:
    """Keep the ``beam_size`` best hypotheses per example; return the ``nbest`` best of each.

    Args:
        model: a :class:`~rnnkit.models.seq2seq.Seq2Seq` (or anything with its decoding face).
        src, src_lengths: the source batch, (B, S) and (B,).
        beam_size: K, hypotheses kept per example; 1 is greedy decoding.
        max_length: most tokens produced per hypothesis (``<eos>`` included).
        length_penalty: :math:`\\alpha` of the GNMT length penalty.
        min_length: fewest tokens before ``<eos>``.
        nbest: N <= K final hypotheses returned per example, best (by the ranking score) first.
        copy_ids: (B, S) the source in the extended numbering, for a copy model.

    Shape: -> :class:`Hypotheses` of B * N rows (example-major: rows ``b*N .. b*N+N-1`` are
    example b's, best first) with T <= max_length.
    """
    _check(max_length, beam_size, min_length, nbest)
    B, K, device = src.shape[0], beam_size, src.device
    enc = model.encode(src, src_lengths, copy_ids).repeat_interleave(K)  # B*K, example-major
    state, feed = enc.state, model.initial_feed(B * K, enc.memory)
    y = torch.full((B * K,), model.bos_index, dtype=torch.long, device=device)
    # only beam 0 is live at the start, so the first step does not pick K copies of one token
    beam_scores = torch.full((B, K), float("-inf"), device=device)
    beam_scores[:, 0] = 0.0
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B, K, dtype=torch.long, device=device)
    tokens = torch.empty(B * K, 0, dtype=torch.long, device=device)
    weights = None
    offsets = (torch.arange(B, device=device) * K)[:, None]  # (B, 1)
    for step in range(max_length):
        logits, state, feed, w_t = model.decode_step(y, state, feed, enc)
        logp = torch.log_softmax(logits.float(), dim=-1).view(B, K, -1)  # (B, K, V)
        logp = forbid_eos(logp, step, min_length, model.eos_index)
        V = logp.shape[-1]
        # a finished hypothesis may only continue with <pad>, at no cost
        frozen = torch.full_like(logp[0, 0], float("-inf"))
        frozen[model.pad_index] = 0.0
        logp = torch.where(finished[..., None], frozen, logp)
        total = beam_scores[..., None] + logp  # (B, K, V)
        new_lengths = lengths + (~finished).long()  # (B, K)
        ranked = total / length_penalty_factor(new_lengths, length_penalty)[..., None]
        _, top = ranked.view(B, K * V).topk(K, dim=-1)  # (B, K), best first
        beam, token = top // V, top % V  # (B, K) each
        beam_scores = total.view(B, K * V).gather(1, top)
        lengths = new_lengths.gather(1, beam)
        finished = finished.gather(1, beam) | (token == model.eos_index)
        flat = (offsets + beam).view(-1)  # (B*K,) rows of the surviving parents
        state, feed = select_batch(state, flat), feed.index_select(0, flat)
        y = token.view(-1)  # (B*K,)
        tokens = torch.cat([tokens.index_select(0, flat), y[:, None]], dim=1)  # (B*K, t)
        if w_t is not None:
            w_t = w_t.index_select(0, flat)[:, None]  # (B*K, 1, S)
            weights = (
                w_t if weights is None else torch.cat([weights.index_select(0, flat), w_t], 1)
            )
        if bool(finished.all()):
            break
    final = beam_scores / length_penalty_factor(lengths, length_penalty)  # (B, K)
    ranks = final.topk(nbest, dim=-1).indices  # (B, N), best first
    rows = (offsets + ranks).view(-1)  # (B*N,)
    attention = None if weights is None else weights.index_select(0, rows)  # (B*N, T, S)
    return Hypotheses(
        tokens.index_select(0, rows),
        lengths.gather(1, ranks).view(-1),
        beam_scores.gather(1, ranks).view(-1),
        attention,
    )
