"""WordEmbedder: character CNN/BiLSTM features, word dropout, pretrained vectors (frozen or
fine-tuned), checked by where the gradients go."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnkit.data.vectors import vectors_for
from rnnkit.errors import ConfigError
from rnnkit.models import CharBiLSTM, CharCNN, WordEmbedder

VECTORS = Path(__file__).parents[1] / "data" / "fixtures" / "tiny_vectors.vec"
VOCAB = ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat", "dog", "sat"]  # dog: no vector


def inputs() -> torch.Tensor:
    """(B=2, T=3, 1 + W=4): word ids then character ids; the second sentence is padded."""
    words = torch.tensor([[4, 5, 7], [6, 4, 0]])
    chars = torch.randint(2, 9, (2, 3, 4))
    chars[..., 3] = 0  # every word 3 characters long
    chars[1, 2] = 0  # the padding step has no characters
    return torch.cat([words.unsqueeze(-1), chars], -1)


@pytest.mark.parametrize("chars", ["cnn", "lstm"])
def test_char_features_get_gradients_and_ignore_padding(chars: str) -> None:
    torch.manual_seed(0)
    emb = WordEmbedder(8, 3, char_vocab_size=9, chars=chars, char_embedding_dim=5,
                       char_hidden_size=4, backend="loop")  # fmt: skip
    assert emb.output_size == 3 + (4 if chars == "cnn" else 8)
    x = inputs()
    out = emb(x)  # (2, 3, output_size)
    assert out.shape == (2, 3, emb.output_size)
    assert (out[1, 2] == 0).all()  # padding: zero word row, no character features
    out.sum().backward()
    assert emb.chars.embedding.weight.grad[2:].abs().sum() > 0
    assert emb.embedding.weight.grad[4:].abs().sum() > 0


def test_char_cnn_max_pools_over_real_characters_only() -> None:
    torch.manual_seed(0)
    cnn = CharCNN(6, 4, 3, 1)  # kernel 1: each position alone
    word = torch.tensor([[2, 3, 0, 0]])
    ref = cnn.conv(cnn.embedding(word[:, :2]).transpose(1, 2)).amax(-1)
    torch.testing.assert_close(cnn(word), ref)


def test_char_bilstm_reads_last_forward_and_first_backward_state() -> None:
    torch.manual_seed(0)
    lstm = CharBiLSTM(6, 4, 3, backend="loop")
    word = torch.tensor([[2, 3, 4, 0, 0]])
    out, _ = lstm.lstm(lstm.embedding(word[:, :3]), torch.tensor([3]))
    ref = torch.cat([out[0, 2, :3], out[0, 0, 3:]])
    torch.testing.assert_close(lstm(word)[0], ref)


@pytest.mark.parametrize("freeze", [False, True])
def test_pretrained_vectors_frozen_or_fine_tuned(freeze: bool) -> None:
    torch.manual_seed(0)
    table, found = vectors_for(VECTORS, VOCAB, first=4)
    assert found.tolist() == [False] * 4 + [True, True, False, True]
    emb = WordEmbedder(8, 3, chars=None, freeze_vectors=freeze)
    emb.load_vectors(table, found)
    words = torch.tensor([[4, 5, 6, 7]])
    out = emb(words)
    torch.testing.assert_close(out[0, 1], torch.tensor([1.0, -1.0, 0.5]))  # "cat" from the file
    out.sum().backward()
    grad = emb.embedding.weight.grad
    assert grad[6].abs().sum() > 0  # "dog" has no vector: it always trains
    assert (grad[[4, 5, 7]].abs().sum() > 0) == (not freeze)  # pretrained rows: only unfrozen
    trainable = {n for n, p in emb.named_parameters() if p.requires_grad}
    assert trainable == {"embedding.weight"}  # the fixed rows are a buffer, never a parameter
    if freeze:
        assert "fixed_vectors" in emb.state_dict()


def test_vectors_of_another_width_say_which_key() -> None:
    table, found = vectors_for(VECTORS, VOCAB, first=4)
    with pytest.raises(ConfigError, match=r"set model\.embedding_dim=3"):
        WordEmbedder(8, 5, chars=None).load_vectors(table, found)


def test_word_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    emb = WordEmbedder(8, 3, chars=None, word_dropout=0.5)
    words = torch.full((1, 200), 5)
    unk = emb.embedding.weight[1]
    dropped = (emb(words)[0] == unk).all(-1).float().mean()
    assert 0.3 < float(dropped) < 0.7
    assert not (emb.eval()(words)[0] == unk).all(-1).any()


def test_chars_without_character_data_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"data\.char_features=true"):
        WordEmbedder(8, 3, char_vocab_size=None, chars="cnn")
