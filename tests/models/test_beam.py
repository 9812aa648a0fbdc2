"""Greedy and beam decoding: beam 1 is greedy, a wide beam is exact search, <eos> stops."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from rnnkit.models.decoding import beam_search, greedy_decode, length_penalty_factor
from rnnkit.models.seq2seq import EncoderOutput, build_seq2seq

PAD, BOS, EOS = 0, 2, 3


class MarkovModel(nn.Module):
    """A stand-in decoder whose next-token log-probabilities depend on (example, step, y_prev).

    Gives a search problem small enough to enumerate, so beam search can be checked against
    exhaustive search. The state is the step counter; <pad> and <bos> are never produced.
    """

    pad_index, bos_index, eos_index = PAD, BOS, EOS

    def __init__(self, batch_size: int, vocab_size: int = 6, steps: int = 4, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        table = torch.randn(batch_size, steps + 1, vocab_size, vocab_size, generator=g) * 1.5
        table[..., [PAD, BOS]] = float("-inf")  # (B, step, y_prev, y)
        self.register_buffer("table", table)
        self.batch_size = batch_size

    def encode(self, src, src_lengths, copy_ids=None):
        B = src.shape[0]
        example = torch.arange(B, dtype=torch.float)[:, None, None]  # which table row
        return EncoderOutput(
            memory=example,
            keys=None,
            mask=torch.ones(B, 1, dtype=torch.bool),
            summary=None,
            state=[torch.zeros(B, dtype=torch.long)],
        )

    def initial_feed(self, B, like):
        return like.new_zeros(B, 1)

    def decode_step(self, y_prev, state, feed, enc):
        example = enc.memory[:, 0, 0].long()  # (B,), survives repeat_interleave
        step = state[0]
        logits = self.table[example, step.clamp(max=self.table.shape[1] - 1), y_prev]  # (B, V)
        return logits, [step + 1], feed, None

    def logprob(self, b: int, seq: list[int]) -> float:
        total, prev = 0.0, BOS
        for t, y in enumerate(seq):
            total += float(torch.log_softmax(self.table[b, t, prev], -1)[y])
            prev = y
        return total


def _exhaustive_ranking(model: MarkovModel, b: int, max_length: int, alpha: float):
    """Every sequence over {unk, eos, 4, 5, ...} that ends at its first <eos> or at max_length,
    best first: ``[(score, tokens), ...]``."""
    V = model.table.shape[-1]
    tokens = [i for i in range(V) if i not in (PAD, BOS)]
    ranked = []
    for n in range(1, max_length + 1):
        for seq in itertools.product(tokens, repeat=n):
            if EOS in seq[:-1] or (n < max_length and seq[-1] != EOS):
                continue
            score = model.logprob(b, list(seq)) / float(
                length_penalty_factor(torch.tensor(n), alpha)
            )
            ranked.append((score, list(seq)))
    return sorted(ranked, key=lambda r: -r[0])


def _exhaustive_best(model: MarkovModel, b: int, max_length: int, alpha: float):
    return _exhaustive_ranking(model, b, max_length, alpha)[0][1]


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_a_beam_wider_than_the_search_space_finds_the_exact_best(alpha):
    B, L = 3, 3
    model = MarkovModel(B, steps=L)
    src, lengths = torch.zeros(B, 1, dtype=torch.long), torch.ones(B, dtype=torch.long)
    hyp = beam_search(model, src, lengths, beam_size=64, max_length=L, length_penalty=alpha)
    for b in range(B):
        n = int(hyp.lengths[b])
        assert hyp.tokens[b, :n].tolist() == _exhaustive_best(model, b, L, alpha)
        assert torch.all(hyp.tokens[b, n:] == PAD)
        assert hyp.scores[b].item() == pytest.approx(model.logprob(b, hyp.tokens[b, :n].tolist()))


def test_length_penalty_changes_the_choice_somewhere():
    """Over many random problems a larger alpha picks longer outputs at least once."""
    B, L = 40, 3
    model = MarkovModel(B, steps=L, seed=3)
    src, lengths = torch.zeros(B, 1, dtype=torch.long), torch.ones(B, dtype=torch.long)
    short = beam_search(model, src, lengths, beam_size=64, max_length=L, length_penalty=0.0)
    long = beam_search(model, src, lengths, beam_size=64, max_length=L, length_penalty=3.0)
    assert torch.all(long.lengths >= short.lengths)
    assert torch.any(long.lengths > short.lengths)


def test_beam_size_one_is_greedy_on_the_markov_model():
    B, L = 8, 4
    model = MarkovModel(B, steps=L, seed=1)
    src, lengths = torch.zeros(B, 1, dtype=torch.long), torch.ones(B, dtype=torch.long)
    greedy = greedy_decode(model, src, lengths, max_length=L)
    beam = beam_search(model, src, lengths, beam_size=1, max_length=L, length_penalty=1.0)
    assert torch.equal(greedy.tokens, beam.tokens)
    assert torch.equal(greedy.lengths, beam.lengths)
    torch.testing.assert_close(greedy.scores, beam.scores)


@pytest.mark.parametrize("attention", ["general", "none"])
def test_beam_size_one_is_greedy_on_a_seq2seq_model(attention):
    torch.manual_seed(0)
    model = build_seq2seq(10, 9, embedding_size=6, hidden_size=8, attention=attention).eval()
    with torch.no_grad():
        model.generator.bias[EOS] += 2.0  # make <eos> likely, so some outputs stop early
    src = torch.randint(4, 10, (5, 6))
    lengths = torch.tensor([6, 5, 3, 2, 1])
    greedy = greedy_decode(model, src, lengths, max_length=8)
    beam = beam_search(model, src, lengths, beam_size=1, max_length=8)
    assert torch.equal(greedy.tokens, beam.tokens)
    assert torch.equal(greedy.lengths, beam.lengths)
    torch.testing.assert_close(greedy.scores, beam.scores)
    if attention != "none":
        torch.testing.assert_close(greedy.attention, beam.attention)
    assert (greedy.lengths < 8).any()  # the <eos> stop was exercised


def test_decoding_stops_at_eos_and_pads_after_it():
    model = MarkovModel(2, steps=5)
    with torch.no_grad():
        model.table[:, :2, :, EOS] = float("-inf")  # no <eos> before the third token
        model.table[:, 2, :, EOS] = 50.0  # and then surely
    src, lengths = torch.zeros(2, 1, dtype=torch.long), torch.ones(2, dtype=torch.long)
    for hyp in (
        greedy_decode(model, src, lengths, max_length=5),
        beam_search(model, src, lengths, beam_size=3, max_length=5),
    ):
        assert hyp.lengths.tolist() == [3, 3]
        assert torch.all(hyp.tokens[:, 2] == EOS)
        assert hyp.tokens.shape[1] == 3  # the loop ended as soon as every output had stopped


def test_batched_beam_search_equals_one_example_at_a_time():
    torch.manual_seed(0)
    model = build_seq2seq(10, 9, embedding_size=6, hidden_size=8, attention="bahdanau").eval()
    src = torch.randint(4, 10, (3, 6))
    lengths = torch.tensor([6, 4, 2])
    src[torch.arange(6) >= lengths[:, None]] = PAD
    batch = beam_search(model, src, lengths, beam_size=3, max_length=6, length_penalty=0.6)
    for i in range(3):
        n = int(lengths[i])
        alone = beam_search(model, src[i : i + 1, :n], lengths[i : i + 1], 3, 6, 0.6)
        T = int(alone.lengths[0])
        assert int(batch.lengths[i]) == T
        assert torch.equal(batch.tokens[i, :T], alone.tokens[0, :T])
        torch.testing.assert_close(batch.attention[i, :T, :n], alone.attention[0, :T])
        torch.testing.assert_close(batch.attention[i].sum(-1)[:T], torch.ones(T))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_nbest_are_the_exact_top_n_in_order(alpha):
    B, L, N = 3, 3, 4
    model = MarkovModel(B, steps=L, seed=2)
    src, lengths = torch.zeros(B, 1, dtype=torch.long), torch.ones(B, dtype=torch.long)
    hyp = beam_search(model, src, lengths, 64, L, alpha, nbest=N)
    assert hyp.tokens.shape[0] == B * N and hyp.lengths.shape == hyp.scores.shape == (B * N,)
    best = beam_search(model, src, lengths, 64, L, alpha)
    for b in range(B):
        expected = _exhaustive_ranking(model, b, L, alpha)[:N]
        rows = range(b * N, b * N + N)
        got = [hyp.tokens[r, : int(hyp.lengths[r])].tolist() for r in rows]
        assert got == [seq for _, seq in expected]  # the same hypotheses, in the same order
        ranked = hyp.scores[b * N : b * N + N] / length_penalty_factor(
            hyp.lengths[b * N : b * N + N], alpha
        )
        assert torch.all(ranked[:-1] >= ranked[1:])
        assert got[0] == best.tokens[b, : int(best.lengths[b])].tolist()


def test_min_length_holds_eos_back():
    B, L = 4, 6
    model = MarkovModel(B, steps=L, seed=4)
    with torch.no_grad():
        model.table[..., EOS] = 20.0  # <eos> is by far the likeliest token at every step
    src, lengths = torch.zeros(B, 1, dtype=torch.long), torch.ones(B, dtype=torch.long)
    assert greedy_decode(model, src, lengths, max_length=L).lengths.tolist() == [1] * B
    for m in (1, 3):
        greedy = greedy_decode(model, src, lengths, max_length=L, min_length=m)
        beam = beam_search(model, src, lengths, 3, L, min_length=m, nbest=3)
        for hyp in (greedy, beam):
            # exactly m tokens, then the (now allowed) <eos>: length m + 1
            assert hyp.lengths.tolist() == [m + 1] * hyp.tokens.shape[0]
            assert torch.all(hyp.tokens[:, m] == EOS)
            assert not torch.any(hyp.tokens[:, :m] == EOS)


def test_bad_decoding_arguments():
    model = MarkovModel(1)
    src, lengths = torch.zeros(1, 1, dtype=torch.long), torch.ones(1, dtype=torch.long)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src, lengths, beam_size=0)
    with pytest.raises(ValueError, match="max_length"):
        greedy_decode(model, src, lengths, max_length=0)
    with pytest.raises(ValueError, match=r"nbest must be an integer in \[1, beam_size=2\]"):
        beam_search(model, src, lengths, beam_size=2, nbest=3)
    with pytest.raises(ValueError, match="min_length must be an integer in"):
        greedy_decode(model, src, lengths, max_length=4, min_length=4)
