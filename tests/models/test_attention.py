"""Attention scores: masking, normalisation and the math against hand-written references."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models.attention import (
    AdditiveAttention,
    MultiplicativeAttention,
    build_attention,
    masked_softmax,
)

B, S, Q = 3, 6, 8
LENGTHS = torch.tensor([6, 4, 1])


def _inputs(key_size: int = Q):
    torch.manual_seed(0)
    query = torch.randn(B, Q)
    memory = torch.randn(B, S, key_size)
    mask = torch.arange(S) < LENGTHS[:, None]  # (B, S)
    return query, memory, mask


def _attend(module, query, memory, mask):
    return module(query, module.prepare(memory), memory, mask)


@pytest.mark.parametrize("name", ["bahdanau", "dot", "general"])
def test_weights_sum_to_one_over_valid_positions_and_zero_on_padding(name):
    query, memory, mask = _inputs()
    _, weights = _attend(build_attention(name, Q, Q), query, memory, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B))
    assert torch.all(weights[~mask] == 0.0)
    assert torch.all(weights[mask] > 0.0)
    torch.testing.assert_close(weights[2], torch.tensor([1.0, 0, 0, 0, 0, 0]))  # one position


@pytest.mark.parametrize("name", ["bahdanau", "dot", "general"])
def test_padding_values_never_reach_the_context(name):
    query, memory, mask = _inputs()
    module = build_attention(name, Q, Q)
    context, weights = _attend(module, query, memory, mask)
    noisy = memory.masked_fill(~mask[..., None], 1e3)  # garbage where padded
    context2, weights2 = _attend(module, query, noisy, mask)
    torch.testing.assert_close(context2, context)
    torch.testing.assert_close(weights2, weights)


def test_additive_score_matches_the_formula():
    query, memory, mask = _inputs(key_size=5)
    att = AdditiveAttention(Q, 5, hidden_size=7)
    context, weights = _attend(att, query, memory, mask)
    W_q, W_k, b, v = (
        att.query_proj.weight,
        att.key_proj.weight,
        att.key_proj.bias,
        att.score.weight,
    )
    for i in range(B):
        n = int(LENGTHS[i])
        e = torch.stack(
            [(v @ torch.tanh(W_q @ query[i] + W_k @ memory[i, s] + b)).squeeze() for s in range(n)]
        )
        alpha = torch.softmax(e, dim=0)
        torch.testing.assert_close(weights[i, :n], alpha)
        torch.testing.assert_close(context[i], alpha @ memory[i, :n])


def test_dot_and_general_scores_match_the_formulas():
    query, memory, mask = _inputs()
    dot = MultiplicativeAttention(Q, Q, score="dot")
    general = MultiplicativeAttention(Q, Q, score="general")
    W_a = general.key_proj.weight  # (Q, K)
    for module, score in ((dot, lambda q, m: q @ m), (general, lambda q, m: q @ (W_a @ m))):
        context, weights = _attend(module, query, memory, mask)
        for i in range(B):
            n = int(LENGTHS[i])
            alpha = torch.softmax(
                torch.stack([score(query[i], memory[i, s]) for s in range(n)]), 0
            )
            torch.testing.assert_close(weights[i, :n], alpha)
            torch.testing.assert_close(context[i], alpha @ memory[i, :n])


def test_general_accepts_a_wider_encoder_and_dot_refuses_it():
    query, memory, mask = _inputs(key_size=2 * Q)
    context, _ = _attend(MultiplicativeAttention(Q, 2 * Q, "general"), query, memory, mask)
    assert context.shape == (B, 2 * Q)
    with pytest.raises(ValueError, match="dot attention needs query_size == key_size"):
        MultiplicativeAttention(Q, 2 * Q, "dot")


def test_build_attention_names():
    assert build_attention("none", Q, Q) is None
    assert isinstance(build_attention("bahdanau", Q, Q), AdditiveAttention)
    with pytest.raises(ValueError, match="attention must be one of"):
        build_attention("luong", Q, Q)


def test_masked_softmax_equals_softmax_of_the_valid_slice():
    scores = torch.randn(2, 5)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    out = masked_softmax(scores, mask)
    torch.testing.assert_close(out[0, :3], torch.softmax(scores[0, :3], 0))
    torch.testing.assert_close(out[1], torch.softmax(scores[1], 0))
    assert torch.all(out[0, 3:] == 0)
