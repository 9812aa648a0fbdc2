"""The C++ loops of MGU and SRU (``rnnkit/csrc/mgu.cpp``, ``sru.cpp``) where the parity suite
(tests/layers/test_backends.py, float64 against ``loop``) does not reach: gradcheck in float64
with padding and a learned initial state, float32 on oneDNN's brgemm (MGU) at several widths,
the loop that keeps no activations (inference), and ``auto`` choosing them on CPU."""

from __future__ import annotations

import functools

import pytest
import torch

from rnnkit.cells import MGUCell, SRUCell
from rnnkit.layers import Recurrent
from rnnkit.layers.backends import choose_backend

CELLS = {
    "mgu": MGUCell,
    "mgu_nobias": functools.partial(MGUCell, bias=False),
    "sru_projected_skip": functools.partial(SRUCell, highway_bias=-1.0),
    "sru_identity_skip": lambda input_size, hidden_size: SRUCell(input_size, input_size),
    "sru_no_skip": functools.partial(SRUCell, has_skip_term=False),
}


def random_vectors(cell):
    """SRU starts with zero biases: random ones, so every term of the gradient matters."""
    if isinstance(cell, SRUCell):
        with torch.no_grad():
            cell.bias.normal_()
    return cell


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradcheck_float64(name):
    torch.manual_seed(0)
    cell = random_vectors(CELLS[name](3, 4))
    layer = Recurrent(cell, backend="native", learn_init=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 3])
    names = [n for n, _ in layer.named_parameters()]

    def f(x, *params):
        return torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x, lengths)
        )

    assert torch.autograd.gradcheck(f, (x, *layer.parameters()))


def run(cell, backend, x, lengths):
    cell.zero_grad()
    out, state = Recurrent(cell, backend=backend)(x, lengths)
    (out.square().sum() + state.sum()).backward()
    return out, state, [p.grad.clone() for p in cell.parameters()]


@pytest.mark.parametrize("H", [5, 37, 256])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_float32_matches_loop(name, H):
    # MGU's products run on oneDNN's brgemm: one block (H=5), blocks not a multiple of 16
    # wide (H=37), and several blocks; SRU's pass has no product at all
    torch.manual_seed(1)
    cell = random_vectors(CELLS[name](8, H))
    x = torch.randn(4, 7, cell.input_size)
    lengths = torch.tensor([7, 2, 5, 1])
    want, got = run(cell, "loop", x, lengths), run(cell, "native", x, lengths)
    torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[1], want[1], rtol=1e-4, atol=1e-5)
    for a, b in zip(got[2], want[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_inference_keeps_no_activations_and_gives_the_same_numbers(name):
    torch.manual_seed(2)
    cell = random_vectors(CELLS[name](3, 6))
    x, lengths = torch.randn(3, 9, cell.input_size), torch.tensor([9, 4, 1])
    with torch.no_grad():
        want = Recurrent(cell, backend="loop")(x, lengths)
        got = Recurrent(cell, backend="native")(x, lengths)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mgu", "sru_projected_skip"])
def test_auto_runs_them_natively_on_cpu(name):
    cell = CELLS[name](3, 4)
    assert choose_backend(cell, torch.device("cpu"), None) == "native"
    with torch.no_grad():
        assert choose_backend(cell, torch.device("cpu"), None) == "native"


def test_padding_garbage_never_reaches_a_gradient():
    # huge inputs past each end drive the states to inf/NaN there; nothing may leak back
    torch.manual_seed(3)
    lengths = torch.tensor([6, 2, 4])
    for name in ["mgu", "sru_identity_skip"]:
        cell = CELLS[name](4, 4).double()
        x = torch.randn(3, 6, 4, dtype=torch.float64)
        x = x.masked_fill((torch.arange(6) >= lengths[:, None]).unsqueeze(-1), 1e300)
        got, want = run(cell, "native", x, lengths), run(cell, "loop", x, lengths)
        assert all(torch.isfinite(g).all() for g in got[2])
        torch.testing.assert_close(got[0], want[0])
        for a, b in zip(got[2], want[2], strict=True):
            torch.testing.assert_close(a, b)
