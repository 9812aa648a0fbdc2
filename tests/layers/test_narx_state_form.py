"""Closed-loop NARX in state form (``feedback._narx_state_form``) against ``loop``, forced on:
``feedback.state_form_pays`` picks it only for outputs wider than the hidden layer, so the
parity rows of ``test_backends.py`` reach it with some shapes and not others."""

from __future__ import annotations

import pytest
import torch

from rnnkit.layers.backends import feedback
from tests.layers.test_backends import LENGTHS, F, assert_same, build, run


@pytest.fixture
def state_form(monkeypatch):
    calls = []

    def always(*shape):
        calls.append(shape)
        return True

    monkeypatch.setattr(feedback, "state_form_pays", always)
    return calls


@pytest.mark.parametrize("name", ["narx_state_form", "narx_state_form_nobias"])
@pytest.mark.parametrize("backend", ["bptt", "native"])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_state_form_matches_loop(state_form, name, backend, with_lengths):
    torch.manual_seed(1)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), F, dtype=torch.float64)
    lengths = LENGTHS if with_lengths else None
    got = run(build(name, backend, False), x, lengths)
    assert state_form, "the closed loop never asked for the state form"
    assert_same(got, run(build(name, "loop", False), x, lengths))


@pytest.mark.parametrize("backend", ["bptt", "native"])
def test_state_form_keeps_padding_garbage_out_of_gradients(state_form, backend):
    torch.manual_seed(3)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), F, dtype=torch.float64)
    pad = torch.arange(x.shape[1]) >= LENGTHS[:, None]
    x = x.masked_fill(pad.unsqueeze(-1), 1e300)
    got = run(build("narx_state_form", backend, False), x, LENGTHS)
    want = run(build("narx_state_form", "loop", False), x, LENGTHS)
    assert all(torch.isfinite(g).all() for g in got[2][:-1])  # the input's padding aside
    assert_same((got[0], got[1], got[2][:-1]), (want[0], want[1], want[2][:-1]))


@pytest.mark.parametrize(
    "shape, pays",
    [
        ((32, 100, 128, 2, 128), False),
        ((4, 100, 128, 2, 512), True),
        ((1, 10, 128, 2, 129), False),
        ((1, 100, 128, 2, 64), False),  # narrower outputs: more work
        ((256, 100, 128, 2, 128), True),  # equal work, large batch
        ((1, 100, 512, 2, 512), True),  # equal work, wide layer
        ((64, 100, 256, 2, 256), False),
    ],
)
def test_state_form_pays_for_wider_outputs_or_large_equal_shapes(shape, pays):
    assert feedback.state_form_pays(*shape) is pays
