"""BagOfNgramsClassifier: the linear skip against a hand-written bag of n-grams, the sum with the
recurrent part, padding, n-gram dropout, and gradients reaching every trainable part."""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest
import torch

from rnnkit.cells import GRUCell
from rnnkit.models import BagOfNgramsClassifier, SequenceModel
from rnnkit.models.bag_of_ngrams import _HASH_MULTIPLIER

V, C, K = 9, 3, 7


SIZES = dict(output_size=C, cell=partial(GRUCell), vocab_size=V, pad_index=0, embedding_dim=4,
             hidden_size=5, bidirectional=True, pooling="mean")  # fmt: skip


def model(**kwargs) -> BagOfNgramsClassifier:
    torch.manual_seed(0)
    return BagOfNgramsClassifier(**{**SIZES, **kwargs})


def reference_bag(words: list[int], buckets: int, binary: bool) -> Counter:
    """Table rows of one unpadded text: each word, then each adjacent pair's hashed bucket."""
    rows = list(words)
    if buckets:
        rows += [
            V + (a * _HASH_MULTIPLIER + b) % buckets
            for a, b in zip(words, words[1:], strict=False)
        ]
    bag = Counter(rows)
    return Counter(dict.fromkeys(bag, 1)) if binary else bag


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("buckets", [0, K])
def test_linear_scores_are_the_weights_of_the_counted_ngrams(binary: bool, buckets: int) -> None:
    m = model(bigram_buckets=buckets, binary=binary).eval()
    with torch.no_grad():
        m.ngram_weight.weight.normal_()
        m.ngram_weight.weight[0] = 0.0  # the padding row (EmbeddingBag skips it anyway)
        m.ngram_bias.normal_()
    texts = [[4, 5, 4, 5, 6], [7, 7, 8]]
    x = torch.tensor([texts[0], texts[1] + [0, 0]])  # (B=2, T=5), the second padded
    lengths = torch.tensor([5, 3])
    W = m.ngram_weight.weight
    ref = torch.stack(
        [
            sum(n * W[row] for row, n in reference_bag(t, buckets, binary).items()) + m.ngram_bias
            for t in texts
        ]
    )
    torch.testing.assert_close(m.linear_scores(x, lengths), ref)


def test_output_is_the_skip_plus_the_sequence_model_and_ignores_padding() -> None:
    m = model(bigram_buckets=K).eval()
    with torch.no_grad():
        m.ngram_weight.weight.normal_()
    plain = SequenceModel(**SIZES)
    plain.load_state_dict(m.state_dict(), strict=False)
    x = torch.tensor([[4, 5, 6, 7], [8, 4, 0, 0]])
    lengths = torch.tensor([4, 2])
    out = m(x, lengths)
    torch.testing.assert_close(out, m.linear_scores(x, lengths) + plain(x, lengths))
    alone = m(x[1:, :2], lengths[1:])  # the second text without its padding
    torch.testing.assert_close(out[1:], alone)


def test_gradients_reach_every_trainable_part() -> None:
    m = model(bigram_buckets=K, ngram_dropout=0.2).train()
    x = torch.tensor([[4, 5, 6, 7], [8, 4, 0, 0]])
    loss = torch.nn.functional.cross_entropy(m(x, torch.tensor([4, 2])), torch.tensor([0, 2]))
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    used = m.ngram_weight.weight.grad.abs().sum(-1) > 0
    assert not used[0] and used[4:V].any() and used[V:].any()  # padding row untouched


def test_ngram_dropout_acts_only_in_training() -> None:
    m = model(ngram_dropout=0.5, binary=False)  # counts: only dropout turns ids into padding
    words = torch.randint(4, V, (64, 6))
    m.train()
    assert (m.ngram_ids(words, None) == 0).float().mean().item() == pytest.approx(0.5, abs=0.1)
    m.eval()
    torch.testing.assert_close(m.ngram_ids(words, None), words)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "none"}, "pooling must not be none"),
        ({"bigram_buckets": -1}, "bigram_buckets must be >= 0"),
        ({"vocab_size": None, "input_size": 2}, "needs token inputs"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model(**kwargs)
