"""from_torch / to_torch: every layout torch has, round trips with equal outputs."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit import TorchStyleRNN, from_torch, to_torch
from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LSTMCell, NARXCell
from rnnkit.layers import Bidirectional, Recurrent, SlidingWindow, Stacked
from rnnkit.models import build_stack

F, H, B, T = 3, 4, 3, 5
TORCH_LAYERS = {
    "rnn_tanh": lambda **kw: nn.RNN(F, H, nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(F, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: nn.LSTM(F, H, **kw),
    "gru": lambda **kw: nn.GRU(F, H, **kw),
}
COMBOS = list(itertools.product(sorted(TORCH_LAYERS), [1, 2], [False, True], [False, True]))


def as_tuple(h):
    return h if isinstance(h, tuple) else (h,)


def assert_same_run(a, b, x, hx=None):
    out_a, h_a = a(x, hx)
    out_b, h_b = b(x, hx)
    torch.testing.assert_close(out_a, out_b, rtol=1e-5, atol=1e-6)
    for u, v in zip(as_tuple(h_a), as_tuple(h_b), strict=True):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first", COMBOS)
def test_round_trip(kind, num_layers, bidirectional, batch_first):
    torch.manual_seed(0)
    module = TORCH_LAYERS[kind](
        num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first
    )
    ours = from_torch(module)
    assert isinstance(ours, TorchStyleRNN) and ours.batch_first == batch_first
    x = torch.randn(B, T, F) if batch_first else torch.randn(T, B, F)
    assert_same_run(module, ours, x)
    # with an initial state in torch's (num_layers * D, B, H) layout
    D = 2 if bidirectional else 1
    hx = torch.randn(num_layers * D, B, H)
    assert_same_run(module, ours, x, (hx, torch.randn_like(hx)) if kind == "lstm" else hx)

    back = to_torch(ours)
    assert type(back) is type(module) and back.batch_first == batch_first
    assert back.state_dict().keys() == module.state_dict().keys()
    for name, p in module.state_dict().items():
        torch.testing.assert_close(back.state_dict()[name], p, rtol=0, atol=0)
    assert_same_run(module, back, x)
    # the bare stack is batch-first and converts to a batch_first torch module
    from_stack = to_torch(ours.stack)
    assert from_stack.batch_first
    x_bf = x if batch_first else x.transpose(0, 1)
    torch.testing.assert_close(from_stack(x_bf)[0], ours.stack(x_bf)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(TORCH_LAYERS))
def test_packed_sequence_and_lengths_match_torch(kind):
    torch.manual_seed(0)
    module = TORCH_LAYERS[kind](num_layers=2, bidirectional=True, batch_first=True)
    ours = from_torch(module)
    x, lengths = torch.randn(B, T, F), torch.tensor([2, 5, 3])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    (out_theirs, h_theirs), (out_ours, h_ours) = module(packed), ours(packed)
    torch.testing.assert_close(out_ours.data, out_theirs.data, rtol=1e-5, atol=1e-6)
    for u, v in zip(as_tuple(h_ours), as_tuple(h_theirs), strict=True):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)
    # lengths= gives the same final state without packing
    _, h_lengths = ours(x, lengths=lengths)
    for u, v in zip(as_tuple(h_lengths), as_tuple(h_theirs), strict=True):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(TORCH_LAYERS))
def test_unbatched_input_like_torch(kind):
    torch.manual_seed(0)
    module = TORCH_LAYERS[kind](num_layers=2, bidirectional=True)
    assert_same_run(module, from_torch(module), torch.randn(T, F))


@pytest.mark.parametrize("bias", [True, False])
def test_bias_dropout_dtype_and_mode_carry_over(bias):
    module = nn.GRU(F, H, num_layers=2, bias=bias, dropout=0.25).double().eval()
    ours = from_torch(module)
    assert ours.stack.dropout.p == 0.25 and not ours.training
    assert all(p.dtype == torch.float64 for p in ours.parameters())
    assert (ours.cell(0).bias_ih is not None) == bias
    back = to_torch(ours)
    assert back.bias == bias and back.dropout == 0.25 and not back.training


@pytest.mark.parametrize(
    "theirs,ours",
    [
        (lambda: nn.RNNCell(F, H, nonlinearity="relu"), ElmanCell),
        (lambda: nn.LSTMCell(F, H, bias=False), LSTMCell),
        (lambda: nn.GRUCell(F, H), GRUCell),
    ],
)
def test_cells_round_trip(theirs, ours):
    torch.manual_seed(0)
    cell = theirs()
    converted = from_torch(cell)
    assert type(converted) is ours
    x = torch.randn(B, F)
    state = converted.init_state(B)
    out, _ = converted(x, state)
    expected = cell(x)
    torch.testing.assert_close(out, expected[0] if isinstance(expected, tuple) else expected)
    back = to_torch(converted)
    assert type(back) is type(cell)
    for name, p in cell.state_dict().items():
        torch.testing.assert_close(back.state_dict()[name], p, rtol=0, atol=0)


def test_single_layers_convert_too():
    torch.manual_seed(0)
    layer = Bidirectional(Recurrent(LSTMCell(F, H)), Recurrent(LSTMCell(F, H)))
    module = to_torch(layer)
    assert isinstance(module, nn.LSTM) and module.bidirectional and module.batch_first
    x = torch.randn(B, T, F)
    torch.testing.assert_close(module(x)[0], layer(x)[0], rtol=1e-5, atol=1e-6)
    assert isinstance(to_torch(Recurrent(ElmanCell(F, H, nonlinearity="relu"))), nn.RNN)


def test_proj_size_is_refused():
    with pytest.raises(ValueError, match="proj_size=2"):
        from_torch(nn.LSTM(F, H, proj_size=2))


@pytest.mark.parametrize(
    "model,match",
    [
        (lambda: GRUCell(F, H, reset_after=False), "reset_after=False"),
        (lambda: JordanCell(F, H), "JordanCell.*no torch.nn equivalent"),
        (lambda: build_stack(GRUCell, F, H, num_layers=2, learn_init=True), "learn_init=True"),
        (lambda: build_stack(GRUCell, F, H, num_layers=2, residual=True), "residual=True"),
        (lambda: Stacked([Recurrent(NARXCell(F, H, H))]), "NARXCell"),
        (lambda: Stacked([SlidingWindow(F, H, 3, H)]), "SlidingWindow"),
        (
            lambda: Stacked([Recurrent(GRUCell(F, H)), Recurrent(LSTMCell(H, H))]),
            "one cell type",
        ),
        (lambda: Stacked([Recurrent(GRUCell(F, H)), Recurrent(GRUCell(H, 2 * H))]), "hidden_size"),
        (
            lambda: Bidirectional(Recurrent(GRUCell(F, H)), Recurrent(LSTMCell(F, H))),
            "one cell type",
        ),
        (lambda: nn.Linear(F, H), "TorchStyleRNN, Stacked"),
    ],
)
def test_to_torch_refuses_what_torch_cannot_run(model, match):
    with pytest.raises(ValueError, match=match):
        to_torch(model())


def test_from_torch_refuses_other_modules():
    with pytest.raises(ValueError, match="got Linear"):
        from_torch(nn.Linear(F, H))
