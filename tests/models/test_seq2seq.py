"""Seq2Seq: shapes, the bridge, padding invariance, teacher forcing, the plain context model."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.models.decoding import greedy_decode
from rnnkit.models.seq2seq import Bridge, build_seq2seq, state_leaves

V_SRC, V_TGT, BOS = 11, 9, 2


def _model(**kwargs):
    torch.manual_seed(0)
    defaults = dict(embedding_size=6, hidden_size=8)
    return build_seq2seq(V_SRC, V_TGT, **{**defaults, **kwargs}).eval()


def _batch(B=3, S=7, T=5, lengths=(7, 4, 2)):
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor(lengths)
    src = torch.randint(4, V_SRC, (B, S), generator=g)
    src[torch.arange(S) >= lengths[:, None]] = 0  # <pad>
    tgt_in = torch.randint(4, V_TGT, (B, T), generator=g)
    tgt_in[:, 0] = BOS
    return src, lengths, tgt_in


@pytest.mark.parametrize("attention", ["bahdanau", "dot", "general", "none"])
@pytest.mark.parametrize("cell", [GRUCell, LSTMCell, ElmanCell])
def test_shapes_for_every_attention_and_cell(attention, cell):
    model = _model(encoder_cell=cell, attention=attention, num_layers=2)
    src, lengths, tgt_in = _batch()
    logits, weights = model(src, lengths, tgt_in)
    assert logits.shape == (3, 5, V_TGT)
    if attention == "none":
        assert weights is None
    else:
        assert weights.shape == (3, 5, 7)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
        assert torch.all(weights[2, :, 2:] == 0)  # example 2 has 2 source steps


@pytest.mark.parametrize(
    "attention, bidirectional", [("bahdanau", True), ("general", False), ("none", True)]
)
def test_padding_never_changes_a_result(attention, bidirectional):
    """A padded batch gives what each example gives alone (logits and greedy outputs)."""
    model = _model(attention=attention, bidirectional=bidirectional, encoder_cell=LSTMCell)
    src, lengths, tgt_in = _batch()
    logits, _ = model(src, lengths, tgt_in)
    batch_hyp = greedy_decode(model, src, lengths, max_length=4)
    for i in range(3):
        n = int(lengths[i])
        alone, _ = model(src[i : i + 1, :n], lengths[i : i + 1], tgt_in[i : i + 1])
        torch.testing.assert_close(alone[0], logits[i], atol=1e-5, rtol=1e-5)
        hyp = greedy_decode(model, src[i : i + 1, :n], lengths[i : i + 1], max_length=4)
        T = int(hyp.lengths[0])
        assert torch.equal(hyp.tokens[0, :T], batch_hyp.tokens[i, :T])


def test_bridge_maps_a_bidirectional_lstm_state_into_each_decoder_layer():
    model = _model(encoder_cell=LSTMCell, decoder_cell=GRUCell, num_layers=2)
    src, lengths, _ = _batch()
    enc = model.encode(src, lengths)
    assert len(enc.state) == 2 and all(s.shape == (3, 8) for s in enc.state)  # GRU: h only
    # by hand: z_l = [h_fwd; c_fwd; h_bwd; c_bwd] of encoder layer l -> tanh(W z + b)
    _, finals = model.encoder(model.src_embedding(src), lengths)
    for layer in range(2):
        (h_f, c_f), (h_b, c_b) = finals[layer]
        z = torch.cat([h_f, c_f, h_b, c_b], dim=-1)  # (B, 4 * H/2)
        linear = model.bridge.maps[layer][0]
        torch.testing.assert_close(enc.state[layer], torch.tanh(linear(z)))


def test_bridge_into_an_lstm_decoder_gives_h_and_c_their_own_maps():
    model = _model(encoder_cell=GRUCell, decoder_cell=LSTMCell, bidirectional=True)
    src, lengths, tgt_in = _batch()
    enc = model.encode(src, lengths)
    (h, c) = enc.state[0]
    assert h.shape == c.shape == (3, 8)
    assert not torch.allclose(h, c)
    assert len(model.bridge.maps[0]) == 2
    logits, _ = model(src, lengths, tgt_in)
    assert torch.isfinite(logits).all()


def test_bridge_with_different_depths_reads_the_top_encoder_layer():
    torch.manual_seed(0)
    from rnnkit.models.builders import build_stack

    encoder = build_stack(LSTMCell, 4, 3, num_layers=2, bidirectional=True)
    decoder = build_stack(GRUCell, 4, 5, num_layers=3)
    bridge = Bridge(encoder, decoder)
    _, finals = encoder(torch.randn(2, 6, 4), torch.tensor([6, 3]))
    state = bridge(finals)
    assert [s.shape for s in state] == [(2, 5)] * 3
    top = torch.cat(state_leaves(finals[-1]), dim=-1)
    torch.testing.assert_close(state[2], torch.tanh(bridge.maps[2][0](top)))


def test_without_bridge_the_decoder_starts_from_zeros():
    model = _model(bridge=False)
    src, lengths, _ = _batch()
    assert model.bridge is None
    assert torch.all(model.encode(src, lengths).state[0] == 0)


def test_teacher_forcing_ratio_one_feeds_the_gold_tokens():
    model = _model().train()  # dropout is 0, so train mode is deterministic
    model.teacher_forcing_ratio = 1.0
    src, lengths, tgt_in = _batch()
    logits, _ = model(src, lengths, tgt_in)
    # by hand: step the decoder with the gold previous tokens
    enc = model.encode(src, lengths)
    state, feed = enc.state, model.initial_feed(3, enc.memory)
    for t in range(tgt_in.shape[1]):
        step, state, feed, _ = model.decode_step(tgt_in[:, t], state, feed, enc)
        torch.testing.assert_close(logits[:, t], step)


def test_teacher_forcing_ratio_zero_feeds_the_models_own_argmax():
    model = _model().train()
    model.teacher_forcing_ratio = 0.0
    src, lengths, tgt_in = _batch()
    logits, _ = model(src, lengths, tgt_in)
    # the gold tokens after <bos> are never read...
    other = tgt_in.clone()
    other[:, 1:] = torch.randint(4, V_TGT, other[:, 1:].shape)
    logits2, _ = model(src, lengths, other)
    torch.testing.assert_close(logits2, logits)
    # ...and the chain of argmaxes is exactly greedy decoding (no <eos> stop within 5 steps)
    hyp = greedy_decode(model, src, lengths, max_length=5)
    own = logits.argmax(-1)
    for i in range(3):
        T = int(hyp.lengths[i])
        assert torch.equal(hyp.tokens[i, :T], own[i, :T])


def test_teacher_forcing_only_in_training_mode():
    model = _model()
    model.teacher_forcing_ratio = 0.0
    src, lengths, tgt_in = _batch()
    other = tgt_in.clone()
    other[:, 1:] = torch.randint(4, V_TGT, other[:, 1:].shape)
    # eval mode always feeds the gold tokens, so other gold tokens change the logits
    assert not torch.allclose(model(src, lengths, tgt_in)[0], model(src, lengths, other)[0])


def test_plain_model_context_is_last_forward_and_first_backward_output():
    model = _model(attention="none")
    src, lengths, _ = _batch()
    enc = model.encode(src, lengths)
    assert enc.keys is None
    H = 4  # per direction
    for i in range(3):
        n = int(lengths[i])
        memory, _ = model.encoder(model.src_embedding(src[i : i + 1, :n]), lengths[i : i + 1])
        expected = torch.cat([memory[0, n - 1, :H], memory[0, 0, H:]])
        torch.testing.assert_close(enc.summary[i], expected, atol=1e-6, rtol=1e-5)


def test_gradients_reach_every_parameter():
    model = _model(attention="bahdanau", encoder_cell=LSTMCell).train()
    src, lengths, tgt_in = _batch()
    logits, _ = model(src, lengths, tgt_in)
    logits.logsumexp(-1).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="hidden_size must be even"):
        build_seq2seq(V_SRC, V_TGT, embedding_size=4, hidden_size=7, bidirectional=True)
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        build_seq2seq(V_SRC, V_TGT, embedding_size=4, hidden_size=8, teacher_forcing_ratio=1.5)
    with pytest.raises(ValueError, match="attention must be one of"):
        build_seq2seq(V_SRC, V_TGT, embedding_size=4, hidden_size=8, attention="luong")
