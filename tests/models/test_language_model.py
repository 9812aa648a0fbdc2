"""LanguageModel: cached-state generation, sampling, weight tying, conditional initial state."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.models.language_model import LanguageModel, sample_logits

V, E, H = 11, 6, 8
CELLS = [ElmanCell, GRUCell, LSTMCell]


def make(cell=LSTMCell, **kwargs) -> LanguageModel:
    torch.manual_seed(0)
    kwargs = {"embedding_size": E, "hidden_size": H, **kwargs}
    return LanguageModel(cell, vocab_size=V, **kwargs).eval()


def naive_generate(model, prompt, steps, temperature, top_k, generator, cond=None):
    """The reference: re-run the whole prefix through the network for every new token."""
    seq = prompt
    for _ in range(steps):
        logits, _ = model(seq, cond=cond)  # (B, T, V)
        token = sample_logits(logits[:, -1], temperature, top_k, generator)
        seq = torch.cat([seq, token[:, None]], dim=1)
    return seq[:, prompt.shape[1] :]


@pytest.mark.parametrize("cell", CELLS)
def test_forward_shapes_and_state_per_layer(cell):
    model = make(cell, num_layers=2)
    logits, state = model(torch.randint(0, V, (3, 5)))
    assert logits.shape == (3, 5, V)
    assert len(state) == 2


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("temperature,top_k", [(0.0, None), (1.0, None), (0.7, 3)])
def test_cached_generation_equals_rerunning_the_prefix(cell, temperature, top_k):
    model = make(cell, num_layers=2)
    prompt = torch.randint(0, V, (4, 3))
    fast = model.generate(
        prompt, 12, temperature, top_k, generator=torch.Generator().manual_seed(5)
    )
    slow = naive_generate(model, prompt, 12, temperature, top_k, torch.Generator().manual_seed(5))
    torch.testing.assert_close(fast, slow, rtol=0, atol=0)


def test_conditional_cached_generation_equals_rerunning_the_prefix():
    model = make(LSTMCell, num_layers=2, cond_size=5)
    prompt, cond = torch.randint(0, V, (3, 2)), torch.randn(3, 5)
    fast = model.generate(prompt, 10, generator=torch.Generator().manual_seed(1), cond=cond)
    slow = naive_generate(model, prompt, 10, 1.0, None, torch.Generator().manual_seed(1), cond)
    torch.testing.assert_close(fast, slow, rtol=0, atol=0)


def test_ragged_prompts_continue_each_from_its_own_end():
    model = make(GRUCell)
    prompts = [torch.tensor([3, 4, 5, 6]), torch.tensor([7, 2])]
    padded = torch.zeros(2, 4, dtype=torch.long)
    padded[0], padded[1, :2] = prompts[0], prompts[1]
    together = model.generate(padded, 6, temperature=0.0, lengths=torch.tensor([4, 2]))
    for i, p in enumerate(prompts):
        alone = model.generate(p[None], 6, temperature=0.0)
        torch.testing.assert_close(together[i], alone[0], rtol=0, atol=0)


def test_greedy_tokens_are_the_argmax_of_the_full_sequence():
    model = make(LSTMCell)
    prompt = torch.randint(0, V, (2, 3))
    new = model.generate(prompt, 8, temperature=0.0)
    logits, _ = model(torch.cat([prompt, new], dim=1))
    torch.testing.assert_close(logits[:, 2:-1].argmax(-1), new, rtol=0, atol=0)


def test_small_temperature_is_argmax():
    torch.manual_seed(0)
    logits = torch.randn(64, V) * 3
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(sample_logits(logits, 1e-6, generator=g), logits.argmax(-1))
    model = make(GRUCell)
    prompt = torch.randint(0, V, (5, 2))
    cold = model.generate(prompt, 10, temperature=1e-6, generator=g)
    torch.testing.assert_close(cold, model.generate(prompt, 10, temperature=0.0))


def test_seeded_sampling_is_reproducible_and_the_seed_matters():
    model = make(LSTMCell)
    prompt = torch.randint(0, V, (6, 2))

    def run(seed):
        return model.generate(prompt, 20, generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(run(3), run(3), rtol=0, atol=0)
    assert not torch.equal(run(3), run(4))


def test_top_k_samples_only_among_the_k_best():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]]).expand(2000, 5)
    g = torch.Generator().manual_seed(0)
    drawn = sample_logits(logits, 5.0, top_k=2, generator=g)
    assert set(drawn.tolist()) == {1, 3}
    torch.testing.assert_close(sample_logits(logits, 5.0, top_k=1, generator=g), logits.argmax(-1))


def test_bad_sampling_arguments():
    with pytest.raises(ValueError, match="temperature"):
        sample_logits(torch.zeros(1, 3), -1.0)
    with pytest.raises(ValueError, match="top_k"):
        sample_logits(torch.zeros(1, 3), 1.0, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        make().generate(torch.zeros(1, 1, dtype=torch.long), 0)


def test_stop_index_repeats_and_ends_early():
    model = make(GRUCell)
    with torch.no_grad():  # make token 2 the only likely one after any input
        model.head.bias.fill_(-50.0)
        model.head.bias[2] = 50.0
    out = model.generate(torch.tensor([[1], [4]]), 30, stop_index=2)
    assert out.shape == (2, 1) and out.eq(2).all()
    out = model.generate(torch.tensor([[1]]), 5, temperature=0.0, stop_index=7)
    assert out.shape == (1, 5)  # never stopped: runs to the end


def test_weight_tying_shares_one_tensor_and_checks_sizes():
    model = LanguageModel(GRUCell, vocab_size=V, embedding_size=H, hidden_size=H, tie_weights=True)
    assert model.head.weight is model.embedding.weight
    n_untied = sum(p.numel() for p in LanguageModel(GRUCell, V, H, H).parameters())
    assert sum(p.numel() for p in model.parameters()) == n_untied - V * H
    with pytest.raises(ValueError, match="tie_weights"):
        LanguageModel(GRUCell, vocab_size=V, embedding_size=E, hidden_size=H, tie_weights=True)


@pytest.mark.parametrize("cell", CELLS)
def test_conditional_vector_sets_every_layers_state(cell):
    model = make(cell, num_layers=2, cond_size=5)
    cond = torch.randn(3, 5)
    state = model.initial_state(cond)
    zero = [layer.initial_state(3) for layer in model.rnn.layers]
    assert len(state) == 2
    for s, z in zip(state, zero, strict=True):  # same structure: LSTM gets (h, c), the others h
        s, z = (s, z) if isinstance(z, tuple) else ((s,), (z,))
        assert len(s) == len(z)
        for a, b in zip(s, z, strict=True):
            assert a.shape == b.shape and not torch.equal(a, b)


def test_conditional_vector_changes_outputs_and_receives_gradients():
    model = make(LSTMCell, num_layers=2, cond_size=4).train()
    x = torch.randint(0, V, (2, 5))
    a, b = torch.randn(1, 4).expand(2, 4), torch.randn(1, 4).expand(2, 4)
    assert not torch.allclose(model(x, cond=a)[0], model(x, cond=b)[0])
    logits, _ = model(x, cond=a)
    logits.logsumexp(-1).sum().backward()
    grad = model.init_map.weight.grad  # rows: layer 1 h, layer 1 c, layer 2 h, layer 2 c
    assert grad is not None
    for rows in grad.split(H, dim=0):
        assert rows.abs().sum() > 0  # every part of every layer's state is learned


def test_conditional_errors():
    with pytest.raises(ValueError, match="cond= is required"):
        make(cond_size=3)(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="cond_size > 0"):
        make()(torch.zeros(1, 2, dtype=torch.long), cond=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="cond of shape"):
        make(cond_size=3)(torch.zeros(1, 2, dtype=torch.long), cond=torch.zeros(1, 4))
    with pytest.raises(ValueError, match="cond_size"):
        make(cond_size=-1)
    with pytest.raises(ValueError, match="token ids"):
        make()(torch.zeros(1, 2))
