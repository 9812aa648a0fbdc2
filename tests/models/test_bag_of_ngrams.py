"""BagOfNgrams, the linear skip of a text classifier: against a hand-written bag of n-grams, its
sum with the recurrent part, padding, n-gram dropout, and gradients reaching every trainable
part."""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest
import torch

from rnnkit.cells import GRUCell
from rnnkit.models import BagOfNgrams, SequenceModel
from rnnkit.models.bag_of_ngrams import _HASH_MULTIPLIER

V, C, K = 9, 3, 7
SIZES = dict(output_size=C, cell=partial(GRUCell), vocab_size=V, pad_index=0, embedding_dim=4,
             hidden_size=5, bidirectional=True, pooling="mean")  # fmt: skip


def classifier(**skip) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(**SIZES, skip=partial(BagOfNgrams, **skip))


def reference_bag(words: list[int], buckets: int, binary: bool) -> Counter:
    """Table rows of one unpadded text: each word, then each adjacent pair's hashed bucket."""
    rows = list(words)
    if buckets:
        pairs = zip(words, words[1:], strict=False)
        rows += [V + (a * _HASH_MULTIPLIER + b) % buckets for a, b in pairs]
    bag = Counter(rows)
    return Counter(dict.fromkeys(bag, 1)) if binary else bag


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("buckets", [0, K])
def test_scores_are_the_weights_of_the_counted_ngrams(binary: bool, buckets: int) -> None:
    torch.manual_seed(0)
    bag = BagOfNgrams(V, C, pad_index=0, bigram_buckets=buckets, binary=binary).eval()
    with torch.no_grad():
        bag.weight.weight.normal_()
        bag.weight.weight[0] = 0.0  # the padding row (EmbeddingBag skips it anyway)
        bag.bias.normal_()
    texts = [[4, 5, 4, 5, 6], [7, 7, 8]]
    x = torch.tensor([texts[0], texts[1] + [0, 0]])  # (B=2, T=5), the second padded
    W = bag.weight.weight
    ref = torch.stack(
        [
            sum(n * W[row] for row, n in reference_bag(t, buckets, binary).items()) + bag.bias
            for t in texts
        ]
    )
    torch.testing.assert_close(bag(x, torch.tensor([5, 3])), ref)


def test_output_is_the_skip_plus_the_recurrent_part_and_ignores_padding() -> None:
    m = classifier(bigram_buckets=K).eval()
    with torch.no_grad():
        m.skip.weight.weight.normal_()
    plain = SequenceModel(**SIZES)
    plain.load_state_dict(m.state_dict(), strict=False)  # all but the skip's weights
    x = torch.tensor([[4, 5, 6, 7], [8, 4, 0, 0]])
    lengths = torch.tensor([4, 2])
    out = m(x, lengths)
    torch.testing.assert_close(out, m.skip(x, lengths) + plain(x, lengths))
    alone = m(x[1:, :2], lengths[1:])  # the second text without its padding
    torch.testing.assert_close(out[1:], alone)


def test_gradients_reach_every_trainable_part() -> None:
    m = classifier(bigram_buckets=K, ngram_dropout=0.2).train()
    x = torch.tensor([[4, 5, 6, 7], [8, 4, 0, 0]])
    loss = torch.nn.functional.cross_entropy(m(x, torch.tensor([4, 2])), torch.tensor([0, 2]))
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    used = m.skip.weight.weight.grad.abs().sum(-1) > 0
    assert not used[0] and used[4:V].any() and used[V:].any()  # the padding row untouched


def test_ngram_dropout_acts_only_in_training() -> None:
    bag = BagOfNgrams(V, C, pad_index=0, binary=False, ngram_dropout=0.5)  # counts: no repeats
    words = torch.randint(4, V, (64, 6))
    bag.train()
    assert (bag.ngram_ids(words, None) == 0).float().mean().item() == pytest.approx(0.5, abs=0.1)
    bag.eval()
    torch.testing.assert_close(bag.ngram_ids(words, None), words)


def test_skip_alone_drops_the_network_scores_of_some_training_texts_only() -> None:
    m = SequenceModel(**SIZES, skip=partial(BagOfNgrams), skip_alone=0.5)
    plain = SequenceModel(**SIZES)
    plain.load_state_dict(m.state_dict(), strict=False)
    x = torch.randint(4, V, (64, 5))
    m.train()
    with torch.no_grad():
        m.skip.weight.weight.normal_()
        m.dropout.p = plain.dropout.p = 0.0
        out, skip, network = m(x), m.skip(x), plain(x)
    alone = torch.isclose(out, skip).all(-1)  # (B,) texts scored by the skip alone
    assert 0.3 < alone.float().mean().item() < 0.7
    torch.testing.assert_close(out[~alone], (skip + 2 * network)[~alone])  # 1 / (1 - p)
    m.eval()
    torch.testing.assert_close(m(x), m.skip(x) + plain(x))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="bigram_buckets must be >= 0"):
        BagOfNgrams(V, C, pad_index=0, bigram_buckets=-1)
    with pytest.raises(ValueError, match="a `skip` needs token inputs and a pooled output"):
        SequenceModel(**{**SIZES, "pooling": "none"}, skip=partial(BagOfNgrams))
    with pytest.raises(ValueError, match="skip_alone must be in"):
        SequenceModel(**SIZES, skip=partial(BagOfNgrams), skip_alone=1.0)
