"""The ``Metric`` contract: update_count, reset, empty updates, state_dict, buffers, errors."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit import metrics


def test_update_count_and_reset() -> None:
    mean = metrics.Mean()
    assert mean.update_count == 0
    mean.update(torch.tensor([1.0, 2.0]))
    mean.update(torch.tensor(6.0), weight=2)
    assert mean.update_count == 2
    assert float(mean.compute()) == pytest.approx((1 + 2 + 12) / 4)
    mean.reset()
    assert mean.update_count == 0 and float(mean.weight) == 0.0
    mean.update(torch.tensor(5.0))
    assert float(mean.compute()) == 5.0  # nothing of before the reset


def test_an_empty_update_counts_but_changes_nothing() -> None:
    empty = torch.empty(0)
    mean, best = metrics.Mean(), metrics.Max()
    mean.update(empty)
    best.update(empty)
    assert mean.update_count == best.update_count == 1
    assert math.isnan(float(mean.compute()))  # 0 / 0: no element ever counted
    assert float(best.compute()) == -math.inf
    mean.update(torch.tensor([3.0]))
    best.update(torch.tensor([3.0]))
    mean.update(empty)
    best.update(empty)
    assert float(mean.compute()) == 3.0 and float(best.compute()) == 3.0


def test_a_computed_value_does_not_move_with_later_updates() -> None:
    best = metrics.Max()
    best.update(torch.tensor(1.0))
    value = best.compute()
    best.update(torch.tensor(2.0))
    best.reset()
    assert float(value) == 1.0


def test_updates_keep_no_autograd_graph() -> None:
    x = torch.ones(3, requires_grad=True)
    mean = metrics.Mean()
    mean.update(x * 2)
    assert not mean.mean_value.requires_grad


def test_only_the_persistent_best_value_is_in_the_state_dict() -> None:
    mean = metrics.Mean()
    assert mean.state_dict() == {}  # epoch states are never saved
    best = metrics.Min()
    best.persistent(True)
    best.update(torch.tensor([0.5, 0.25]))
    state = best.state_dict()
    assert list(state) == ["min_value"] and float(state["min_value"]) == 0.25
    resumed = metrics.Min()
    resumed.persistent(True)
    resumed.load_state_dict(state)
    resumed.update(torch.tensor(0.3))
    assert float(resumed.compute()) == 0.25  # the resumed run keeps its best


def test_states_move_with_the_module_but_are_no_buffers() -> None:
    """DDP broadcasts buffers from rank 0 before every forward pass: states must not be any."""
    f1 = metrics.MacroF1(3).to(torch.float64)
    assert f1.counts.dtype == torch.long  # integer counts stay exact
    mean = metrics.Mean().double()
    mean.update(torch.tensor(1.0, dtype=torch.float64))
    assert mean.compute().dtype == torch.float64
    best = metrics.Max()
    best.persistent(True)
    assert list(best.buffers()) == [] and list(best.state_dict()) == ["max_value"]


def test_bad_states_and_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="reduce must be one of"):
        metrics.Mean().add_state("extra", torch.tensor(0.0), reduce="mean")
    with pytest.raises(ValueError, match="taken by an attribute"):
        metrics.Mean().add_state("rows", torch.empty(0), reduce="cat")
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.MeanSquaredError().update(torch.zeros(3), torch.zeros(3, 1))
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        metrics.Perplexity().update(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
