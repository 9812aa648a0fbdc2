"""rnnkit.metrics against torchmetrics: seeded random inputs over several updates, 1e-6 apart.

torchmetrics is a dev dependency, imported here only. ``Mean`` is compared with torchmetrics'
default ``MeanMetric``: with ``nan_strategy="disable"`` torchmetrics 1.9 drops the weights
(``BaseAggregator._cast_and_nan_check_input`` replaces them by ones), which
:func:`test_torchmetrics_disable_drops_the_weights` shows.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import torch
import torchmetrics
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError
from torchmetrics.text import BLEUScore, Perplexity

from rnnkit import metrics

UPDATES = 4


def assert_same_over_updates(ours, theirs, batches: list[tuple]) -> None:
    """Both metrics get the same batches; the values agree after every update."""
    for args in batches:
        ours.update(*args)
        theirs.update(*args)
        torch.testing.assert_close(
            ours.compute().double(), theirs.compute().double(), rtol=1e-6, atol=1e-6
        )


def seeded(make: Callable[[torch.Generator], tuple]) -> list[tuple]:
    generator = torch.Generator().manual_seed(0)
    return [make(generator) for _ in range(UPDATES)]


def test_mean_is_the_weighted_mean() -> None:
    def batch(g):
        n = int(torch.randint(1, 9, (1,), generator=g))
        return torch.randn(n, generator=g), torch.rand(n, generator=g) * 3

    assert_same_over_updates(metrics.Mean(), torchmetrics.MeanMetric(), seeded(batch))


def test_mean_of_scalars_with_integer_weights() -> None:
    """The tasks' use: one batch mean weighted by a token count (a 0-d integer tensor)."""

    def batch(g):
        return torch.rand((), generator=g), torch.randint(1, 50, (), generator=g)

    assert_same_over_updates(metrics.Mean(), torchmetrics.MeanMetric(), seeded(batch))


def test_torchmetrics_disable_drops_the_weights() -> None:
    ours, theirs = metrics.Mean(), torchmetrics.MeanMetric(nan_strategy="disable")
    for value, weight in ((1.0, 3.0), (2.0, 1.0)):
        ours.update(torch.tensor(value), weight=weight)
        theirs.update(torch.tensor(value), weight=weight)
    assert float(ours.compute()) == pytest.approx(1.25)  # (3 * 1 + 2) / 4
    assert float(theirs.compute()) == pytest.approx(1.5)  # the weights ignored


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(metrics.Max, torchmetrics.MaxMetric), (metrics.Min, torchmetrics.MinMetric)],
)
def test_max_and_min(ours, theirs) -> None:
    assert_same_over_updates(ours(), theirs(), seeded(lambda g: (torch.randn(5, generator=g),)))


def labels(num_classes: int, absent: int):
    """Random predictions and targets in which class ``absent`` never occurs."""

    def batch(g):
        pred = torch.randint(0, num_classes - 1, (16,), generator=g)
        target = torch.randint(0, num_classes - 1, (16,), generator=g)
        return pred + (pred >= absent), target + (target >= absent)

    return batch


def test_micro_accuracy() -> None:
    theirs = MulticlassAccuracy(5, average="micro")
    assert_same_over_updates(metrics.Accuracy(), theirs, seeded(labels(5, absent=2)))


def test_accuracy_of_scores_takes_their_argmax() -> None:
    def batch(g):
        return torch.randn(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g)

    theirs = MulticlassAccuracy(4, average="micro")
    assert_same_over_updates(metrics.Accuracy(), theirs, seeded(batch))


def test_macro_f1_leaves_out_classes_seen_nowhere() -> None:
    theirs = MulticlassF1Score(6, average="macro")
    assert_same_over_updates(metrics.MacroF1(6), theirs, seeded(labels(6, absent=4)))


def regression_batch(g):
    return torch.randn(7, 1, generator=g), torch.randn(7, 1, generator=g)


@pytest.mark.parametrize("squared", [True, False])
def test_mean_squared_error(squared: bool) -> None:
    assert_same_over_updates(
        metrics.MeanSquaredError(squared=squared),
        MeanSquaredError(squared=squared),
        seeded(regression_batch),
    )


def test_mean_absolute_error() -> None:
    assert_same_over_updates(
        metrics.MeanAbsoluteError(), MeanAbsoluteError(), seeded(regression_batch)
    )


def sentences(rng: random.Random, count: int) -> list[str]:
    """Sentences of 1-12 tokens from a 3-word vocabulary (n-grams of every order repeat)."""
    words = "a b c".split()
    return [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(count)]


def test_corpus_bleu_with_several_references() -> None:
    rng = random.Random(0)
    batches = []
    for _ in range(UPDATES):
        preds = sentences(rng, 5)
        batches.append((preds, [sentences(rng, rng.randint(1, 3)) for _ in preds]))
    ours, theirs = metrics.BLEUScore(n_gram=4), BLEUScore(n_gram=4)
    assert_same_over_updates(ours, theirs, batches)
    assert 0 < float(ours.compute()) < 1  # a value the test actually compares, not the 0 case


def test_bleu_brevity_penalty_of_short_hypotheses() -> None:
    rng = random.Random(1)
    batches = []
    for _ in range(UPDATES):
        references = [s.split() for s in sentences(rng, 5)]
        preds = [" ".join((ref * 2)[: max(4, len(ref) // 2)]) for ref in references]
        batches.append((preds, [[" ".join(ref)] for ref in references]))
    ours, theirs = metrics.BLEUScore(), BLEUScore()
    assert_same_over_updates(ours, theirs, batches)
    assert ours.preds_len < ours.target_len and float(ours.compute()) > 0


def test_bleu_is_zero_without_a_four_gram_match() -> None:
    ours, theirs = metrics.BLEUScore(), BLEUScore()
    assert_same_over_updates(ours, theirs, [(["a b c d"], [["a b c e"]])])
    assert float(ours.compute()) == 0.0


def test_perplexity_ignores_padding() -> None:
    def batch(g):
        target = torch.randint(0, 7, (3, 5), generator=g)
        return torch.randn(3, 5, 7, generator=g) * 3, target  # id 0 is padding

    ours, theirs = metrics.Perplexity(ignore_index=0), Perplexity(ignore_index=0)
    assert_same_over_updates(ours, theirs, seeded(batch))
    everything = metrics.Perplexity()
    for args in seeded(batch):
        everything.update(*args)
    assert float(everything.compute()) != pytest.approx(float(ours.compute()))
